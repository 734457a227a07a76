defmodule Aion.Activity.Runner do
  @moduledoc false
  # Runs the activity executions of a run process, and records their ends.
  #
  # Executions belong to their run (Aion.Ownership): an earlier execution of
  # the same command still running on this node (left by a process of the
  # run that died) is stopped before a new one starts; an execution whose
  # run process died before it began does not run; the run's monitor stops
  # whatever is left when the process ends. The answer is a message tagged
  # with the run's activation and the execution's own ref, so a late answer
  # of an abandoned execution is dropped. The run process keeps its
  # executions in flight in its dictionary, and records each one's result
  # when it arrives, whatever its code is waiting for.

  alias Aion.{Ownership, Payload}
  alias Aion.Workflow.Command

  @executions :"$aion_executions"

  @doc """
  Starts `{module, function, args}` as command `ordinal`, with
  `{timeout, {queue, limit}}`; an execution of a limited queue waits for a
  slot first (Aion.Activity.Queues), and its timeout starts once it runs.
  `dispatch` is
  `:first` for a command this process just recorded (nothing can have run it
  yet) or `:again` for one recorded by an earlier process of the run.
  """
  def start(context, ordinal, {_module, _function, _args} = mfa, {timeout, {queue, limit}}, dispatch) when dispatch in [:first, :again] do
    if dispatch == :again, do: Ownership.stop_activities(context.instance, context.workflow_id, {context.run_id, ordinal})
    %{instance: instance, workflow_id: workflow_id, run_id: run_id, tag: tag} = context
    owner = self()
    attempt = make_ref()
    queued? = limit != :infinity

    {:ok, pid} =
      Task.Supervisor.start_child(context.activities, fn ->
        with :ok <- Ownership.claim_activity(instance, workflow_id, run_id, ordinal, owner) do
          if queued? do
            :ok = Aion.Activity.Queues.checkout(instance, queue)
            send(owner, {:aion, tag, {:activity_running, ordinal, attempt}})
          end

          send(owner, {:aion, tag, {:activity, ordinal, attempt, invoke(mfa)}})
        end
      end)

    execution = %{attempt: attempt, monitor: Process.monitor(pid), timer: nil, mfa: mfa, timeout: timeout, tag: tag}
    execution = if queued?, do: execution, else: arm(execution, ordinal)
    Process.put(@executions, Map.put(executions(), ordinal, execution))
    :ok
  end

  @doc "Whether an execution of this process is running."
  def in_flight?, do: executions() != %{}

  @doc "Execution `attempt` of command `ordinal` got its queue's slot and runs: its timeout starts."
  def running(ordinal, attempt) do
    with {:ok, execution} <- current(ordinal, attempt) do
      Process.put(@executions, Map.put(executions(), ordinal, arm(execution, ordinal)))
    end

    :ok
  end

  defp arm(%{timeout: :infinity} = execution, _ordinal), do: execution

  defp arm(execution, ordinal) do
    %{execution | timer: Process.send_after(self(), {:aion, execution.tag, {:activity_timeout, ordinal, execution.attempt}}, execution.timeout)}
  end

  @doc "Execution `attempt` of command `ordinal` answered: records its result."
  def finished(context, ordinal, attempt, result) do
    with {:ok, execution} <- current(ordinal, attempt) do
      record(context, ordinal, execution, result)
    end
  end

  @doc "Execution `attempt` of command `ordinal` ran out of time."
  def timed_out(context, ordinal, attempt) do
    with {:ok, execution} <- current(ordinal, attempt) do
      Ownership.stop_activities(context.instance, context.workflow_id, {context.run_id, ordinal})
      error = Aion.Error.new(:activity_timeout, "activity #{name(execution.mfa)} did not finish within #{execution.timeout} ms")
      record(context, ordinal, execution, {:error, error})
    end
  end

  @doc "A monitored process went down: if it is an execution, records its exit. Returns whether it was one."
  def down(context, monitor, reason) do
    case Enum.find(executions(), fn {_ordinal, execution} -> execution.monitor == monitor end) do
      nil ->
        false

      {ordinal, execution} ->
        error = Aion.Error.new(:activity_exited, "activity #{name(execution.mfa)} exited: #{inspect(reason)}")
        record(context, ordinal, execution, {:error, error})
        true
    end
  end

  @doc "Stops the executions of commands `ordinals` (their cancellation is recorded)."
  def cancel(context, ordinals) do
    for ordinal <- ordinals, execution = executions()[ordinal] do
      forget(ordinal, execution)
      Ownership.stop_activities(context.instance, context.workflow_id, {context.run_id, ordinal})
    end

    :ok
  end

  defp record(context, ordinal, execution, result) do
    forget(ordinal, execution)

    {command, value} =
      case result do
        {:ok, value} -> {:activity_completed, value}
        {:error, reason} -> {:activity_failed, reason}
      end

    case Payload.encode(value, "the result of activity #{name(execution.mfa)}") do
      {:ok, payload} -> Command.record_outcome(context, {command, ordinal, payload})
      {:error, error} -> Command.record_outcome(context, {:activity_failed, ordinal, Payload.encode!(error)})
    end
  end

  defp current(ordinal, attempt) do
    case executions() do
      %{^ordinal => %{attempt: ^attempt} = execution} -> {:ok, execution}
      _ -> :stale
    end
  end

  defp forget(ordinal, execution) do
    Process.demonitor(execution.monitor, [:flush])
    if execution.timer, do: Process.cancel_timer(execution.timer)
    Process.put(@executions, Map.delete(executions(), ordinal))
  end

  defp executions, do: Process.get(@executions, %{})

  defp name({module, function, args}), do: "#{inspect(module)}.#{function}/#{length(args)}"

  defp invoke({module, function, args}) do
    case apply(module, function, args) do
      {:ok, value} -> {:ok, value}
      {:error, reason} -> {:error, reason}
      :ok -> {:ok, :ok}
      value -> {:ok, value}
    end
  rescue
    exception -> {:error, Aion.Error.from_crash(:activity_raised, :error, exception, __STACKTRACE__)}
  catch
    :exit, reason -> {:error, Aion.Error.from_crash(:activity_exited, :exit, reason, __STACKTRACE__)}
    kind, value -> {:error, Aion.Error.from_crash(:activity_raised, kind, value, __STACKTRACE__)}
  end
end
