defmodule Aion.Workflow.Marker do
  @moduledoc false
  # Values recorded once and replayed: now/0, side_effect/1, random/0,1,
  # uuid/0 (a marker command each, named after the function), and patch
  # checks (patched?/1, a marker named "patch:<change_id>" that replay may
  # find missing without that being non-determinism; the rules are in
  # src/replay/patch.rs). The documented faces are in Aion.Workflow.

  alias Aion.{Engine, Payload}
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Command

  # The same prefix as PATCH_MARKER_PREFIX in src/replay/patch.rs: the engine
  # resolves a check of "x" against a marker named "patch:x".
  @patch_prefix "patch:"

  @doc "Runs `fun` once and records its value under `name`; on replay returns the recorded value."
  def value(name, fun) do
    context = RunProcess.context()

    case Command.resolve(context, :marker, name) do
      {:replayed, _ordinal, {:recorded, payload}} ->
        Payload.decode(payload)

      {:live, ordinal} ->
        value = fun.()
        Command.record(context, {:marker, ordinal, name, Command.encode!(value, "the value of #{name}")})
        value
    end
  end

  def random, do: value("random", &:rand.uniform/0)

  def random(%Range{} = range) do
    case Range.size(range) do
      0 ->
        raise ArgumentError, "random/1 expects a non-empty range, got: #{inspect(range)}"

      size ->
        %Range{first: first, step: step} = range
        value("random", fn -> first + step * (:rand.uniform(size) - 1) end)
    end
  end

  def random(other) do
    raise ArgumentError, "random/1 expects a range of integers (such as 1..6), got: #{inspect(other)}"
  end

  def uuid, do: value("uuid", &uuid4/0)

  def patched?(change_id) do
    change_id = change_id!(change_id)
    context = RunProcess.context()

    case Engine.resolve_patch(context.run, change_id) do
      patched when is_boolean(patched) ->
        patched

      {:live, ordinal} ->
        Command.record(context, {:marker, ordinal, @patch_prefix <> change_id, Payload.encode!(change_id)})
        true

      {:error, error} ->
        Command.engine_error(context, error)
    end
  end

  defp change_id!(change_id) when is_atom(change_id) and change_id not in [nil, true, false],
    do: change_id!(Atom.to_string(change_id))

  defp change_id!(change_id) when is_binary(change_id) and change_id != "" do
    if String.valid?(change_id) do
      change_id
    else
      raise ArgumentError, "patched?/1 expects a change id that is valid UTF-8, got: #{inspect(change_id)}"
    end
  end

  defp change_id!(other) do
    raise ArgumentError, "patched?/1 expects a change id that is a non-empty string or an atom, got: #{inspect(other)}"
  end

  @doc false
  # A version 4 (random) UUID, RFC 9562: 122 random bits, the version and
  # variant in their fixed places. Also the default update id of clients.
  def uuid4 do
    <<a::48, _version::4, b::12, _variant::2, c::62>> = :crypto.strong_rand_bytes(16)
    <<u0::32, u1::16, u2::16, u3::16, u4::48>> = <<a::48, 4::4, b::12, 2::2, c::62>>

    [<<u0::32>>, <<u1::16>>, <<u2::16>>, <<u3::16>>, <<u4::48>>]
    |> Enum.map_join("-", &Base.encode16(&1, case: :lower))
  end
end
