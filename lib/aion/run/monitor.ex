defmodule Aion.Run.Monitor do
  @moduledoc false
  # Watches run processes (one of several partitions, by workflow id). Every
  # run process asks to be watched before it loads its run; when it exits,
  # the monitor stops the activities it left, reads the exit reason (see
  # Aion.Run.Process), and:
  #
  #   - an outcome (completed, failed): has the engine record it (never
  #     overwriting an ending the history already has), then wakes every
  #     process awaiting the workflow;
  #   - continued as new: has the engine record the ending and the
  #     successor's start (one append), then spawns the successor's process;
  #     awaiters wait on, for the successor's ending;
  #   - evicted, blocked, already ended, ended from outside: nothing more; a history that cannot
  #     be read: the reconciler leaves the run alone;
  #   - anything else (killed from outside, a crash, an engine error, the run
  #     taken over, an instance stopping): asks the reconciler to respawn it,
  #     with backoff. A process dying is never a workflow failure.
  use GenServer

  require Logger

  alias Aion.{Engine, Instance, Ownership}
  alias Aion.Client.{Await, Start}
  alias Aion.Run.Reconciler

  def start_link({config, index}) do
    GenServer.start_link(__MODULE__, config.name, name: Instance.via(config.name, {:monitor, index}))
  end

  def child_spec({config, index}) do
    %{id: {__MODULE__, index}, start: {__MODULE__, :start_link, [{config, index}]}}
  end

  @doc false
  # Called by a run process: watch me, then tell me to go.
  def track(instance, workflow_id, type) do
    send(GenServer.whereis(Instance.monitor(instance, workflow_id)), {:track, self(), workflow_id, type})

    receive do
      :aion_go -> :ok
    end
  end

  @doc false
  # Called by a run process once its run is loaded (of workflow type `type`).
  def loaded(instance, workflow_id, run_id, generation, type) do
    send(GenServer.whereis(Instance.monitor(instance, workflow_id)), {:loaded, self(), run_id, generation, type})
    :ok
  end

  @impl true
  def init(name) do
    {:ok, instance} = Instance.lookup(name)
    {:ok, %{instance: instance, name: name, runs: %{}, replies: %{}}}
  end

  @impl true
  def handle_info({:track, pid, workflow_id, type}, state) do
    Process.monitor(pid)
    send(pid, :aion_go)
    {:noreply, put_in(state.runs[pid], %{workflow_id: workflow_id, type: type, run_id: nil, generation: nil})}
  end

  def handle_info({:loaded, pid, run_id, generation, type}, state) do
    case state.runs do
      %{^pid => run} -> {:noreply, put_in(state.runs[pid], %{run | run_id: run_id, generation: generation, type: type})}
      _ -> {:noreply, state}
    end
  end

  def handle_info({:DOWN, _monitor, :process, pid, reason}, state) do
    case Map.pop(state.runs, pid) do
      {nil, _runs} ->
        {:noreply, state}

      {run, runs} ->
        # Only this run's: a reset's new run may already run its own.
        Ownership.stop_activities(state.name, run.workflow_id, {:run, run.run_id})
        {:noreply, exited(run, reason, %{state | runs: runs})}
    end
  end

  def handle_info({reply_ref, reply}, state) when is_map_key(state.replies, reply_ref) do
    {run, replies} = Map.pop(state.replies, reply_ref)
    state = %{state | replies: replies}

    case {run, reply} do
      # Continued as new: the successor gets a process; nobody awaits the ending.
      {%{successor: _}, {:ok, continued}} ->
        successor(run, continued, state)

      {_run, {:ok, terminal}} ->
        Await.notify(state.name, run.workflow_id, terminal)

      {_run, {:error, error}} ->
        Logger.error("Aion: could not record the end of workflow #{run.workflow_id}, will retry: #{inspect(error)}")
        Reconciler.respawn(state.name, run.workflow_id, run.type)
    end

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp exited(run, {:shutdown, {:aion_completed, payload}}, state), do: complete(run, {:completed, payload}, state)
  defp exited(run, {:shutdown, {:aion_failed, payload}}, state), do: complete(run, {:failed, payload}, state)
  defp exited(run, {:shutdown, {:aion_cancelled, payload}}, state), do: complete(run, {:cancelled, payload}, state)
  defp exited(run, {:shutdown, {:aion_continued, type, payload}}, state) do
    ref = make_ref()
    :ok = Engine.continue_as_new_async(state.instance.engine, run.workflow_id, run.run_id, type, payload, ref)
    put_in(state.replies[ref], Map.put(run, :successor, type))
  end

  # Ended from outside (terminated, timed out): the engine recorded it and told the awaiters.
  defp exited(_run, {:shutdown, reason}, state) when reason in [:aion_evicted, :aion_not_running, :aion_ended], do: state

  defp exited(run, {:shutdown, {:aion_broken, _error}}, state) do
    Reconciler.broken(state.name, run.workflow_id)
    state
  end

  defp exited(run, {:shutdown, :aion_blocked}, state) do
    release(run, state)
    state
  end

  defp exited(run, reason, state) do
    release(run, state)
    log_exit(run, reason)
    Reconciler.respawn(state.name, run.workflow_id, run.type)
    state
  end

  defp log_exit(_run, reason) when reason in [:shutdown, {:shutdown, :aion_superseded}], do: :ok

  defp log_exit(run, reason) do
    Logger.warning("Aion: the process of workflow #{run.workflow_id} exited (#{inspect(reason)}); it will be respawned")
  end

  # The ending and the successor's start are durable (one append): the
  # successor's process starts like a fresh start's. If it cannot start here,
  # the reconciler gives it one (as it would after a crash right here).
  defp successor(run, {:started, successor, _new_run_id}, state) do
    case Instance.workflow_module(state.instance, run.successor) do
      {:ok, module} -> Start.spawn_run(state.name, module, run.successor, run.workflow_id, successor)
      {:error, _} -> Reconciler.respawn(state.name, run.workflow_id, run.successor)
    end
  end

  # A retry: the successor was recorded before; make sure it runs.
  defp successor(run, {:already, _new_run_id, type}, state), do: Reconciler.wake(state.name, run.workflow_id, type)

  # The run had ended another way first (terminated, timed out).
  defp successor(run, {:ended, terminal}, state), do: Await.notify(state.name, run.workflow_id, terminal)

  defp complete(run, outcome, state) do
    ref = make_ref()
    :ok = Engine.complete_run_async(state.instance.engine, run.workflow_id, run.run_id, outcome, ref)
    put_in(state.replies[ref], run)
  end

  defp release(%{generation: nil}, _state), do: :ok
  defp release(run, state), do: Engine.release_run(state.instance.engine, run.workflow_id, run.generation)
end
