defmodule Aion.Workflow do
  @moduledoc """
  Defines a durable workflow: ordinary Elixir code that survives crashes.

      defmodule MyApp.Order do
        use Aion.Workflow

        @impl true
        def run(%{order_id: id, amount: amount}) do
          {:ok, hold} = activity(MyApp.Payments, :reserve, [id, amount])
          sleep(:timer.minutes(30))
          {:ok, _} = activity(MyApp.Payments, :capture, [hold])
          {:ok, %{order_id: id, captured_at: now()}}
        end
      end

  `run/1` runs in its own process. Returning `{:ok, value}` or a plain `value`
  completes the workflow with `value`; returning `{:error, reason}`, raising or
  exiting fails it.

  ## Durability and replay

  Each call to `activity/4`, `sleep/1`, `now/0` and `side_effect/1` is a
  *command*, recorded durably before it takes effect. After a crash (even
  SIGKILL of the whole VM) the workflow's code runs again from the top, and
  each command that already happened returns its recorded result at once
  instead of running again: activities whose completion was recorded are not
  re-executed, sleeps that elapsed do not wait again, `now/0` returns the same
  instant. At the first command history does not hold, the workflow goes live.

  So workflow code must be deterministic: given the same command results it
  must issue the same commands in the same order. Read time only with `now/0`,
  random values with `random/0`, `random/1` and `uuid/0`, do I/O only in
  activities, and wrap any other non-deterministic value in `side_effect/1`.

  A command takes its place in history only once it is recorded: if workflow
  code raises before that (an argument that cannot be stored, a failing
  `side_effect/1` function), nothing is recorded, and code that rescues the
  raise goes on normally.

  ## Non-determinism

  If changed code issues a different command than history recorded at the
  same position (code `AION-ND001`, see `docs/errors/AION-ND001.md`), or
  returns before issuing every recorded command (`AION-ND002`), the run is
  *suspended*, as Temporal does: it stays running, nothing is recorded,
  `Aion.describe/2` shows it under `:blocked` (naming the position, what
  history holds and what the code issued), and other workflows are not
  affected. It resumes by itself once code that replays its history runs:
  after a deploy that restarts the instance, or a hot code upgrade of the
  module. With `on_nondeterminism: :fail` the run fails instead. To change
  the code of a workflow type while runs of the old code are still going,
  branch on `patched?/1`.

  ## Options of `use Aion.Workflow`

    * `:name` - the workflow type's name, stored in history. Defaults to the
      module name (`"MyApp.Order"`). Set it to keep history readable by a
      renamed module.
    * `:on_nondeterminism` - `:suspend` (default) or `:fail`, see above.
    * `:activity_defaults` - options every `activity/4` and
      `start_activity/4` of the workflow starts from (a call's own options
      override them; its `:retry` options are merged over these), e.g.
      `use Aion.Workflow, activity_defaults: [retry: [max_attempts: 5], start_to_close: 30_000]`.
      Checked at compile time.
  """

  require Logger

  alias Aion.Activity.Options, as: ActivityOptions
  alias Aion.Activity.Runner
  alias Aion.{Engine, Payload}
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.{Command, Marker, Wait}

  @doc "The workflow's code. Its return value completes or fails the workflow."
  @callback run(input :: term()) :: {:ok, term()} | {:error, term()} | term()

  # The longest durable sleep: 100 years, in milliseconds.
  @max_sleep 100 * 365 * 24 * 3_600_000

  defmacro __using__(opts) do
    quote bind_quoted: [opts: opts] do
      @behaviour Aion.Workflow
      import Aion.Workflow,
        only: [
          activity: 3,
          activity: 4,
          start_activity: 3,
          start_activity: 4,
          start_timer: 1,
          await: 1,
          await_all: 1,
          await_any: 1,
          with_timeout: 2,
          await_signal: 1,
          await_signal: 2,
          await_update: 2,
          await_update: 3,
          cancellation_requested?: 0,
          sleep: 1,
          now: 0,
          side_effect: 1,
          workflow_id: 0,
          random: 0,
          random: 1,
          uuid: 0,
          patched?: 1,
          on_query: 2,
          upsert_search_attributes: 1,
          start_child: 2,
          start_child: 3,
          execute_child: 2,
          execute_child: 3,
          cancel_child: 1,
          signal_workflow: 3,
          continue_as_new: 1,
          continue_as_new: 2,
          history_size: 0
        ]

      @aion_workflow Aion.Workflow.__options__(__MODULE__, opts)

      @doc false
      def __aion_workflow__, do: @aion_workflow
    end
  end

  @doc false
  def __options__(module, opts) do
    on_nondeterminism = Keyword.get(opts, :on_nondeterminism, :suspend)

    unless on_nondeterminism in [:suspend, :fail] do
      raise ArgumentError,
            "use Aion.Workflow: expected :on_nondeterminism to be :suspend or :fail, got: #{inspect(on_nondeterminism)}"
    end

    activity_defaults = ActivityOptions.check_defaults!(Keyword.get(opts, :activity_defaults, []), "use Aion.Workflow, activity_defaults")

    %{type: Keyword.get(opts, :name, inspect(module)), on_nondeterminism: on_nondeterminism, activity_defaults: activity_defaults}
  end

  defp activity_defaults(module), do: Map.get(module.__aion_workflow__(), :activity_defaults, [])

  @doc "Whether `module` is a workflow (`use Aion.Workflow`)."
  @spec workflow?(term()) :: boolean()
  def workflow?(module) when is_atom(module) do
    Code.ensure_loaded?(module) and function_exported?(module, :__aion_workflow__, 0)
  end

  def workflow?(_other), do: false

  @doc "The workflow type name of a workflow module."
  @spec type(module()) :: String.t()
  def type(module), do: module.__aion_workflow__().type

  @doc false
  def on_nondeterminism(module), do: module.__aion_workflow__().on_nondeterminism

  @doc """
  Runs `apply(module, function, args)` as an activity and returns its result:
  `{:ok, value}` or `{:error, reason}`. The same as
  `start_activity(module, function, args, opts) |> await()`.

  The activity runs in its own process, outside the workflow, and belongs to
  the workflow's run: if the workflow's process ends, the activity is
  stopped. It may return `{:ok, value}`, `{:error, reason}`, `:ok` (giving
  `{:ok, :ok}`) or any other value (giving `{:ok, value}`); if it raises,
  exits or times out, the result is
  `{:error, %Aion.Error{reason: :activity_raised | :activity_exited | :activity_timeout}}`;
  if it was cancelled, `{:error, %Aion.Error{reason: :cancelled}}`.

  The activity is recorded, with its arguments, before it runs, and its
  result when it returns. An activity whose result was recorded never runs
  again; one interrupted by a crash runs again on recovery, with the
  arguments recorded the first time (activities are at-least-once, so make
  them idempotent). Within one node, two executions of the same activity
  never overlap.

  Options (over the workflow's `:activity_defaults`, see "Options of
  `use Aion.Workflow`"; a bad option raises `ArgumentError` at the call):

    * `:retry` - retries of failed attempts, a keyword list (`true` for the
      defaults below; `false`, the default, makes the first failure the
      activity's result). An attempt
      fails when the activity returns `{:error, reason}`, raises, exits or
      times out. Keys, with their defaults once `:retry` is given:
      `max_attempts: 3` (attempts in all, or `:infinity`),
      `initial_interval: 1_000` (ms before the second attempt),
      `backoff: 2.0` (each wait is the previous one times this),
      `max_interval: 60_000` (ms, the longest wait), and
      `non_retryable: []`: reasons (`{:error, reason}` where `reason`, or
      the first element of a tuple `reason`, is listed) and exception
      modules that fail the activity at once. Waits are durable: after a
      crash the next attempt comes when the wait ends, not from zero. History
      holds one event per activity whatever its attempts: the final
      `activity_completed` / `activity_failed` carries `attempts` (when more
      than one) and the `last_failure`; while it waits, `Aion.describe/2`
      shows the attempts, the last failure and `retry_at`.
    * `:start_to_close` - milliseconds one attempt may take, or `:infinity`
      (default); it starts when the attempt runs (after it waited for its
      queue). `:timeout` is its older name.
    * `:schedule_to_close` - milliseconds all attempts together may take,
      from when the activity was scheduled (held across restarts), or
      `:infinity` (default). No retry starts that could not begin before it.
    * `:heartbeat_timeout` - milliseconds an attempt may go without
      `Aion.Activity.heartbeat/1`, or `:infinity` (default).
    * `:queue` - the activity queue it runs in (default `:default`), one of
      the instance's `:queues` (see `Aion.Config`), which limit how many
      activities of a queue run at once. An unknown queue raises
      `ArgumentError` at the call.
    * `:cancel_grace` - when the activity is cancelled (the workflow is
      cancelled, or a race or `with_timeout/2` drops it) after it has
      heartbeated, its next heartbeat raises `Aion.CancelledError` and it is
      killed if it has not returned within this many ms (default `5_000`).
      An activity that never heartbeated is killed at once.

  Timed-out attempts are stopped and fail with
  `%Aion.Error{reason: :activity_timeout, details: %{timeout: :start_to_close | :schedule_to_close | :heartbeat}}`.

  ## Example

      {:ok, receipt} =
        activity(MyApp.Payments, :charge, [card, 42_00],
          start_to_close: 10_000,
          retry: [max_attempts: 5, initial_interval: 500, non_retryable: [:card_declined]]
        )

      {:ok, _} = activity(MyApp.Mailer, :send_receipt, [receipt], queue: :email)
  """
  @spec activity(module(), atom(), list(), keyword()) :: {:ok, term()} | {:error, term()}
  def activity(module, function, args, opts \\ []) do
    module |> start_activity(function, args, opts) |> await()
  end

  @doc """
  Starts an activity (see `activity/4`, same options) without waiting for
  it, and returns a future to pass to `await/1`, `await_all/1` or
  `await_any/1`. Activities started this way run in parallel.

      charge = start_activity(MyApp.Payments, :charge, [card, total])
      reserve = start_activity(MyApp.Stock, :reserve, [items])
      [{:ok, receipt}, {:ok, _}] = await_all([charge, reserve])
  """
  @spec start_activity(module(), atom(), list(), keyword()) :: Aion.Future.t()
  def start_activity(module, function, args, opts \\ [])
      when is_atom(module) and is_atom(function) and is_list(args) and is_list(opts) do
    context = RunProcess.context()
    options = ActivityOptions.new!(opts, activity_defaults(context.module), "activity")
    name = "#{inspect(module)}.#{function}"
    queue = options.queue

    ordinal =
      case Command.resolve(context, :activity, name) do
        {:replayed, ordinal, _outcome} ->
          ordinal

        {:pending, ordinal, {:activity, _type, input, _attempts, scheduled_at}} ->
          # History is the truth: the activity runs again with what it was
          # scheduled with, whatever the code passes now.
          recorded = Payload.decode(input)

          if recorded != args do
            Logger.warning(
              "Aion: workflow #{context.workflow_id} command ##{ordinal} (activity #{name}): the code now passes " <>
                "#{inspect(args, limit: 10)}, but the activity was scheduled with #{inspect(recorded, limit: 10)}; " <>
                "running it with the recorded arguments"
            )
          end

          :ok = Runner.start(context, ordinal, {module, function, recorded}, options, limit(context, queue, :again), {:again, scheduled_at})
          ordinal

        {:live, ordinal} ->
          limit = limit(context, queue, :first)
          input = Command.encode!(args, "the arguments of activity #{name}")
          Command.record(context, {:activity_scheduled, ordinal, name, input})
          :ok = Runner.start(context, ordinal, {module, function, args}, options, limit, :first)
          ordinal
      end

    %Aion.Future{ordinal: ordinal, kind: :activity, name: name}
  end

  @doc """
  Starts a durable timer of `milliseconds` without waiting for it; `await/1`
  on it returns `:ok` once it fired. With `await_any/1` it bounds a wait:

      case await_any([start_activity(MyApp.Quotes, :fetch, [sku]), start_timer(5_000)]) do
        {%Aion.Future{kind: :activity}, {:ok, quote}} -> quote
        {%Aion.Future{kind: :timer}, :ok} -> :no_quote
      end
  """
  @spec start_timer(non_neg_integer()) :: Aion.Future.t()
  def start_timer(milliseconds) when is_integer(milliseconds) and milliseconds >= 0 and milliseconds <= @max_sleep do
    context = RunProcess.context()

    ordinal =
      case Command.resolve(context, :timer, "") do
        {:replayed, ordinal, _fired_or_cancelled} ->
          ordinal

        {:pending, ordinal, {:timer, fire_at}} ->
          Wait.timer_due(ordinal, div(fire_at - System.system_time(:microsecond), 1000))
          ordinal

        {:live, ordinal} ->
          Command.record(context, {:timer_started, ordinal, milliseconds})
          Wait.timer_due(ordinal, milliseconds)
          ordinal
      end

    %Aion.Future{ordinal: ordinal, kind: :timer}
  end

  def start_timer(other) do
    raise ArgumentError,
          "expected a timer of an integer from 0 to #{@max_sleep} milliseconds (100 years), got: #{inspect(other)}"
  end

  @doc """
  Waits for a future's result: an activity's `{:ok, value}` or
  `{:error, reason}`, a timer's `:ok`. Awaiting a future twice returns the
  same result.

      future = start_activity(MyApp.Mail, :send, [to, body])
      # ... other work ...
      {:ok, _} = await(future)
  """
  @spec await(Aion.Future.t()) :: term()
  def await(%Aion.Future{ordinal: ordinal} = future) do
    {^ordinal, outcome} = Wait.settle(RunProcess.context(), [ordinal])
    result(future, outcome)
  end

  def await(other), do: raise(ArgumentError, "await/1 expects an Aion.Future, got: #{inspect(other)}")

  @doc """
  Waits for every future, and returns their results in the order given.

      [{:ok, a}, {:ok, b}] = await_all([start_activity(M, :a, []), start_activity(M, :b, [])])
  """
  @spec await_all([Aion.Future.t()]) :: [term()]
  def await_all(futures) when is_list(futures), do: Enum.map(futures, &await/1)

  @doc """
  Waits for the first of `futures` to finish and returns `{future, result}`.
  The winner is the one whose result was recorded first, so a replay picks
  the same one. The others go on; await them or let them be.

      {winner, result} = await_any([start_activity(M, :fast, []), start_timer(1_000)])
  """
  @spec await_any([Aion.Future.t(), ...]) :: {Aion.Future.t(), term()}
  def await_any([_ | _] = futures) do
    ordinals = Enum.map(futures, fn %Aion.Future{ordinal: ordinal} -> ordinal end)
    {ordinal, outcome} = Wait.settle(RunProcess.context(), ordinals)
    future = Enum.find(futures, &(&1.ordinal == ordinal))
    {future, result(future, outcome)}
  end

  def await_any(other), do: raise(ArgumentError, "await_any/1 expects a non-empty list of futures, got: #{inspect(other)}")

  @doc """
  Runs `fun` with a durable deadline of `milliseconds`: `{:ok, value}` if it
  returns in time, `{:error, :timeout}` if the deadline is recorded first;
  the work `fun` started and left pending is then cancelled (its
  activities are stopped, its timers cancelled). Deadlines nest.

      case with_timeout(:timer.minutes(5), fn -> await_signal(:approved) end) do
        {:ok, {:ok, approval}} -> approve(approval)
        {:error, :timeout} -> escalate()
      end
  """
  @spec with_timeout(non_neg_integer(), (-> term())) :: {:ok, term()} | {:error, :timeout}
  def with_timeout(milliseconds, fun) when is_function(fun, 0) do
    %Aion.Future{ordinal: deadline} = start_timer(milliseconds)
    context = RunProcess.context()

    try do
      value = Command.in_scope(&%{&1 | timers: [deadline | &1.timers]}, fun)
      Command.cancel_pending(context, deadline, deadline + 1)
      {:ok, value}
    catch
      :throw, {:"$aion_timed_out", ^deadline} ->
        Command.cancel_pending(context, deadline + 1, nil)
        {:error, :timeout}
    end
  end

  def with_timeout(_milliseconds, fun), do: raise(ArgumentError, "with_timeout/2 expects a function of no arguments, got: #{inspect(fun)}")

  @doc """
  Waits for the next signal named `signal_name` (an atom or a string; the
  two name the same signal) and returns `{:ok, payload}`. Signals are kept
  in the workflow's history from the moment `Aion.signal/4` returns, and
  taken in the order they were recorded, each once, even if they arrived
  before the workflow waited, while it was evicted, or while the VM was
  down.

  Options: `:timeout` - milliseconds (a durable timer); when it fires first
  the result is `{:error, :timeout}` and the signal stays for a later wait.

      case await_signal(:approval, timeout: :timer.hours(48)) do
        {:ok, %{approved_by: who}} -> {:ok, who}
        {:error, :timeout} -> {:error, :not_approved}
      end
  """
  @spec await_signal(atom() | String.t(), keyword()) :: {:ok, term()} | {:error, :timeout}
  def await_signal(signal_name, opts \\ []) do
    name = message_name(signal_name, "await_signal")
    context = RunProcess.context()

    with {:ok, {_ordinal, _id, payload}} <- await_message(context, :signal, name, timeout_option(opts, "await_signal")) do
      {:ok, Payload.decode(payload)}
    end
  end

  @doc """
  Waits for the next update named `update_name` (`Aion.update/5`), runs
  `handler.(args)` in workflow code (it may run activities and timers), and
  records its reply, which the caller of `Aion.update/5` gets. The handler
  returns `{:ok, reply}` or `{:error, reason}` (any other value `v` is
  `{:ok, v}`); a handler that raises replies
  `{:error, %Aion.Error{reason: :update_failed}}`. Returns
  `{:ok, args, reply}`, or `{:error, reason}` when the handler refused.
  Updates sent while the workflow does not wait for them queue like
  signals. After a crash the recorded reply is kept: the handler's
  activities do not run again, and a caller retrying with the same
  `:update_id` gets the same reply.

  Options: `:timeout` as in `await_signal/2`.

      {:ok, _items, _reply} =
        await_update(:add_item, fn item ->
          {:ok, _} = activity(MyApp.Stock, :reserve, [item])
          {:ok, :added}
        end)
  """
  @spec await_update(atom() | String.t(), (term() -> term()), keyword()) :: {:ok, term(), term()} | {:error, term()}
  def await_update(update_name, handler, opts \\ []) when is_function(handler, 1) do
    name = message_name(update_name, "await_update")
    context = RunProcess.context()

    with {:ok, {_ordinal, update_id, payload}} <- await_message(context, :update, name, timeout_option(opts, "await_update")) do
      args = Payload.decode(payload)
      reply = run_update_handler(handler, args, name)
      Aion.Workflow.Update.reply(context, update_id, reply)

      case reply do
        {:ok, value} -> {:ok, args, value}
        {:error, reason} -> {:error, reason}
      end
    end
  end

  @doc """
  Whether cancellation of this workflow has reached its code: true once a
  command raised `Aion.CancelledError` (in cleanup code after rescuing it,
  for example). Deterministic: a replay answers the same at the same point.
  """
  @spec cancellation_requested?() :: boolean()
  def cancellation_requested? do
    context = RunProcess.context()

    case Engine.cancel_delivered(context.run) do
      {:error, error} -> Command.engine_error(context, error)
      delivered -> delivered
    end
  end

  defp await_message(context, inbox, name, :infinity), do: {:ok, Wait.message(context, inbox, name)}

  defp await_message(context, inbox, name, timeout) do
    %Aion.Future{ordinal: deadline} = start_timer(timeout)

    try do
      taken = Command.in_scope(&%{&1 | timers: [deadline | &1.timers]}, fn -> Wait.message(context, inbox, name) end)
      Command.cancel_pending(context, deadline, deadline + 1)
      {:ok, taken}
    catch
      :throw, {:"$aion_timed_out", ^deadline} -> {:error, :timeout}
    end
  end

  defp run_update_handler(handler, args, name) do
    case handler.(args) do
      {:ok, value} -> {:ok, value}
      {:error, reason} -> {:error, reason}
      value -> {:ok, value}
    end
  rescue
    error in Aion.CancelledError -> reraise error, __STACKTRACE__
    exception -> {:error, Aion.Error.new(:update_failed, "the handler of update #{name} raised: #{Exception.message(exception)}")}
  end

  @doc """
  Sleeps for `milliseconds` (at most 100 years), durably: the wake-up time
  is recorded, and a workflow that crashes mid-sleep wakes up on time after
  recovery (at once, if the time has passed meanwhile). While it sleeps, its
  process may be evicted (see `Aion.Config`); it is brought back when the
  sleep ends.

      sleep(:timer.hours(24))
  """
  @spec sleep(non_neg_integer()) :: :ok
  def sleep(milliseconds) when is_integer(milliseconds) and milliseconds >= 0 and milliseconds <= @max_sleep do
    milliseconds |> start_timer() |> await()
  end

  def sleep(other) do
    raise ArgumentError,
          "expected sleep/1 to get an integer from 0 to #{@max_sleep} milliseconds (100 years), got: #{inspect(other)}"
  end

  @doc """
  The current time (UTC), recorded on first execution and replayed after:
  use it instead of `DateTime.utc_now/0` in workflow code.
  """
  @spec now() :: DateTime.t()
  def now, do: Marker.value("now", &DateTime.utc_now/0)

  @doc """
  Runs `fun` once and records its value; on replay returns the recorded
  value without running `fun`. For cheap non-deterministic values (random
  numbers, UUIDs); do I/O in activities instead. If `fun` raises, nothing is
  recorded and the raise propagates.

      token = side_effect(fn -> :crypto.strong_rand_bytes(16) end)
  """
  @spec side_effect((-> term())) :: term()
  def side_effect(fun) when is_function(fun, 0), do: Marker.value("side_effect", fun)

  @doc """
  A random float `x` with `0.0 <= x < 1.0`, recorded on first execution and
  replayed after: use it instead of `:rand.uniform/0` in workflow code.

      if random() < 0.1, do: activity(MyApp.Audit, :sample, [order])
  """
  @spec random() :: float()
  defdelegate random(), to: Marker

  @doc """
  A random integer from `range` (an integer range; its step is respected),
  recorded on first execution and replayed after: use it instead of
  `Enum.random/1` in workflow code. Raises `ArgumentError` for an empty
  range (such as `1..0//1`) or anything that is not a range.

      die = random(1..6)
      even = random(0..100//2)
  """
  @spec random(Range.t()) :: integer()
  defdelegate random(range), to: Marker

  @doc """
  A random (version 4) UUID string, recorded on first execution and replayed
  after: use it for ids that workflow code makes, such as an idempotency key
  for an activity.

      key = uuid()
      #=> "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b"
      {:ok, _} = activity(MyApp.Payments, :charge, [card, amount, key])
  """
  @spec uuid() :: String.t()
  defdelegate uuid(), to: Marker

  @doc """
  Whether this run takes the new branch of a code change named `change_id`
  (a non-empty string or atom; `:fee` and `"fee"` are the same change).
  This is how a workflow type's code changes while runs of the old code are
  still going, as Temporal's patching does.

      if patched?(:fee_before_charge) do
        # The new code.
        {:ok, fee} = activity(MyApp.Payments, :fee, [order])
        {:ok, _} = activity(MyApp.Payments, :charge, [order, fee])
      else
        # The code as it was.
        {:ok, _} = activity(MyApp.Payments, :charge, [order, 0])
      end

  A run that reaches the check live records it (a marker named
  `"patch:fee_before_charge"`) and gets `true`; its replays find the marker
  and get `true` again. A run whose history was recorded by the old code
  (history holds another command where the check is) gets `false` and
  replays the old branch. A run asks once: later checks of the same
  `change_id` in the run return the first answer, without recording
  anything, so a run recorded by the old code keeps taking the old branch
  after its replay has gone live.

  Once no run of the old code is left, delete the old branch but keep the
  check (`patched?(:fee_before_charge)` whose result is ignored), since
  runs recorded with the marker expect a command there; once no run
  recorded with the marker is left either, delete the check. A marker that
  history holds where the code no longer checks it is non-determinism
  (`AION-ND001` or `AION-ND002`, naming the marker `patch:...`).
  """
  @spec patched?(String.t() | atom()) :: boolean()
  defdelegate patched?(change_id), to: Marker

  @doc """
  Registers `fun` as the handler of query `name`, replacing any earlier
  handler of that name. `Aion.query/5` calls it with the query's arguments
  and returns what it returns. Not a command: nothing is recorded.

  A name is a string or an atom; an atom is the same query as its string
  (`:status` and `"status"` name one query). Raises `ArgumentError` if
  `name` is neither or `fun` is not a function of one argument.

  A handler is a closure: it sees the values it captured when it was
  registered. Register it again after each step to expose new state:

      def run(items) do
        total = length(items)
        on_query(:progress, fn _args -> %{done: 0, total: total} end)

        for {item, done} <- Enum.with_index(items, 1) do
          {:ok, _} = activity(MyApp.Items, :process, [item])
          on_query(:progress, fn _args -> %{done: done, total: total} end)
        end

        :ok
      end

      {:ok, %{done: 2, total: 5}} = Aion.query(MyApp.Aion, id, :progress)

  Handlers run in the workflow's process while it waits (in `activity/4`,
  `sleep/1`, `await/1`, `await_signal/2`, ...), between two steps of its
  code; a workflow busy computing answers once it next waits. A handler
  only reads: if it calls `activity/4`, `sleep/1`, `now/0`, `side_effect/1`
  or any other workflow function, that query fails (`:query_failed`), and
  so does a handler that raises, exits or throws; the workflow is never
  affected.

  A workflow without a process (evicted while it waits, finished, or not
  yet resumed after a restart) is replayed to answer: its code runs again
  from the top, recording nothing, up to the first command that history
  does not decide (one not recorded yet, or still pending, such as a
  `start_activity/4` whose activity has not returned), or to its end for a
  finished workflow, and the handlers registered at that point answer.
  """
  @spec on_query(atom() | String.t(), (term() -> term())) :: :ok
  def on_query(name, fun), do: Aion.Workflow.Query.register(name, fun)

  @doc """
  Sets search attributes of the workflow: visibility metadata that
  `Aion.list/3` and `Aion.count/2` filter on, and `Aion.describe/2` shows.
  `attributes` is a map of names (strings, or atoms standing for their
  names) to values: strings, integers, floats, booleans or `DateTime`s.
  Values replace earlier values of the same names (set by this call or by
  the start's `:search_attributes`); other names keep theirs. Returns `:ok`
  once recorded.

      upsert_search_attributes(%{"stage" => "charged", "amount" => 42_00})
      {:ok, %{workflows: [_]}} = Aion.list(MyApp.Aion, MyApp.Order, search: %{"stage" => "charged"})

  A command like `side_effect/1`: recorded once, and on replay it records
  nothing again. An upsert of other names than history holds at that point
  is non-determinism (`AION-ND001`, naming the command
  `search_attributes` with its names). An empty map records nothing.

  Raises `ArgumentError` before recording anything if a value is not one of
  the kinds above, or if its kind differs from the kind its name already
  has in the store (each name keeps the kind of its first use, in any
  workflow): the code may rescue it and go on.
  """
  @spec upsert_search_attributes(%{(String.t() | atom()) => String.t() | integer() | float() | boolean() | DateTime.t()}) :: :ok
  defdelegate upsert_search_attributes(attributes), to: Aion.Workflow.SearchAttributes, as: :upsert

  @doc """
  Starts a child workflow: `module` (a workflow of this instance) with
  `input`, and returns a future to pass to `await/1`, `await_all/1` or
  `await_any/1` (its `workflow_id` field is the child's id). The future's
  result is the child's: `{:ok, value}` when it completes, `{:error, reason}`
  when it fails, and `{:error, %Aion.Error{}}` with reason `:cancelled`,
  `:terminated` (`details.reason` holds the reason), `:timed_out`, or
  `:already_started` when the id was taken by a running workflow (or a
  finished one its `:id_reuse` refuses), in which case the child never ran.
  A child that continues as new is awaited to the end of its last run.

  The child is recorded in this workflow's history first, then started;
  after a crash in between, the replay starts it (once: it runs under a
  run id fixed in the record). Its ending is recorded in this workflow's
  history exactly once, even if this workflow was evicted or the VM
  restarted meanwhile, and wakes it.

  Options:

    * `:id` - the child's workflow id. Defaults to one derived from this
      workflow's id, run and the command's position, so a replay finds the
      same child.
    * `:parent_close` - what happens to the child if this run ends first
      (completes, fails, is cancelled, terminated or times out):
      `:terminate` (the default), `:request_cancel` (the child is asked to
      cancel, as `Aion.cancel/3` does) or `:abandon` (it runs on). Its own
      children follow their policies in turn, so a cancellation or a
      termination reaches grandchildren.
    * `:execution_timeout`, `:run_timeout`, `:id_reuse`,
      `:search_attributes` - as for `Aion.start_workflow/4`.

  A module that is not one of the instance's `:workflows`, an input that
  cannot be stored or a bad option raises `ArgumentError` before anything is
  recorded.

      orders = for order <- orders, do: start_child(MyApp.Fulfil, order, parent_close: :request_cancel)
      results = await_all(orders)
  """
  @spec start_child(module(), term(), keyword()) :: Aion.Future.t()
  defdelegate start_child(module, input, opts \\ []), to: Aion.Workflow.Child, as: :start

  @doc """
  Runs a child workflow and returns its result: the same as
  `start_child(module, input, opts) |> await()` (see `start_child/3`).

      {:ok, receipt} = execute_child(MyApp.Payment, %{order: id, amount: 42_00}, id: "payment-\#{id}")
  """
  @spec execute_child(module(), term(), keyword()) :: {:ok, term()} | {:error, term()}
  def execute_child(module, input, opts \\ []), do: module |> start_child(input, opts) |> await()

  @doc """
  Asks the child workflow of `future` to cancel, as `Aion.cancel/3` does: its
  code meets `Aion.CancelledError` at its next command. Awaiting the future
  then returns how the child ended (`{:error, %Aion.Error{reason: :cancelled}}`
  if it let the cancellation end it). Only the child this command started is
  asked (not another workflow that took its id later), only while its ending
  is not recorded, and only once (a replay asks nothing again). Returns `:ok`.

      payment = start_child(MyApp.Payment, order)
      case await_any([payment, start_timer(:timer.minutes(10))]) do
        {%Aion.Future{kind: :timer}, :ok} -> cancel_child(payment)
        {_payment, result} -> result
      end
  """
  @spec cancel_child(Aion.Future.t()) :: :ok
  defdelegate cancel_child(future), to: Aion.Workflow.Child, as: :cancel

  @doc """
  Sends signal `signal_name` (an atom or a string) with `payload` to the
  running workflow `workflow_id`, as `Aion.signal/4` does from outside.
  Returns `:ok` once the signal is delivered, or
  `{:error, %Aion.Error{reason: :not_found | :not_running}}` when the target
  has no running run when it is sent (nothing is delivered; the result is
  recorded, so a replay returns the same). A target that stops running
  between the two gets nothing, as for a signal a workflow ends without
  taking.

  The send is recorded in this workflow's history before it is delivered,
  and delivered exactly once, also when this workflow's process or the VM
  dies in between: the replay finds the send recorded and delivers it
  unless a run of the target has it (also one it continued as new to). A
  sender terminated in between does not replay, and its signal is not
  delivered.

      :ok = signal_workflow(order_id, :payment_received, %{amount: 42_00})
  """
  @spec signal_workflow(String.t(), atom() | String.t(), term()) :: :ok | {:error, Aion.Error.t()}
  def signal_workflow(workflow_id, signal_name, payload) do
    Aion.Workflow.Child.signal(workflow_id, message_name(signal_name, "signal_workflow"), payload)
  end

  @doc """
  Ends this run and starts a fresh run of the workflow with `input`: same
  workflow id, a new run id, an empty history. Does not return.

  A workflow that goes on for a long time (an entity, a poller, a loop over
  many items) continues as new now and then, carrying its state in the
  input, so that each run's history stays short: loading a run reads only
  its own events, however many runs came before it.

      def run(%{count: count, total: total}) do
        {:ok, amount} = await_signal(:add)
        state = %{count: count + 1, total: total + amount}
        if history_size().events > 1_000, do: continue_as_new(state), else: run(state)
      end

  The ended run's status is `:continued_as_new`; `Aion.runs/2` lists the
  runs, each new one with its `:parent_run_id`. Carried over to the new
  run: signals received and not yet taken (recorded again, in their order,
  each taken once), the search attributes as they are now, what is left of
  the `:execution_timeout` (the `:run_timeout` applies to each run afresh).
  Not carried over: activities and timers in flight (abandoned with the
  run), updates not yet taken. Callers of `Aion.await/3` get the result of
  the last run, never the continue.

  Options:

    * `:module` - the workflow module the new run executes (another type);
      defaults to this workflow's module. It must be a workflow
      (`use Aion.Workflow`) among the instance's `:workflows`.

  Raises `ArgumentError`, recording nothing, if `input` cannot be stored
  (it holds a pid, a reference, a port or a fun) or `:module` is not such
  a workflow: the code may rescue it and go on.
  """
  @spec continue_as_new(term(), keyword()) :: no_return()
  defdelegate continue_as_new(input, opts \\ []), to: Aion.Workflow.ContinueAsNew

  @doc """
  The size of this run's history, `%{events: events, bytes: bytes}`: how
  many events it holds and how many bytes their payloads take (inputs,
  results, signal payloads, recorded values; the fixed framing of each
  event is not counted). Use it to decide when to `continue_as_new/2`.

  It counts the history as the code has seen it: up to the last command
  the code issued (its start, before the first one). Events recorded since
  (an outcome not taken yet, a signal waiting) count from the next command
  on. So a replay gives the same size at the same point, and code that
  decides on it decides the same way. Reading it records nothing.
  `Aion.describe/3` shows the whole run's size.
  """
  @spec history_size() :: %{events: non_neg_integer(), bytes: non_neg_integer()}
  defdelegate history_size(), to: Aion.Workflow.ContinueAsNew

  @doc "The id of the running workflow."
  @spec workflow_id() :: String.t()
  def workflow_id, do: RunProcess.context().workflow_id


  defp result(%Aion.Future{kind: :child} = future, outcome), do: Aion.Workflow.Child.result(outcome, future)
  defp result(%Aion.Future{kind: :activity}, {:completed, payload}), do: {:ok, Payload.decode(payload)}
  defp result(%Aion.Future{kind: :activity}, {:failed, payload}), do: {:error, Payload.decode(payload)}
  defp result(%Aion.Future{kind: :timer}, :fired), do: :ok
  defp result(_future, :cancelled), do: {:error, Aion.Error.new(:cancelled, "the work was cancelled")}

  # The queue of an activity, with its limit: {queue, limit}. Unknown, it
  # raises for a new activity; one recorded earlier runs on :default (the
  # instance's queues changed since).
  defp limit(context, queue, dispatch) do
    queues = Map.get(context, :queues, %{default: :infinity})

    case queues do
      %{^queue => limit} ->
        {queue, limit}

      %{} when dispatch == :again ->
        Logger.warning("Aion: workflow #{context.workflow_id}: activity queue #{inspect(queue)} is unknown now; running on :default")
        {:default, queues[:default]}

      %{} ->
        raise ArgumentError,
              "activity: unknown queue #{inspect(queue)} (the instance's :queues are #{inspect(Map.keys(queues))})"
    end
  end

  defp timeout_option(opts, entry) do
    timeout = Keyword.get(opts, :timeout, :infinity)

    unless timeout == :infinity or (is_integer(timeout) and timeout > 0) do
      raise ArgumentError, "#{entry}: expected :timeout to be a positive integer or :infinity, got: #{inspect(timeout)}"
    end

    timeout
  end

  defp message_name(name, _entry) when is_atom(name) and not is_nil(name) and not is_boolean(name), do: Atom.to_string(name)
  defp message_name(name, _entry) when is_binary(name) and name != "", do: name

  defp message_name(name, entry) do
    raise ArgumentError, "#{entry}: expected a name (an atom or a non-empty string), got: #{inspect(name)}"
  end
end
