defmodule Aion.Tracker do
  @moduledoc false
  # The completion handler. Every workflow process asks a tracker (one of
  # several partitions, by workflow id) to monitor it before its code runs;
  # when it exits, the tracker reads the outcome from the exit reason, has the
  # engine record it (never overwriting an ending the history already has),
  # and wakes every process awaiting the workflow.
  #
  # Exit reasons of a workflow process:
  #   {:shutdown, {:aion_completed, payload}}  -> workflow_completed
  #   {:shutdown, {:aion_failed, payload}}     -> workflow_failed
  #   {:shutdown, {:aion_engine_error, error}} -> nothing recorded; respawned later
  #   :shutdown, {:shutdown, _}, :normal       -> nothing recorded (instance stopping,
  #                                               run taken over, load failed)
  #   anything else (killed, crashed)          -> workflow_failed
  use GenServer

  require Logger

  alias Aion.{Instance, Native, Payload, WorkflowProcess}

  @max_backoff 30_000

  def start_link({config, index}) do
    GenServer.start_link(__MODULE__, config.name, name: Instance.via(config.name, {:tracker, index}))
  end

  def child_spec({config, index}) do
    %{id: {__MODULE__, index}, start: {__MODULE__, :start_link, [{config, index}]}}
  end

  @doc false
  # Called by a workflow process: monitor me, then tell me to go.
  def track(instance, workflow_id, run) do
    send(GenServer.whereis(Instance.tracker(instance, workflow_id)), {:track, self(), run})

    receive do
      :aion_go -> :ok
    end
  end

  @impl true
  def init(name) do
    {:ok, instance} = Instance.lookup(name)
    {:ok, %{instance: instance, runs: %{}, replies: %{}, failures: %{}}}
  end

  @impl true
  def handle_info({:track, pid, run}, state) do
    monitor = Process.monitor(pid)
    send(pid, :aion_go)
    {:noreply, put_in(state.runs[monitor], run)}
  end

  def handle_info({:DOWN, monitor, :process, _pid, reason}, state) do
    case Map.pop(state.runs, monitor) do
      {nil, _runs} -> {:noreply, state}
      {run, runs} -> {:noreply, exited(run, reason, %{state | runs: runs})}
    end
  end

  def handle_info({reply_ref, reply}, state) when is_map_key(state.replies, reply_ref) do
    {run, replies} = Map.pop(state.replies, reply_ref)
    state = %{state | replies: replies}

    case reply do
      {:ok, terminal} ->
        notify(state.instance.config.name, run.workflow_id, terminal)
        {:noreply, %{state | failures: Map.delete(state.failures, run.workflow_id)}}

      {:error, error} ->
        Logger.error("Aion: could not record the end of workflow #{run.workflow_id}: #{inspect(error)}")
        {:noreply, respawn_later(run, state)}
    end
  end

  def handle_info({:respawn, run}, state) do
    case WorkflowProcess.resume(state.instance.config.name, run.module, run.workflow_id) do
      {:ok, _pid} -> :ok
      {:error, {:already_started, _pid}} -> :ok
      {:error, reason} -> Logger.error("Aion: could not respawn workflow #{run.workflow_id}: #{inspect(reason)}")
    end

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp exited(run, {:shutdown, {:aion_completed, payload}}, state), do: complete(run, {:completed, payload}, state)
  defp exited(run, {:shutdown, {:aion_failed, payload}}, state), do: complete(run, {:failed, payload}, state)

  defp exited(run, {:shutdown, {:aion_engine_error, error}}, state) do
    Logger.error("Aion: workflow #{run.workflow_id} stopped on an engine error, will retry: #{inspect(error)}")
    release(run, state)
    respawn_later(run, state)
  end

  defp exited(run, reason, state) when reason in [:normal, :shutdown], do: stopped(run, state)
  defp exited(run, {:shutdown, _}, state), do: stopped(run, state)

  defp exited(run, reason, state) do
    error =
      Aion.Error.new(:workflow_exited, "workflow process exited: #{inspect(reason)}", details: %{exit_reason: inspect(reason)})

    complete(run, {:failed, Payload.encode!(error)}, state)
  end

  defp stopped(run, state) do
    release(run, state)
    state
  end

  defp complete(run, outcome, state) do
    ref = make_ref()
    :ok = Native.complete_run(state.instance.engine, run.workflow_id, run.run_id, outcome, ref)
    put_in(state.replies[ref], run)
  end

  defp release(run, state), do: Native.release_run(state.instance.engine, run.workflow_id, run.generation)

  defp respawn_later(run, state) do
    failures = Map.get(state.failures, run.workflow_id, 0)
    Process.send_after(self(), {:respawn, run}, min(@max_backoff, 100 * Integer.pow(2, failures)))
    %{state | failures: Map.put(state.failures, run.workflow_id, failures + 1)}
  end

  defp notify(name, workflow_id, terminal) do
    Registry.dispatch(Aion.Awaiters, {name, workflow_id}, fn awaiters ->
      for {pid, _} <- awaiters, do: send(pid, {:aion_done, name, workflow_id, terminal})
    end)
  end
end
