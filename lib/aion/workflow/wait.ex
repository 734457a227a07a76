defmodule Aion.Workflow.Wait do
  @moduledoc false
  # The one place a workflow process blocks. Outcomes reach it as tagged
  # messages {:aion, tag, event} (the tag names this activation of the run),
  # so that workflow code cannot take them for its own and messages meant
  # for an earlier activation or an abandoned attempt are dropped here.
  #
  # A wait asks the engine what it waits for (the first outcome among some
  # commands, or the next message of a name), and asks again after every
  # notice: the engine decides, in history order, which outcome came first
  # and whether an interrupt (a cancellation, the timer of an enclosing
  # with_timeout) came before it, so a replay decides the same way. Results
  # of the run's activities are recorded here, whatever the code waits for.
  #
  # A wait with no activity in flight may evict the run (after the
  # instance's :evict_idle_after): the process ends, and the timer's firing
  # or the message's arrival wakes the run later. A timer that should have
  # fired and did not is asked about (and re-armed) instead of being waited
  # on forever.

  alias Aion.Activity.Runner
  alias Aion.Engine
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Command

  # How long past its due time a timer may stay silent before the engine is
  # asked about it; doubles up to @max_check.
  @first_check 1_000
  @max_check 30_000

  @doc "Waits for the first outcome among commands `ordinals`: {ordinal, outcome}."
  def settle(context, ordinals) do
    wait(context, %{ordinals: ordinals, message: false}, fn scope -> Engine.settle(context.run, ordinals, scope) end)
  end

  @doc "Waits for the next message named `name` in `inbox` (:signal | :update): {ordinal, id, payload}."
  def message(context, inbox, name) do
    wait(context, %{ordinals: [], message: true}, fn scope -> Engine.take_message(context.run, inbox, name, scope) end)
  end

  defp wait(context, wait, check) do
    evict_at =
      case context.evict_idle_after do
        :never -> :infinity
        ms -> now() + ms
      end

    loop(context, Map.merge(wait, %{check: check, evict_at: evict_at, check_every: @first_check}))
  end

  defp loop(context, wait) do
    scope = Command.scope()

    case wait.check.(scope) do
      :waiting -> block(context, wait, scope)
      {:won, ordinal, outcome} -> {ordinal, outcome}
      {:message, ordinal, id, payload} -> {ordinal, id, payload}
      {:interrupted, _, _} = interrupt -> Command.interrupted(context, interrupt)
      {:error, error} -> Command.engine_error(context, error)
    end
  end

  defp block(context, wait, scope) do
    check_at = late_timer_check(wait, scope)

    case next(context, min(wait.evict_at, check_at)) do
      :notice ->
        loop(context, wait)

      :stale ->
        block(context, wait, scope)

      :timeout ->
        cond do
          wait.evict_at <= now() -> evict(context, wait, scope)
          true -> check_timers(context, wait, scope)
        end
    end
  end

  defp evict(context, wait, scope) do
    if Runner.in_flight?() do
      block(context, %{wait | evict_at: :infinity}, scope)
    else
      case Engine.evict(context.run, wait.ordinals ++ scope.timers, scope, wait.message) do
        :ok -> RunProcess.stop(:aion_evicted)
        # What it waits for happened: its notice is on the way.
        :fired -> loop(context, %{wait | evict_at: :infinity})
        {:error, error} -> Command.engine_error(context, error)
      end
    end
  end

  # Timers that are overdue are asked about; a pending one is re-armed.
  defp check_timers(context, wait, scope) do
    for ordinal <- timers(wait, scope), due(ordinal) <= now() do
      case Engine.timer_fired(context.run, ordinal) do
        {:ok, _fired} -> :ok
        {:error, error} -> Command.engine_error(context, error)
      end
    end

    loop(context, %{wait | check_every: min(2 * wait.check_every, @max_check)})
  end

  defp late_timer_check(wait, scope) do
    case for(ordinal <- timers(wait, scope), due = due(ordinal), due != :infinity, do: due) do
      [] -> :infinity
      dues -> max(Enum.min(dues), now()) + wait.check_every
    end
  end

  defp timers(wait, scope), do: Enum.filter(wait.ordinals ++ scope.timers, &(due(&1) != :infinity))

  @doc "Notes when timer `ordinal` is due (in ms from now)."
  def timer_due(ordinal, due_in), do: Process.put({:aion_timer_due, ordinal}, now() + max(due_in, 0))

  defp due(ordinal), do: Process.get({:aion_timer_due, ordinal}, :infinity)

  # The only receive of a workflow process. `deadline` is in this module's
  # clock (now/0) or :infinity. Returns :notice when the engine may have
  # something new to say, :stale for a message to ignore, or :timeout.
  defp next(%{tag: tag, parent: parent} = context, deadline) do
    receive do
      {:aion, ^tag, {kind, _, _, _, _} = event} when kind == :activity ->
        Runner.handle(context, event)

      {:aion, ^tag, {kind, _, _} = event} when kind in [:activity_running, :activity_deadline, :activity_retry] ->
        Runner.handle(context, event)

      {:aion, ^tag, {kind, _, _, _} = event} when kind in [:activity_timeout, :activity_heartbeat] ->
        Runner.handle(context, event)

      # Terminated or timed out: no more of the code runs.
      {:aion, ^tag, :ended} ->
        RunProcess.stop(:aion_ended)

      {:aion, ^tag, _notice} ->
        :notice

      {:aion, _other_activation, _event} ->
        :stale

      # A query (Aion.query/5), answered between two steps of the code; the wait goes on.
      {:aion_query, _reply_to, _name, _args} = query ->
        Aion.Workflow.Query.answer(query)
        :stale

      {:DOWN, monitor, :process, _pid, reason} ->
        if Runner.down(context, monitor, reason), do: :notice, else: :stale

      # Workflow code trapping exits must not delay the instance's shutdown.
      {:EXIT, ^parent, reason} ->
        RunProcess.exit_now(reason)
    after
      timeout(deadline) -> :timeout
    end
  end

  defp timeout(:infinity), do: :infinity
  defp timeout(deadline), do: max(deadline - now(), 0)

  defp now, do: System.monotonic_time(:millisecond)
end
