defmodule Aion do
  @moduledoc """
  Durable workflows, embedded in your application.

  Add an instance to your supervision tree:

      children = [
        {Aion, name: MyApp.Aion, store: {:sqlite, "priv/aion.db"}, workflows: [MyApp.Order]}
      ]

  then start workflows and wait for their results:

      {:ok, id} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 42, amount: 10_00})
      {:ok, result} = Aion.await(MyApp.Aion, id, :timer.minutes(1))

  Every step of a workflow is recorded in the store before it takes effect,
  so workflows finish correctly even if the VM is killed at any moment: on the
  next start the instance recovers every unfinished workflow and replays it to
  where it stopped. See `Aion.Workflow` for writing workflows and
  `Aion.Config` for the options.

  Every function takes the instance name first. Errors are
  `{:error, %Aion.Error{}}`; match on the error's `:reason`.

  ## Processes

  An instance is a supervisor of: the engine owner (owns the store, through
  the Rust core), a `Task.Supervisor` for activities, monitor processes
  (they watch run processes and record how each ended), one
  `DynamicSupervisor` per workflow type (each running run is one process,
  unless it is evicted while it sleeps), and the reconciler, which recovers
  unfinished workflows at start and, while the instance runs, gives every
  running workflow that needs one a process.
  """

  use Supervisor

  alias Aion.{Config, Engine, Instance, Ownership, Payload}
  alias Aion.Client.Await
  alias Aion.Run.{Process, Reconciler}

  @typedoc "An instance name (the `:name` option)."
  @type name :: term()

  @typedoc "A workflow id."
  @type workflow_id :: String.t()

  @doc "A child spec; the instance's `:name` is its id."
  def child_spec(opts) do
    %{
      id: Keyword.get(opts, :name, Aion),
      start: {__MODULE__, :start_link, [opts]},
      type: :supervisor
    }
  end

  @doc """
  Starts an instance. See `Aion.Config` for the options.

  Returns `{:error, %Aion.Error{}}` for invalid options or a store that cannot
  be opened (missing directory, a file that is not a database, a store in use
  by another instance). As with any `start_link`, a failure to open the store
  also exits a linked caller that does not trap exits; under a supervisor (the
  usual place) the supervisor reports the error.
  """
  @spec start_link(keyword()) :: Supervisor.on_start() | {:error, Aion.Error.t()}
  def start_link(opts) do
    with {:ok, config} <- Config.validate(opts) do
      case Supervisor.start_link(__MODULE__, config, name: Instance.via(config.name, :supervisor)) do
        {:error, {:shutdown, {:failed_to_start_child, _child, %Aion.Error{} = error}}} -> {:error, error}
        other -> other
      end
    end
  end

  @impl true
  def init(%Config{name: name} = config) do
    monitors = for index <- 0..(System.schedulers_online() - 1), do: {Aion.Run.Monitor, {config, index}}

    workflow_supervisors =
      for type <- Map.keys(config.types) do
        Supervisor.child_spec({DynamicSupervisor, name: Instance.workflows_supervisor(name, type), strategy: :one_for_one},
          id: {:workflows, type}
        )
      end

    children =
      [
        {Aion.Engine.Owner, config},
        {Task.Supervisor, name: Instance.via(name, :activities)}
      ] ++ monitors ++ workflow_supervisors ++ [{Reconciler, config}]

    Supervisor.init(children, strategy: :rest_for_one)
  end

  @doc """
  Starts a workflow and returns its id once its start is durable.

  Options:

    * `:id` - the workflow id (a non-empty string). Defaults to a random
      UUID. Starting an id whose workflow is still running returns
      `{:error, %Aion.Error{reason: :already_started}}`; the id of a finished
      workflow starts a new run.

  ## Examples

      {:ok, id} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 42})
      {:ok, "order-42"} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 42}, id: "order-42")
  """
  @spec start_workflow(name(), module(), term(), keyword()) :: {:ok, workflow_id()} | {:error, Aion.Error.t()}
  def start_workflow(name, module, input, opts \\ []) do
    with {:ok, instance} <- Instance.lookup(name),
         {:ok, id} <- start_options(opts),
         {:ok, type} <- workflow_type(instance, module),
         {:ok, payload} <- Payload.encode(input, "Aion.start_workflow: the input"),
         {:ok, run, workflow_id, _run_id} <- Engine.start_workflow(instance.engine, id, type, payload) do
      case Process.start_fresh(name, module, workflow_id, run) do
        {:ok, _pid} ->
          :ok

        # The reconciler saw the new run first and gave it a process.
        {:error, {:already_started, _pid}} ->
          :ok

        # The start is durable: the run gets its process from the reconciler
        # (at once, or from its first sweep if the instance is starting).
        {:error, _reason} ->
          Reconciler.respawn(name, workflow_id, type)
      end

      {:ok, workflow_id}
    end
  end

  @doc """
  Waits up to `timeout` milliseconds for a workflow to finish.

  Returns `{:ok, result}` when it completed, `{:error, reason}` when it failed
  (the `reason` its code returned, or an `%Aion.Error{}` for a raise or an
  exit), `{:error, %Aion.Error{reason: :timeout}}` when it is still running
  after `timeout` (a non-negative integer or `:infinity`), and
  `{:error, %Aion.Error{reason: :not_running}}` if the instance stops
  meanwhile.
  """
  @spec await(name(), workflow_id(), timeout()) :: {:ok, term()} | {:error, term()}
  def await(name, workflow_id, timeout \\ 5_000) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.await"),
         :ok <- check_timeout(timeout) do
      Await.await(name, instance, workflow_id, timeout)
    end
  end

  @doc """
  Describes a workflow: its status (`:running`, `:completed`, `:failed`,
  `:cancelled`, `:timed_out`, `:continued_as_new`), type, latest run id,
  timestamps, its runs, the work its latest run is waiting for (`:pending`:
  activities scheduled without a result, timers not yet fired), whether it
  is `:resident` (has a process on this node, its `:pid`) or evicted while it
  sleeps, and `:blocked`: `nil`, or why the run is suspended, as
  `%{reason: :nondeterminism, code: "AION-ND001", message: ...}` (see
  `Aion.Workflow`).

      {:ok, %{status: :running, pending: [%{kind: :timer, fire_at: at}]}} = Aion.describe(MyApp.Aion, id)
  """
  @spec describe(name(), workflow_id()) :: {:ok, map()} | {:error, Aion.Error.t()}
  def describe(name, workflow_id) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.describe"),
         {:ok, description} <- Engine.describe(instance.engine, workflow_id) do
      pid = Ownership.run_owner(name, workflow_id)

      {:ok,
       description
       |> times([:started_at, :closed_at, :updated_at])
       |> Map.update!(:runs, fn runs -> Enum.map(runs, &times(&1, [:started_at, :closed_at])) end)
       |> Map.update!(:pending, fn pending -> Enum.map(pending, &times(&1, [:fire_at])) end)
       |> Map.update!(:blocked, fn blocked -> blocked && Map.delete(blocked, :code_version) end)
       |> Map.merge(%{resident: pid != nil, pid: pid})}
    end
  end

  @doc """
  The history of a workflow: its events, oldest first, as maps with `:seq`,
  `:recorded_at`, `:type` (such as `:activity_completed`) and the event's
  fields, payloads decoded. `Aion.History.format/1` renders them as a timeline.
  """
  @spec history(name(), workflow_id()) :: {:ok, [map()]} | {:error, Aion.Error.t()}
  def history(name, workflow_id) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.history"),
         {:ok, events} <- Engine.history(instance.engine, workflow_id) do
      {:ok, Enum.map(events, &(&1 |> Aion.History.decode_payloads() |> times([:recorded_at, :fire_at, :scheduled_for])))}
    end
  end

  # Times beyond what DateTime holds stay microsecond integers.
  defp times(map, keys) do
    Enum.reduce(keys, map, fn key, map ->
      with %{^key => micros} when is_integer(micros) <- map,
           {:ok, at} <- DateTime.from_unix(micros, :microsecond) do
        %{map | key => at}
      else
        _ -> map
      end
    end)
  end

  defp check_id(id, entry) do
    if is_binary(id) and String.valid?(id) do
      :ok
    else
      {:error, Aion.Error.new(:invalid_workflow_id, "#{entry}: expected a workflow id (a UTF-8 string), got: #{inspect(id)}")}
    end
  end

  defp check_timeout(timeout) when timeout == :infinity or (is_integer(timeout) and timeout >= 0), do: :ok

  defp check_timeout(timeout) do
    {:error,
     Aion.Error.new(:invalid_option, "Aion.await: expected the timeout to be a non-negative integer or :infinity, got: #{inspect(timeout)}")}
  end

  defp start_options(opts) do
    case Keyword.fetch(opts, :id) do
      :error -> {:ok, nil}
      {:ok, id} when is_binary(id) and id != "" -> with(:ok <- check_id(id, "Aion.start_workflow"), do: {:ok, id})
      {:ok, other} -> {:error, Aion.Error.new(:invalid_option, "Aion.start_workflow: expected :id to be a non-empty string, got: #{inspect(other)}")}
    end
  end

  defp workflow_type(%Instance{config: config}, module) do
    if module in config.workflows do
      {:ok, Aion.Workflow.type(module)}
    else
      {:error,
       Aion.Error.new(
         :unknown_workflow,
         "Aion.start_workflow: #{inspect(module)} is not a workflow of instance #{inspect(config.name)} " <>
           "(its :workflows are #{inspect(config.workflows)})"
       )}
    end
  end
end
