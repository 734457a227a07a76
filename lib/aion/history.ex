defmodule Aion.History do
  @moduledoc """
  Renders workflow histories (from `Aion.history/2`) for people.

      {:ok, events} = Aion.history(MyApp.Aion, id)
      IO.puts(Aion.History.format(events))

  prints one line per event, with the time since the first event:

        #1  +0.000s  workflow_started     MyApp.Order  input: %{order_id: 42}
        #2  +0.001s  activity_scheduled   #0 MyApp.Payments.reserve  input: [42, 1000]
        ...
  """

  @doc false
  # Times arrive from the NIF as microseconds since the epoch: the `keys` of
  # `map` that hold one become DateTimes.
  def times(map, keys) do
    Enum.reduce(keys, map, fn key, map ->
      case map do
        %{^key => micros} when is_integer(micros) -> %{map | key => time(micros)}
        _ -> map
      end
    end)
  end

  @doc false
  # Times beyond what DateTime holds stay microsecond integers.
  def time(micros) do
    case DateTime.from_unix(micros, :microsecond) do
      {:ok, at} -> at
      {:error, _} -> micros
    end
  end

  @doc false
  # Payload fields arrive from the NIF as {:payload, bytes}: decoded here, on
  # a scheduler, since the NIF never builds terms from external term format.
  def decode_payloads(event) do
    Map.new(event, fn
      {key, {:payload, bytes}} when is_binary(bytes) -> {key, decode(bytes)}
      entry -> entry
    end)
  end

  defp decode(bytes) do
    :erlang.binary_to_term(bytes)
  rescue
    ArgumentError -> {:undecodable, bytes}
  end

  @doc "One line per event: seq, time since the first event, type, details."
  @spec format([map()]) :: String.t()
  def format([]), do: ""

  def format([first | _] = events) do
    Enum.map_join(events, "\n", fn event ->
      offset = DateTime.diff(event.recorded_at, first.recorded_at, :microsecond) / 1_000_000

      :io_lib.format("~4s  +~.3fs  ~-24s ~ts", [
        "##{event.seq}",
        offset,
        Atom.to_string(event.type),
        details(event)
      ])
      |> IO.iodata_to_binary()
    end)
  end

  defp details(%{type: :workflow_started} = e), do: "#{e.workflow_type}  input: #{short(e.input)}"
  defp details(%{type: :workflow_completed} = e), do: "result: #{short(e.result)}"
  defp details(%{type: :workflow_failed} = e), do: "error: #{short(e.error)}"
  defp details(%{type: :activity_scheduled} = e), do: "##{e.command} #{e.activity_type}  input: #{short(e.input)}"
  defp details(%{type: :activity_completed} = e), do: "##{e.command} result: #{short(e.result)}"
  defp details(%{type: :activity_failed} = e), do: "##{e.command} error: #{short(e.error)}"
  defp details(%{type: :timer_started} = e), do: "##{e.command} until #{DateTime.to_iso8601(e.fire_at)}"
  defp details(%{type: :timer_fired} = e), do: "##{e.command}"
  defp details(%{type: :marker_recorded} = e), do: "##{e.command} #{e.name}: #{short(e.value)}"

  defp details(event) do
    event
    |> Map.drop([:seq, :recorded_at, :type, :workflow_id])
    |> Enum.map_join("  ", fn {key, value} -> "#{key}: #{short(value)}" end)
  end

  defp short(%Aion.Error{message: message}), do: "%Aion.Error{} " <> message
  defp short(value), do: inspect(value, limit: 8, printable_limit: 80)
end
