defmodule Aion.Workflow.Wait do
  @moduledoc false
  # The one place a workflow process blocks. Outcomes reach it as tagged
  # messages {:aion, tag, event} (the tag names this activation of the run),
  # so that workflow code cannot take them for its own and messages meant
  # for an earlier activation or an abandoned attempt are dropped here.
  #
  # While it waits on a durable timer the run may be evicted (after the
  # instance's :evict_idle_after): the process ends, and the timer's firing
  # wakes the run later. A timer that should have fired and did not is asked
  # about (and re-armed) instead of being waited on forever.

  alias Aion.Engine
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Command

  # How long past its due time a timer may stay silent before the engine is
  # asked about it; doubles up to @max_check.
  @first_check 1_000
  @max_check 30_000

  @doc "Waits until timer `ordinal`, due in `due_in` ms, fires. Returns :fired."
  def timer(context, ordinal, due_in) do
    evict_at =
      case context.evict_idle_after do
        :never -> :infinity
        ms -> now() + ms
      end

    wait_timer(context, ordinal, evict_at, now() + max(due_in, 0) + @first_check, @first_check)
  end

  defp wait_timer(context, ordinal, evict_at, check_at, check_every) do
    case next(context, nil, min(evict_at, check_at)) do
      {:event, {:timer_fired, ^ordinal}} ->
        :fired

      :timeout ->
        if evict_at <= now() do
          evict(context, ordinal, check_at, check_every)
        else
          check(context, ordinal, evict_at, check_every)
        end

      _other ->
        wait_timer(context, ordinal, evict_at, check_at, check_every)
    end
  end

  defp evict(context, ordinal, check_at, check_every) do
    case Engine.evict(context.run, ordinal) do
      :ok -> RunProcess.stop(:aion_evicted)
      # The firing is recorded and its message on the way: take it.
      :fired -> wait_timer(context, ordinal, :infinity, min(check_at, now() + @first_check), check_every)
      {:error, error} -> Command.engine_error(context, error)
    end
  end

  defp check(context, ordinal, evict_at, check_every) do
    case Engine.timer_fired(context.run, ordinal) do
      {:ok, true} -> :fired
      {:ok, false} -> wait_timer(context, ordinal, evict_at, now() + check_every, min(2 * check_every, @max_check))
      {:error, error} -> Command.engine_error(context, error)
    end
  end

  @doc """
  Waits for the end of activity execution `execution` of command `ordinal`:
  `{:done, result}`, `{:exited, reason}` (it died without answering) or
  `:timeout` (after `timeout` ms).
  """
  def activity(context, ordinal, execution, timeout) do
    deadline = if timeout == :infinity, do: :infinity, else: now() + timeout
    wait_activity(context, ordinal, execution, deadline)
  end

  defp wait_activity(context, ordinal, %{attempt: attempt, monitor: monitor} = execution, deadline) do
    case next(context, monitor, deadline) do
      {:event, {:activity, ^ordinal, ^attempt, result}} ->
        Process.demonitor(monitor, [:flush])
        {:done, result}

      {:down, reason} ->
        {:exited, reason}

      :timeout ->
        :timeout

      _other ->
        wait_activity(context, ordinal, execution, deadline)
    end
  end

  # The only receive of a workflow process. `deadline` is in this module's
  # clock (now/0) or :infinity.
  defp next(%{tag: tag, parent: parent}, monitor, deadline) do
    receive do
      {:aion, ^tag, event} ->
        {:event, event}

      {:aion, _other_activation, _event} ->
        :stale

      {:DOWN, ^monitor, :process, _pid, reason} ->
        {:down, reason}

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
