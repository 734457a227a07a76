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
  alias Aion.Client.{Await, Messages, Query, Reset, Runs, Start}
  alias Aion.Client.List, as: Listing

  import Aion.Client.Start, only: [check_id: 2]
  alias Aion.Run.Reconciler

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
        {Task.Supervisor, name: Instance.via(name, :activities)},
        {Aion.Activity.Queues, config}
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
    * `:id_reuse` - whether the id of a workflow that has finished starts a
      new run: `:allow_duplicate` (the default), `:allow_duplicate_failed_only`
      (only if it failed, was cancelled, terminated or timed out) or
      `:reject_duplicate`. A refused start returns
      `{:error, %Aion.Error{reason: :already_started}}` and records nothing.
    * `:if_running` - what starting the id of a running workflow does:
      `:error` (the default) or `:use_existing`, which returns
      `{:ok, workflow_id}` of the running one, so that a start retried after a
      timeout or a crash is idempotent.
    * `:execution_timeout` - milliseconds the workflow may take in all; when
      they run out its run ends `timed_out`, whatever its code is doing, and
      `await/3` returns `{:error, %Aion.Error{reason: :timed_out}}`. A durable
      timer: it holds across restarts, and fires at recovery if it expired
      while the VM was down.
    * `:run_timeout` - the same for one run (a run started again by
      continue-as-new gets a new one).
    * `:search_attributes` - a map of names (strings, or atoms standing for
      their names) to strings, integers, floats, booleans or `DateTime`s:
      visibility metadata to find the workflow by with `list/3` and
      `count/2` (its code may change them with
      `Aion.Workflow.upsert_search_attributes/1`). Each name keeps the kind
      of its first use in the store: a value of another kind (or of none of
      these kinds) returns
      `{:error, %Aion.Error{reason: :invalid_search_attribute}}` and starts
      nothing.

  ## Examples

      {:ok, id} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 42})
      {:ok, "order-42"} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 42}, id: "order-42")
      {:ok, id} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 43}, execution_timeout: :timer.hours(24))
      {:ok, "order-42"} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 42}, id: "order-42", if_running: :use_existing)
      {:ok, id} = Aion.start_workflow(MyApp.Aion, MyApp.Order, %{order_id: 44}, search_attributes: %{"customer" => "ada", "amount" => 10_00})
  """
  @spec start_workflow(name(), module(), term(), keyword()) :: {:ok, workflow_id()} | {:error, Aion.Error.t()}
  def start_workflow(name, module, input, opts \\ []) do
    with {:ok, instance} <- Instance.lookup(name),
         {:ok, id} <- Start.id_option(opts, "Aion.start_workflow"),
         {:ok, options} <- Start.engine_options(opts, "Aion.start_workflow"),
         {:ok, type} <- Start.workflow_type(instance, module, "Aion.start_workflow"),
         {:ok, payload} <- Payload.encode(input, "Aion.start_workflow: the input") do
      Start.if_running(instance, opts, "Aion.start_workflow", fn ->
        with {:ok, run, workflow_id, _run_id} <- Engine.start_workflow(instance.engine, id, type, payload, options) do
          Start.spawn_run(name, module, type, workflow_id, run)
          {:ok, workflow_id}
        end
      end)
    end
  end

  @doc """
  Sends signal `signal_name` (an atom or a string) with `payload` to the
  running workflow `workflow_id`. Returns `:ok` once the signal is durable in
  the workflow's history; the workflow takes it with
  `Aion.Workflow.await_signal/2`, in the order signals were recorded, even if
  it is not waiting yet, is evicted, or the VM stops meanwhile.

  Errors: `:not_found` (no such workflow), `:not_running` (it has ended),
  `:unserializable` (a payload with pids, refs or funs), `:invalid_option`
  (a bad name).

      :ok = Aion.signal(MyApp.Aion, "order-42", :approved, %{by: "ana"})
  """
  @spec signal(name(), workflow_id(), atom() | String.t(), term()) :: :ok | {:error, Aion.Error.t()}
  def signal(name, workflow_id, signal_name, payload), do: Messages.signal(name, workflow_id, signal_name, payload)

  @doc """
  Starts `module` with `input` unless a workflow with the `:id` option is
  running, and sends it signal `signal_name` with `payload`: the start and
  the signal are one durable append. Returns `{:ok, workflow_id}`. Options
  as in `start_workflow/4` (`:if_running` aside: a running workflow is
  signalled; `:search_attributes` only apply when it starts).

      {:ok, "cart-7"} = Aion.signal_with_start(MyApp.Aion, MyApp.Cart, %{}, :add, "apple", id: "cart-7")
  """
  @spec signal_with_start(name(), module(), term(), atom() | String.t(), term(), keyword()) ::
          {:ok, workflow_id()} | {:error, Aion.Error.t()}
  def signal_with_start(name, module, input, signal_name, payload, opts \\ []),
    do: Messages.signal_with_start(name, module, input, signal_name, payload, opts)

  @doc """
  Sends update `update_name` with `args` to a running workflow and waits for
  its reply: `{:ok, reply}`, or `{:error, reason}` if the workflow's handler
  refused (see `Aion.Workflow.await_update/3`). The request and the reply
  are recorded: after a crash, calling again with the same `:update_id`
  returns the recorded reply without running the handler again.

  Options: `:update_id` (a string; default a fresh UUID), `:timeout`
  (milliseconds to wait for the reply, default 30_000, or `:infinity`;
  `%Aion.Error{reason: :timeout}` when it runs out, and the update stays
  queued).

      {:ok, :added} = Aion.update(MyApp.Aion, "cart-7", :add_item, "pear", update_id: "req-1")
  """
  @spec update(name(), workflow_id(), atom() | String.t(), term(), keyword()) :: {:ok, term()} | {:error, term()}
  def update(name, workflow_id, update_name, args, opts \\ []), do: Messages.update(name, workflow_id, update_name, args, opts)

  @doc """
  Requests cancellation of a running workflow; returns `:ok` once the
  request is durable. The workflow's code gets `Aion.CancelledError` at the
  command it is blocked on (or its next one); it may rescue it to clean up.
  If it does not, the run ends `cancelled` and `await/3` returns
  `{:error, %Aion.Error{reason: :cancelled}}`. Errors: `:not_found`,
  `:not_running` (it has ended).

      :ok = Aion.cancel(MyApp.Aion, "order-42", :customer_request)
  """
  @spec cancel(name(), workflow_id(), term()) :: :ok | {:error, Aion.Error.t()}
  def cancel(name, workflow_id, reason \\ nil), do: Messages.cancel(name, workflow_id, reason)

  @doc """
  Terminates a running workflow now: its run ends `terminated` (recorded
  with `reason`), no more of its code runs (not even cleanup: use
  `cancel/3` for that), its process stops, its pending activities are
  stopped and its timers dropped. Returns `:ok` once the ending is durable;
  `await/3` then returns `{:error, %Aion.Error{reason: :terminated}}`.
  Errors: `:not_found`, `:not_running` (it has ended).

      :ok = Aion.terminate(MyApp.Aion, "order-42", "stuck on a bad address")
  """
  @spec terminate(name(), workflow_id(), term()) :: :ok | {:error, Aion.Error.t()}
  def terminate(name, workflow_id, reason \\ nil), do: Messages.terminate(name, workflow_id, reason)

  @doc """
  Starts a new run of workflow `workflow_id` from a point of its latest run,
  and returns `{:ok, new_run_id}` once the new run is durable.

  The latest run must have failed, been cancelled, terminated or timed out,
  or be suspended by non-determinism (see `Aion.Workflow`); a run that is
  running otherwise is reset only with `terminate_running: true` (it is
  terminated first, in the same durable write). A completed run, or one that
  continued as new, cannot be reset.

  History up to the point is copied into the new run, so its replay returns
  the recorded results there (completed activities do not run again, timers
  that fired do not wait again); from the point on the code runs live again.
  Activities scheduled but not finished at the point run again. Signals the
  old run received after the point are recorded again in the new one, so
  none is lost (updates and cancellation requests after the point are not
  carried over). The new run has the old one's type, input and options; its
  `:execution_timeout` and `:run_timeout` count from the reset.

  Options:

    * `:to` (required) - the point: `:start` (only the start is kept: the
      run starts over), `:last_completed_activity` (the old run's last
      `:activity_completed` event), or an event `:seq` of the old run (see
      `history/2`), from its `:workflow_started` up to its last event before
      its ending.
    * `:terminate_running` - `true` to reset a run that is running
      (default `false`).
    * `:run_id` - the run to reset, when not the latest (a run id from
      `runs/2`): an older run that failed, was cancelled,
      terminated or timed out, for instance the one a reset started from.
      The latest run, if it runs, is terminated as above.

  The lineage is recorded: the new run's `:workflow_started` event has
  `:reset_from_run_id` and `:reset_from_seq`, and `describe/3` and `runs/2`
  show `reset_from: %{run_id: ..., seq: ...}`.
  The old run's ending, when the reset terminated it, is `:terminated` with
  reason `:reset`; `await/3` callers wait for the new run's ending instead.
  Children started before the point and still running are the new run's;
  see `Aion.Workflow` for child workflows.

  Errors (nothing is recorded): `:not_found` (no such workflow),
  `:reset_refused` (the run to reset completed or continued as new, or the
  latest run runs and `terminate_running: true` was not given),
  `:invalid_option` (a bad option, a `:to` seq outside the run,
  `:last_completed_activity` for a run without one), `:not_found` also for a
  `:run_id` that is not a run of the workflow, `:invalid_workflow_id`.

  ## Examples

      # an activity failed for good; after fixing its cause:
      {:ok, new_run_id} = Aion.reset(MyApp.Aion, "order-42", to: :last_completed_activity)
      {:ok, result} = Aion.await(MyApp.Aion, "order-42")

      # start over, from the same input
      {:ok, _run_id} = Aion.reset(MyApp.Aion, "order-42", to: :start)

      # a running workflow, from event 7 of its history
      {:ok, _run_id} = Aion.reset(MyApp.Aion, "order-43", to: 7, terminate_running: true)

      # an older run, again
      {:ok, _run_id} = Aion.reset(MyApp.Aion, "order-42", run_id: first_run_id, to: :last_completed_activity)
  """
  @spec reset(name(), workflow_id(), keyword()) :: {:ok, String.t()} | {:error, Aion.Error.t()}
  def reset(name, workflow_id, opts), do: Reset.reset(name, workflow_id, opts)

  @doc """
  Waits up to `timeout` milliseconds for a workflow to finish.

  Returns `{:ok, result}` when it completed, `{:error, reason}` when it failed
  (the `reason` its code returned, or an `%Aion.Error{}` for a raise or an
  exit), `{:error, %Aion.Error{reason: :cancelled | :terminated | :timed_out}}`
  when it was cancelled, terminated (`details.reason` holds the reason given
  to `terminate/3`) or ran past its `:execution_timeout` / `:run_timeout`,
  `{:error, %Aion.Error{reason: :timeout}}` when it is still running
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
  Describes a run of a workflow (its latest run, or the one given as
  `run_id:`): its status (`:running`, `:completed`, `:failed`, `:cancelled`,
  `:terminated`, `:timed_out`, `:continued_as_new`), type, `:run_id`,
  `:parent_run_id` (the run it continues, see
  `Aion.Workflow.continue_as_new/2`), `:reset_from` (`nil`, or
  `%{run_id: ..., seq: ...}` when `reset/3` started the run from that event
  of that run), timestamps, `:history_length` (the seq
  of the run's last event in the workflow's history), `:history_size` (the
  run's events and their payload bytes, `%{events: n, bytes: b}`, as
  `Aion.Workflow.history_size/0` counts them), the work the run is waiting
  for (`:pending`: activities scheduled without a result, with their
  `:attempts` so far and, once an attempt failed, its `:last_failure` and
  the `:retry_at` of the next; timers not yet fired), whether the workflow
  is `:resident` (has a process on this node, its `:pid`) or evicted while
  it sleeps, `:search_attributes` (the run's, as a map; times as
  `DateTime`s), and `:blocked`: `nil`, or why the run is suspended, as
  `%{reason: :nondeterminism, code: "AION-ND001", message: ...}` (see
  `Aion.Workflow`).

  Only the run's own events are read, however many runs came before it;
  `runs/2` lists the runs.

      {:ok, %{status: :running, pending: [%{kind: :timer, fire_at: at}]}} = Aion.describe(MyApp.Aion, id)
      {:ok, %{status: :continued_as_new}} = Aion.describe(MyApp.Aion, id, run_id: first_run_id)

  Errors: `:not_found` (no workflow has this id, or it has no run
  `:run_id`), `:invalid_workflow_id`, `:invalid_option`.
  """
  @spec describe(name(), workflow_id(), keyword()) :: {:ok, map()} | {:error, Aion.Error.t()}
  def describe(name, workflow_id, opts \\ []) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.describe"),
         {:ok, run_id} <- Runs.options(opts, "Aion.describe"),
         {:ok, description} <- Engine.describe(instance.engine, workflow_id, run_id) do
      pid = Ownership.run_owner(name, workflow_id)

      {:ok,
       description
       |> Aion.History.times([:started_at, :closed_at, :updated_at])
       |> Map.update!(:pending, fn pending -> Enum.map(pending, &(&1 |> Aion.History.decode_payloads() |> Aion.History.times([:fire_at, :retry_at]))) end)
       |> Map.update!(:blocked, fn blocked -> blocked && Map.delete(blocked, :code_version) end)
       |> Map.update!(:search_attributes, &Aion.SearchAttributes.decode/1)
       |> Map.merge(%{resident: pid != nil, pid: pid})}
    end
  end

  @doc """
  The runs of a workflow, oldest first: `{:ok, [run]}`, each run a map
  with `:run_id`, `:parent_run_id` (the run it continues, `nil` for a
  run started by `start_workflow/4`), `:workflow_type`, `:status`
  (`:continued_as_new` for every run but the last of a chain),
  `:started_at`, `:closed_at` (`nil` while it runs) and `:reset_from`
  (`nil`, or `%{run_id: ..., seq: ...}` for a run `reset/3` started). Read
  from the store's index of runs; only the first event of a run that
  follows a run ended otherwise than by continue-as-new is read, to find
  its `:reset_from`.

      {:ok, [%{status: :continued_as_new, run_id: first}, %{parent_run_id: first, status: :running}]} =
        Aion.runs(MyApp.Aion, id)

  Errors: `:not_found` (no workflow has this id), `:invalid_workflow_id`.
  """
  @spec runs(name(), workflow_id()) :: {:ok, [map()]} | {:error, Aion.Error.t()}
  def runs(name, workflow_id) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.runs"),
         do: Runs.runs(instance, workflow_id)
  end

  @doc """
  Asks workflow `workflow_id` the query `query_name` with `args`, and returns
  `{:ok, value}`, the value of the handler its code registered with
  `Aion.Workflow.on_query/2`. Nothing is recorded: the workflow's history
  is unchanged.

  A workflow with a process answers from it, while it waits (a workflow busy
  computing answers once it next waits). A workflow without one (evicted
  while it waits, finished, or not yet resumed after a restart) is replayed
  to answer, read-only: it stays evicted or finished, nothing runs (no
  activity, no timer), and the answer reflects what its history holds.

  `query_name` is a string or an atom (`:status` and `"status"` are the same
  query). `args` and the value are passed as they are, within this VM: they
  need not be serializable (pids, refs and funs are fine).

  Options:

    * `:timeout` - milliseconds to wait for the answer (a non-negative
      integer or `:infinity`); defaults to `5_000`.
    * `:run_id` - the run to ask (see `runs/2`); defaults to the latest
      run. Another run is answered by a read-only replay of its history,
      to the point where it ended.

  Errors (`{:error, %Aion.Error{reason: reason}}`): `:not_found` (no workflow
  has this id, or it has no run `:run_id`), `:unknown_query` (no handler by that name; the message and
  `details.known` list the registered names), `:query_failed` (the handler
  raised, exited, threw or tried to issue a command; the workflow is not
  affected), `:timeout`, `:nondeterminism` (a replay found the code does not
  match the history), `:unknown_workflow` (the workflow's type is not among
  this instance's `:workflows`), and `:invalid_workflow_id`,
  `:invalid_query_name`, `:invalid_option` for bad arguments.

  ## Example

      # in the workflow's code
      on_query(:status, fn _args -> %{step: :charging, attempts: attempts} end)

      {:ok, %{step: :charging}} = Aion.query(MyApp.Aion, id, :status)
      {:ok, value} = Aion.query(MyApp.Aion, id, "lines", %{page: 2}, timeout: 1_000)
  """
  @spec query(name(), workflow_id(), atom() | String.t(), term(), keyword()) :: {:ok, term()} | {:error, Aion.Error.t()}
  def query(name, workflow_id, query_name, args \\ nil, opts \\ []) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.query"),
         {:ok, query_name} <- Query.name(query_name, "Aion.query"),
         {:ok, timeout, run_id} <- Query.options(opts, "Aion.query") do
      Query.query(name, instance, workflow_id, query_name, args, timeout, run_id)
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
      {:ok,
       Enum.map(events, fn event ->
         event
         |> Aion.History.decode_payloads()
         |> Aion.History.times([:recorded_at, :fire_at, :scheduled_for])
         |> attribute_times([:search_attributes, :attributes])
       end)}
    end
  end

  defp attribute_times(event, keys) do
    Enum.reduce(keys, event, fn key, event ->
      case event do
        %{^key => attributes} -> %{event | key => Aion.SearchAttributes.decode(attributes)}
        _ -> event
      end
    end)
  end

  @doc """
  Lists workflows matching `filter`, newest first: `{:ok, %{workflows:
  [workflow], cursor: cursor}}`. Each workflow is a map with the keys
  `describe/2` uses: `:workflow_id`, `:run_id`, `:workflow_type`, `:status`,
  `:started_at`, `:closed_at` (`nil` while running) and
  `:search_attributes`. A workflow id is listed once, as its latest run.
  The query runs in the store, on its indexes (it reads no history).

  `filter` is a keyword list (or a map); every key given must hold:

    * `:type` - a workflow module or a workflow type name;
    * `:status` - a status or a list of them (any of them): `:running`,
      `:completed`, `:failed`, `:cancelled`, `:terminated`, `:timed_out`,
      `:continued_as_new`;
    * `:started_after`, `:started_before`, `:closed_after`,
      `:closed_before` - `DateTime`s; `after` includes its instant, `before`
      excludes it; a `closed_*` bound leaves out running workflows;
    * `:search` - a map of search attribute names to conditions, all of
      which must hold: a value (equal to it), `{op, value}` with `op` one of
      `:==`, `:>`, `:>=`, `:<`, `:<=`, or `{:between, low, high}` (both
      included). Ranges compare numbers and `DateTime`s (an integer
      compares with a float attribute too); text and booleans compare by
      equality. A workflow without the attribute does not match.

  Options:

    * `:limit` - workflows per page, from 1 to 1000; defaults to 100.
    * `:cursor` - the `:cursor` of the previous page, to get the next one
      (`nil`, the default, starts from the newest). A page's `:cursor` is
      `nil` when no more workflows match. Pages are stable: workflows
      started after the first page do not show up in later pages, and none
      is listed twice or skipped.

  Errors: `:invalid_filter` (an unknown key, a bad value, a value of
  another kind than its search attribute's, a range over text) and
  `:invalid_option`.

  ## Examples

      {:ok, %{workflows: running}} = Aion.list(MyApp.Aion, type: MyApp.Order, status: :running)

      {:ok, %{workflows: [%{search_attributes: %{"customer" => "ada"}} | _], cursor: cursor}} =
        Aion.list(MyApp.Aion, [status: [:failed, :timed_out], search: %{"customer" => "ada", "amount" => {:>=, 100_00}}], limit: 50)

      {:ok, %{workflows: next_page}} = Aion.list(MyApp.Aion, [status: [:failed, :timed_out]], limit: 50, cursor: cursor)
  """
  @spec list(name(), keyword() | map(), keyword()) :: {:ok, %{workflows: [map()], cursor: term() | nil}} | {:error, Aion.Error.t()}
  def list(name, filter \\ [], opts \\ []) do
    with {:ok, instance} <- Instance.lookup(name), do: Listing.list(instance, filter, opts)
  end

  @doc """
  Counts the workflows matching `filter` (as in `list/3`), in the store.

      {:ok, 3} = Aion.count(MyApp.Aion, type: MyApp.Order, status: :failed)
  """
  @spec count(name(), keyword() | map()) :: {:ok, non_neg_integer()} | {:error, Aion.Error.t()}
  def count(name, filter \\ []) do
    with {:ok, instance} <- Instance.lookup(name), do: Listing.count(instance, filter)
  end

  defp check_timeout(timeout) when timeout == :infinity or (is_integer(timeout) and timeout >= 0), do: :ok

  defp check_timeout(timeout) do
    {:error,
     Aion.Error.new(:invalid_option, "Aion.await: expected the timeout to be a non-negative integer or :infinity, got: #{inspect(timeout)}")}
  end
end
