defmodule Aion.Activity.Context do
  @moduledoc false
  # What an activity's process knows about the attempt it runs, in its
  # process dictionary: set by Aion.Activity.Runner before the activity's
  # code runs, read by Aion.Activity.

  @key :"$aion_activity"
  @unsent :"$aion_activity_unsent_heartbeat"
  @sent_at :"$aion_activity_heartbeat_sent_at"
  @cancelled :"$aion_activity_cancelled"

  # Heartbeats reach the run's process at most this often (ms); a shorter
  # heartbeat timeout makes them more frequent (a fifth of it).
  @max_send_every 1_000

  def enter(info) do
    Process.put(@key, Map.put(info, :started_at, System.os_time(:microsecond)))
  end

  @doc "The attempt's info, or nil outside an activity."
  def get, do: Process.get(@key)

  @doc "Sends `details` to the run's process, at most every so often; raises Aion.CancelledError once the activity was cancelled."
  def heartbeat(info, details) do
    if Process.get(@cancelled), do: raise(Aion.CancelledError, reason: :activity_cancelled)

    ref = info.ref

    receive do
      {:"$aion_activity_cancelled", ^ref} ->
        Process.put(@cancelled, true)
        raise Aion.CancelledError, reason: :activity_cancelled
    after
      0 -> :ok
    end

    now = System.monotonic_time(:millisecond)

    if now - Process.get(@sent_at, now - @max_send_every) >= send_every(info) do
      send(info.owner, {:aion, info.tag, {:activity_heartbeat, info.ordinal, ref, details}})
      Process.put(@sent_at, now)
      Process.delete(@unsent)
    else
      Process.put(@unsent, {:details, details})
    end

    :ok
  end

  @doc "Details of a heartbeat not sent yet (throttled): `{:details, term}` or `:none`."
  def unsent_heartbeat, do: Process.get(@unsent, :none)

  defp send_every(%{heartbeat_timeout: :infinity}), do: @max_send_every
  defp send_every(%{heartbeat_timeout: ms}), do: min(@max_send_every, div(ms, 5))
end
