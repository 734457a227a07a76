defmodule Aion.Ownership do
  @moduledoc false
  # Who owns what, on this node: exactly one process per running run, and the
  # activity executions of that run. Everything that decides ownership goes
  # through here, so that leases (several nodes sharing a store) can replace
  # the registries without touching workflow code.
  #
  # A run is owned by the process registered as {instance, {:workflow, id}}
  # in Aion.Registry. Activity executions register themselves in
  # Aion.Activities under {instance, workflow_id} with {run_id, ordinal}.

  @grace Aion.Ownership.Grace

  @doc "Claims the run of `workflow_id` for the calling process."
  def claim_run(name, workflow_id, attempts \\ 50) do
    case Registry.register(Aion.Registry, {name, {:workflow, workflow_id}}, nil) do
      {:ok, _} ->
        :ok

      {:error, {:already_registered, pid}} ->
        # A process that just exited may hold the name a moment longer: the
        # registry drops it when it hears of the exit.
        if attempts > 0 and not Process.alive?(pid) do
          Process.sleep(2)
          claim_run(name, workflow_id, attempts - 1)
        else
          {:error, {:already_started, pid}}
        end
    end
  end

  @doc "The process owning the run of `workflow_id`, or nil."
  def run_owner(name, workflow_id) do
    case Registry.lookup(Aion.Registry, {name, {:workflow, workflow_id}}) do
      [{pid, _}] -> pid
      [] -> nil
    end
  end

  @doc false
  # The table of cancelled executions in their grace period (owned by the
  # application's master process, so it lives as long as :aion runs).
  def init, do: :ets.new(@grace, [:named_table, :public, :set])

  @doc """
  An execution was cancelled and told so (its next heartbeat raises): it
  has `grace` ms to return, then it is killed. Meanwhile
  `stop_activities/3` leaves it alone, even when its run ends.
  """
  def stop_after_grace(pid, grace) do
    :ets.insert(@grace, {pid})

    spawn(fn ->
      ref = Process.monitor(pid)

      receive do
        {:DOWN, ^ref, :process, ^pid, _} -> :ok
      after
        grace ->
          Process.exit(pid, :kill)

          receive do
            {:DOWN, ^ref, :process, ^pid, _} -> :ok
          end
      end

      :ets.delete(@grace, pid)
    end)

    :ok
  end

  @doc """
  Called by an activity execution, before it runs any user code: registers
  it, then checks that the run process that dispatched it is still alive. An
  execution whose run died meanwhile must not run (a newer process of the
  run dispatches its own, after stopping every registered earlier one).
  """
  def claim_activity(name, workflow_id, run_id, ordinal, dispatcher) do
    {:ok, _} = Registry.register(Aion.Activities, {name, workflow_id}, {run_id, ordinal})
    if Process.alive?(dispatcher), do: :ok, else: {:error, :orphaned}
  end

  @doc """
  Stops, and waits for the end of, the activity executions of a workflow
  (only those of command `ordinal` of run `run_id`, when given): no two
  executions of one scheduled activity run at once on this node, and
  activities die with their run. `{:run, run_id}` stops those of run
  `run_id` (all of the workflow's when `run_id` is nil).
  """
  def stop_activities(name, workflow_id, which \\ :all) do
    for {pid, key} <- Registry.lookup(Aion.Activities, {name, workflow_id}),
        stops?(which, key),
        pid != self(),
        not :ets.member(@grace, pid) do
      kill(pid)
    end

    :ok
  end

  defp stops?(:all, _key), do: true
  defp stops?({:run, nil}, _key), do: true
  defp stops?({:run, run_id}, {key_run_id, _ordinal}), do: run_id == key_run_id
  defp stops?(which, key), do: which == key

  @doc "Kills `pid` and waits until it is gone."
  def kill(pid) do
    ref = Process.monitor(pid)
    Process.exit(pid, :kill)

    receive do
      {:DOWN, ^ref, :process, ^pid, _} -> :ok
    end
  end
end
