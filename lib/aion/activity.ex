defmodule Aion.Activity do
  @moduledoc """
  Functions for the code of an activity, while it runs (see
  `Aion.Workflow.activity/4`): its progress (`heartbeat/1`), what it is
  (`info/0`), and the progress an earlier attempt reported
  (`last_heartbeat/0`). Called outside an activity, they raise
  `RuntimeError`.

  Activities are at-least-once: an attempt may run again after a crash (with
  the same attempt number: a crash of the node is not the activity's
  failure), and a failed attempt is retried when its `:retry` policy allows. A result
  that was recorded is never recomputed. Write activities to be idempotent,
  and use `last_heartbeat/0` to resume long work where it stopped:

      def import_rows(file) do
        start = Aion.Activity.last_heartbeat() || 0

        file
        |> rows()
        |> Enum.drop(start)
        |> Enum.with_index(start)
        |> Enum.each(fn {row, index} ->
          insert(row)
          Aion.Activity.heartbeat(index + 1)
        end)
      end
  """

  alias Aion.Activity.Context

  @doc """
  Reports that the activity is alive, with `details` of its progress.

  Cheap to call often: the details reach the workflow's process at most
  once a second (more often when `:heartbeat_timeout` is short), and are
  saved durably at most every 10 seconds and when an attempt fails, for
  `last_heartbeat/0` of a later attempt. Each heartbeat that reaches the
  workflow restarts the activity's `:heartbeat_timeout`.

  Once the activity is cancelled (its workflow was cancelled, or a race or
  `with_timeout` dropped it), `heartbeat/1` raises `Aion.CancelledError`:
  rescue it to clean up. The attempt is killed after its `:cancel_grace`
  (default 5 seconds) if it has not returned by then.

      Enum.each(batches, fn batch ->
        send_batch(batch)
        Aion.Activity.heartbeat(%{sent: batch.last_id})
      end)
  """
  @spec heartbeat(term()) :: :ok
  def heartbeat(details \\ nil), do: Context.heartbeat(context!("heartbeat/1"), details)

  @doc """
  What the running activity is: a map with `:workflow_id`, `:run_id`,
  `:activity` (`"Module.function"`), `:ordinal` (the activity's command
  number in the run), `:attempt` (from 1), `:deadline` (the `DateTime` by
  which this attempt must finish, from `:start_to_close` and
  `:schedule_to_close`, or `nil`) and `:heartbeat_timeout` (ms or
  `:infinity`).

      %{attempt: attempt} = Aion.Activity.info()
  """
  @spec info() :: map()
  def info do
    info = context!("info/0")

    deadlines =
      [info.schedule_deadline, if(info.start_to_close != :infinity, do: info.started_at + info.start_to_close * 1000)]
      |> Enum.reject(&is_nil/1)

    deadline = if deadlines == [], do: nil, else: DateTime.from_unix!(Enum.min(deadlines), :microsecond)

    %{
      workflow_id: info.workflow_id,
      run_id: info.run_id,
      activity: info.activity,
      ordinal: info.ordinal,
      attempt: info.attempt,
      deadline: deadline,
      heartbeat_timeout: info.heartbeat_timeout
    }
  end

  @doc """
  The details of the latest heartbeat of an earlier attempt of this
  activity, or `nil` (first attempt, or no attempt heartbeated).
  """
  @spec last_heartbeat() :: term()
  def last_heartbeat, do: context!("last_heartbeat/0").last_heartbeat

  defp context!(function) do
    Context.get() ||
      raise RuntimeError, "Aion.Activity.#{function} can only be called by the code of an activity, while it runs"
  end
end
