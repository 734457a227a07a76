defmodule Aion.Run.Process do
  @moduledoc false
  # One process per running run, under the instance's supervisor for the
  # workflow's type. It claims the run (Aion.Ownership), asks a monitor to
  # watch it, loads the run (or takes the handle of a run just started), then
  # runs the workflow's code from the top: replay is that same code resolving
  # its commands from history.
  #
  # It ends by exiting with a reason the monitor reads (Aion.Run.Monitor):
  #   {:shutdown, {:aion_completed, payload}}   the code returned
  #   {:shutdown, {:aion_failed, payload}}      the code failed (error, raise,
  #                                             exit or throw out of run/1, or
  #                                             non-determinism with on_nondeterminism: :fail)
  #   {:shutdown, {:aion_cancelled, payload}}   the code let a cancellation end it
  #   {:shutdown, {:aion_continued, type, payload}}  the code continued as new
  #                                             (continue_as_new/2): a successor
  #                                             of `type` with input `payload`
  #   {:shutdown, :aion_evicted}                idle, waiting on a timer or a message, evicted
  #   {:shutdown, :aion_blocked}                non-determinism, suspended
  #   {:shutdown, :aion_not_running}            the run had ended already
  #   {:shutdown, :aion_ended}                  terminated or timed out meanwhile
  #   {:shutdown, {:aion_broken, error}}        its history cannot be read
  #   anything else                             not an outcome: respawned
  #
  # Stops decided inside workflow code (eviction, non-determinism, an engine
  # error) are exit signals the process sends itself after clearing
  # trap_exit: workflow code cannot catch or delay them.

  require Logger

  alias Aion.{Engine, Instance, Ownership, Payload}
  alias Aion.Run.Monitor

  @context :"$aion_run"

  def child_spec(arg) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [arg]}, restart: :temporary}
  end

  @doc false
  # Spawns the process of a run whose workflow_started was just recorded.
  def start_fresh(name, module, workflow_id, run), do: start(name, module, {:fresh, name, module, workflow_id, run})

  @doc false
  # Spawns a process that loads the workflow's running run and replays it.
  def resume(name, module, workflow_id), do: start(name, module, {:resume, name, module, workflow_id, nil})

  defp start(name, module, arg) do
    DynamicSupervisor.start_child(Instance.workflows_supervisor(name, Aion.Workflow.type(module)), {__MODULE__, arg})
  catch
    # The instance is starting or stopping: its supervisors are not there.
    :exit, reason -> {:error, {:no_supervisor, reason}}
  end

  def start_link(arg), do: :proc_lib.start_link(__MODULE__, :init, [arg])

  @doc false
  def context do
    case Process.get(@context) do
      %{} = context -> context
      {:refused, message} -> raise RuntimeError, message
      nil -> raise RuntimeError, "Aion workflow functions can only be called from workflow code (inside run/1)"
    end
  end

  @doc false
  # Makes this process run workflow code under `context` (a query's replay).
  def put_context(context), do: Process.put(@context, context)

  @doc false
  # Runs `fun` with the workflow functions refused: each raises `message`
  # (query handlers must not issue commands).
  def refusing_commands(message, fun) do
    saved = Process.put(@context, {:refused, message})

    try do
      fun.()
    after
      Process.put(@context, saved)
    end
  end

  @doc false
  # Ends the process with {:shutdown, reason}, whatever the workflow code
  # around the caller does (it may rescue, catch exits or trap them).
  def stop(reason), do: exit_now({:shutdown, reason})

  @doc false
  def exit_now(reason) do
    Process.flag(:trap_exit, false)
    Process.exit(self(), reason)

    receive do
    after
      :infinity -> :ok
    end
  end

  def init({mode, name, module, workflow_id, run}) do
    case Ownership.claim_run(name, workflow_id) do
      :ok ->
        :proc_lib.init_ack({:ok, self()})
        activate(mode, name, module, workflow_id, run)

      {:error, _} = error ->
        :proc_lib.init_ack(error)
    end
  end

  defp activate(mode, name, module, workflow_id, run) do
    {:ok, instance} = Instance.lookup(name)
    # Watched before anything can fail, so that every failure is seen.
    :ok = Monitor.track(instance, workflow_id, Aion.Workflow.type(module))
    tag = System.unique_integer([:positive])
    {run, info} = open(mode, instance, workflow_id, run, tag)
    module = module_of(instance, module, info)
    Monitor.loaded(instance, workflow_id, info.run_id, info.generation, Aion.Workflow.type(module))

    context = %{
      instance: name,
      engine: instance.engine,
      run: run,
      tag: tag,
      workflow_id: workflow_id,
      run_id: info.run_id,
      module: module,
      parent: parent(),
      activities: Instance.via(name, :activities),
      evict_idle_after: instance.config.evict_idle_after,
      queues: instance.config.queues
    }

    Process.put(@context, context)
    exit(execute(context, Payload.decode(info.input)))
  end

  # The run loaded is the workflow's latest, whose type may not be the one
  # this process was spawned for: a run continued as new into another type
  # between the decision to spawn (a sweep, a wake-up) and the load.
  defp module_of(instance, module, %{workflow_type: type} = info) do
    if Aion.Workflow.type(module) == type do
      module
    else
      case Instance.workflow_module(instance, type) do
        {:ok, module} ->
          module

        {:error, _} ->
          # Respawned for its own type, which the reconciler reports as unknown.
          Monitor.loaded(instance, info.workflow_id, info.run_id, info.generation, type)
          exit({:shutdown, {:aion_retry, Aion.Error.new(:unknown_workflow, "workflow type #{inspect(type)} is not run by this instance")}})
      end
    end
  end

  defp parent do
    case Process.get(:"$ancestors") do
      [parent | _] when is_pid(parent) -> parent
      _ -> nil
    end
  end

  defp open(:fresh, _instance, _workflow_id, run, tag) do
    case Engine.attach(run, tag) do
      :ok -> {run, Engine.run_info(run)}
      {:error, error} -> exit({:shutdown, {:aion_retry, error}})
    end
  end

  defp open(:resume, instance, workflow_id, nil, tag) do
    case Engine.load_run(instance.engine, workflow_id, tag) do
      {:ok, run, info} ->
        {run, info}

      {:error, %Aion.Error{reason: :not_running}} ->
        exit({:shutdown, :aion_not_running})

      # Retrying cannot help a history that does not decode or does not fit
      # together (AION-ND003): the run is left alone (and tried again when the
      # instance restarts).
      {:error, %Aion.Error{reason: reason} = error} when reason in [:store_corrupt, :nondeterminism] ->
        Logger.error("Aion: cannot resume workflow #{workflow_id}, skipping it: #{error.message}")
        exit({:shutdown, {:aion_broken, error}})

      {:error, error} ->
        Logger.error("Aion: cannot resume workflow #{workflow_id}, will retry: #{error.message}")
        exit({:shutdown, {:aion_retry, error}})
    end
  end

  defp execute(context, input) do
    case run_code(context.module, input) do
      {:completed, value} ->
        with :ok <- finish(context),
             {:ok, payload} <- Payload.encode(value, "the workflow's result") do
          {:shutdown, {:aion_completed, payload}}
        else
          {:error, error} -> failed(context.workflow_id, error)
        end

      {:failed, error} ->
        failed(context.workflow_id, error)

      {:cancelled, reason} ->
        payload =
          case Payload.encode(reason) do
            {:ok, payload} -> payload
            {:error, _} -> Payload.encode!(inspect(reason))
          end

        {:shutdown, {:aion_cancelled, payload}}
    end
  end

  defp run_code(module, input) do
    case module.run(input) do
      {:ok, value} -> {:completed, value}
      {:error, reason} -> {:failed, reason}
      value -> {:completed, value}
    end
  rescue
    error in Aion.CancelledError -> {:cancelled, error.reason}
  catch
    kind, value -> {:failed, Aion.Error.from_crash(:workflow_raised, kind, value, __STACKTRACE__)}
  end

  # The code returned: it must have issued every recorded command.
  defp finish(context) do
    case Engine.finish(context.run) do
      :ok -> :ok
      {:error, error} -> Aion.Workflow.Command.engine_error(context, error)
    end
  end

  @doc false
  def failed(workflow_id, error) do
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
