defmodule Aion.Client.Start do
  @moduledoc false
  # Starting workflows: option checks, and giving a just-started run its process.

  alias Aion.Instance
  alias Aion.Run.{Process, Reconciler}

  @doc "The `:id` option: nil (a UUID is generated) or a non-empty UTF-8 string."
  def id_option(opts, entry) do
    case Keyword.fetch(opts, :id) do
      :error ->
        {:ok, nil}

      {:ok, id} when is_binary(id) and id != "" ->
        if String.valid?(id),
          do: {:ok, id},
          else: {:error, Aion.Error.new(:invalid_workflow_id, "#{entry}: expected a workflow id (a UTF-8 string), got: #{inspect(id)}")}

      {:ok, other} ->
        {:error, Aion.Error.new(:invalid_option, "#{entry}: expected :id to be a non-empty string, got: #{inspect(other)}")}
    end
  end

  @doc "The type of `module`, if it is a workflow of the instance."
  def workflow_type(%Instance{config: config}, module, entry) do
    if module in config.workflows do
      {:ok, Aion.Workflow.type(module)}
    else
      {:error,
       Aion.Error.new(
         :unknown_workflow,
         "#{entry}: #{inspect(module)} is not a workflow of instance #{inspect(config.name)} " <>
           "(its :workflows are #{inspect(config.workflows)})"
       )}
    end
  end

  @doc "Gives the run just started (its handle `run`) its process."
  def spawn_run(name, module, type, workflow_id, run) do
    case Process.start_fresh(name, module, workflow_id, run) do
      {:ok, _pid} ->
        :ok

      # The reconciler saw the new run first and gave it a process.
      {:error, {:already_started, _pid}} ->
        :ok

      # The start is durable: the run gets its process from the reconciler
      # (at once, or from its first sweep if the instance is starting).
      {:error, _reason} ->
        Reconciler.respawn(name, workflow_id, type)
    end
  end

  @doc "A random UUIDv4."
  def uuid do
    <<a::48, _::4, b::12, _::2, c::62>> = :rand.bytes(16)
    <<u0::32, u1::16, u2::16, u3::16, u4::48>> = <<a::48, 4::4, b::12, 2::2, c::62>>
    :io_lib.format("~8.16.0b-~4.16.0b-~4.16.0b-~4.16.0b-~12.16.0b", [u0, u1, u2, u3, u4]) |> IO.iodata_to_binary()
  end
end
