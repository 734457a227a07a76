defmodule Aion.Activity.Runner do
  @moduledoc false
  # Runs one execution of an activity for the run process that calls it, and
  # waits for it in the run's wait loop.
  #
  # Executions belong to their run (Aion.Ownership): an earlier execution of
  # the same command still running on this node (left by a process of the
  # run that died) is stopped before a new one starts; an execution whose
  # run process died before it began does not run; the run's monitor stops
  # whatever is left when the process ends. The answer is a message tagged
  # with the run's activation and the execution's own ref, so a late answer
  # of an abandoned execution is dropped.

  alias Aion.Ownership
  alias Aion.Workflow.Wait

  @doc """
  Runs `{module, function, args}` as command `ordinal`; returns {:ok, value}
  | {:error, reason}. `dispatch` is `:first` for a command this process just
  recorded (nothing can have run it yet) or `:again` for one recorded by an
  earlier process of the run.
  """
  def execute(context, ordinal, {module, function, args} = mfa, timeout, dispatch) when dispatch in [:first, :again] do
    name = "#{inspect(module)}.#{function}/#{length(args)}"
    if dispatch == :again, do: Ownership.stop_activities(context.instance, context.workflow_id, {context.run_id, ordinal})
    execution = dispatch(context, ordinal, mfa)

    case Wait.activity(context, ordinal, execution, timeout) do
      {:done, result} ->
        result

      {:exited, reason} ->
        {:error, Aion.Error.new(:activity_exited, "activity #{name} exited: #{inspect(reason)}")}

      :timeout ->
        Ownership.stop_activities(context.instance, context.workflow_id, {context.run_id, ordinal})
        Process.demonitor(execution.monitor, [:flush])
        {:error, Aion.Error.new(:activity_timeout, "activity #{name} did not finish within #{timeout} ms")}
    end
  end

  defp dispatch(context, ordinal, mfa) do
    %{instance: instance, workflow_id: workflow_id, run_id: run_id, tag: tag} = context
    owner = self()
    attempt = make_ref()

    {:ok, pid} =
      Task.Supervisor.start_child(context.activities, fn ->
        with :ok <- Ownership.claim_activity(instance, workflow_id, run_id, ordinal, owner) do
          send(owner, {:aion, tag, {:activity, ordinal, attempt, invoke(mfa)}})
        end
      end)

    %{pid: pid, monitor: Process.monitor(pid), attempt: attempt}
  end

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
