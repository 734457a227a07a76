defmodule Aion.WorkflowProcess do
  @moduledoc false
  # One process per run, under the instance's supervisor for the workflow's
  # type. It registers as {instance, {:workflow, id}} (so one process per
  # workflow id per node), loads the run (or takes the handle of a run just
  # started), asks a tracker to monitor it, then runs the workflow's code from
  # the top: replay is that same code resolving its commands from history.
  # It ends by exiting with the outcome as the reason (see Aion.Tracker).

  require Logger

  alias Aion.{Instance, Native, Payload, Tracker}

  @context :"$aion_workflow"

  def child_spec(arg) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [arg]}, restart: :temporary}
  end

  @doc false
  # Spawns the process of a run whose workflow_started was just recorded.
  def start_fresh(name, module, workflow_id, run) do
    start(name, module, {:fresh, name, module, workflow_id, run})
  end

  @doc false
  # Spawns a process that loads the workflow's running run and replays it.
  def resume(name, module, workflow_id) do
    start(name, module, {:resume, name, module, workflow_id, nil})
  end

  defp start(name, module, arg) do
    DynamicSupervisor.start_child(Instance.workflows_supervisor(name, Aion.Workflow.type(module)), {__MODULE__, arg})
  end

  def start_link(arg), do: :proc_lib.start_link(__MODULE__, :init, [arg])

  @doc false
  def context do
    Process.get(@context) ||
      raise RuntimeError, "Aion workflow functions can only be called from workflow code (inside run/1)"
  end

  def init({mode, name, module, workflow_id, run}) do
    case register(name, workflow_id) do
      :ok ->
        :proc_lib.init_ack({:ok, self()})
        {:ok, instance} = Instance.lookup(name)
        {run, info} = open(mode, instance, workflow_id, run)
        run_meta = %{workflow_id: workflow_id, run_id: info.run_id, generation: info.generation, module: module}
        :ok = Tracker.track(instance, workflow_id, run_meta)

        Process.put(@context, %{
          instance: name,
          run: run,
          workflow_id: workflow_id,
          run_id: info.run_id,
          activities: Instance.via(name, :activities)
        })

        exit(execute(module, workflow_id, run, Payload.decode(info.input)))

      {:error, _} = error ->
        :proc_lib.init_ack(error)
    end
  end

  # A process that just exited may still hold the name for a moment: the
  # registry drops it when it hears of the exit.
  defp register(name, workflow_id, attempts \\ 50) do
    case Registry.register(Aion.Registry, {name, {:workflow, workflow_id}}, nil) do
      {:ok, _} ->
        :ok

      {:error, {:already_registered, pid}} ->
        if attempts > 0 and not Process.alive?(pid) do
          Process.sleep(2)
          register(name, workflow_id, attempts - 1)
        else
          {:error, {:already_started, pid}}
        end
    end
  end

  defp open(:fresh, _instance, _workflow_id, run) do
    case Native.attach(run) do
      :ok -> {run, Native.run_info(run)}
      {:error, error} -> exit({:shutdown, {:aion_superseded, Aion.Error.from_native(error)}})
    end
  end

  defp open(:resume, instance, workflow_id, nil) do
    case Native.call(&Native.load_run(instance.engine, workflow_id, &1)) do
      {:ok, run, info} ->
        {run, info}

      {:error, %Aion.Error{reason: :not_running}} ->
        exit({:shutdown, :aion_not_running})

      {:error, error} ->
        Logger.error("Aion: cannot resume workflow #{workflow_id}, skipping it: #{error.message}")
        exit({:shutdown, {:aion_load_failed, error}})
    end
  end

  defp execute(module, workflow_id, run, input) do
    case run_code(module, input) do
      {:completed, value} ->
        with :ok <- finish(run),
             {:ok, payload} <- Payload.encode(value, "the workflow's result") do
          {:shutdown, {:aion_completed, payload}}
        else
          {:error, error} -> failed(workflow_id, error)
        end

      {:failed, error} ->
        failed(workflow_id, error)

      {:engine_error, error} ->
        {:shutdown, {:aion_engine_error, error}}

      :superseded ->
        {:shutdown, :aion_superseded}
    end
  end

  defp run_code(module, input) do
    case module.run(input) do
      {:ok, value} -> {:completed, value}
      {:error, reason} -> {:failed, reason}
      value -> {:completed, value}
    end
  catch
    :exit, {:aion_nondeterminism, error} -> {:failed, error}
    :exit, {:aion_engine_error, error} -> {:engine_error, error}
    :exit, :aion_superseded -> :superseded
    kind, value -> {:failed, Aion.Error.from_crash(:workflow_raised, kind, value, __STACKTRACE__)}
  end

  defp finish(run) do
    case Native.finish(run) do
      :ok -> :ok
      {:error, error} -> {:error, Aion.Error.from_native(error)}
    end
  end

  defp failed(workflow_id, error) do
    log_failure(workflow_id, error)

    payload =
      case Payload.encode(error) do
        {:ok, payload} -> payload
        {:error, _} -> Payload.encode!(Aion.Error.new(:workflow_failed, inspect(error)))
      end

    {:shutdown, {:aion_failed, payload}}
  end

  defp log_failure(workflow_id, %Aion.Error{reason: reason, message: message})
       when reason in [:nondeterminism, :workflow_raised] do
    Logger.error("Aion: workflow #{workflow_id} failed: #{message}")
  end

  defp log_failure(_workflow_id, _error), do: :ok
end
