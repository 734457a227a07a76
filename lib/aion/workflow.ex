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
  do I/O only in activities, and wrap any other non-deterministic value in
  `side_effect/1`. If changed code issues a different command than history
  recorded at the same position, the workflow fails with a non-determinism
  error (code `AION-ND001`, see `docs/errors/AION-ND001.md`) naming the
  position, the recorded and the issued command.

  ## Options of `use Aion.Workflow`

    * `:name` - the workflow type's name, stored in history. Defaults to the
      module name (`"MyApp.Order"`). Set it to keep history readable by a
      renamed module.
  """

  alias Aion.{Native, Payload, WorkflowProcess}

  @doc "The workflow's code. Its return value completes or fails the workflow."
  @callback run(input :: term()) :: {:ok, term()} | {:error, term()} | term()

  defmacro __using__(opts) do
    quote bind_quoted: [opts: opts] do
      @behaviour Aion.Workflow
      import Aion.Workflow, only: [activity: 3, activity: 4, sleep: 1, now: 0, side_effect: 1, workflow_id: 0]

      @aion_workflow_type Keyword.get(opts, :name, inspect(__MODULE__))

      @doc false
      def __aion_workflow__, do: %{type: @aion_workflow_type}
    end
  end

  @doc "Whether `module` is a workflow (`use Aion.Workflow`)."
  @spec workflow?(term()) :: boolean()
  def workflow?(module) when is_atom(module) do
    Code.ensure_loaded?(module) and function_exported?(module, :__aion_workflow__, 0)
  end

  def workflow?(_other), do: false

  @doc "The workflow type name of a workflow module."
  @spec type(module()) :: String.t()
  def type(module), do: module.__aion_workflow__().type

  @doc """
  Runs `apply(module, function, args)` as an activity and returns its result:
  `{:ok, value}` or `{:error, reason}`.

  The activity runs in its own process, outside the workflow. It may return
  `{:ok, value}`, `{:error, reason}`, `:ok` (giving `{:ok, :ok}`) or any other
  value (giving `{:ok, value}`); if it raises, exits or times out, the result is
  `{:error, %Aion.Error{reason: :activity_raised | :activity_exited | :activity_timeout}}`.

  The activity is recorded before it runs and its result when it returns. An
  activity whose result was recorded never runs again; one interrupted by a
  crash runs again on recovery (activities are at-least-once, so make them
  idempotent).

  Options:

    * `:timeout` - milliseconds the activity may take, or `:infinity`
      (default).

  ## Example

      {:ok, receipt} = activity(MyApp.Payments, :charge, [card, 42_00], timeout: 10_000)
  """
  @spec activity(module(), atom(), list(), keyword()) :: {:ok, term()} | {:error, term()}
  def activity(module, function, args, opts \\ [])
      when is_atom(module) and is_atom(function) and is_list(args) and is_list(opts) do
    timeout = Keyword.get(opts, :timeout, :infinity)

    unless timeout == :infinity or (is_integer(timeout) and timeout > 0) do
      raise ArgumentError, "expected :timeout to be a positive integer or :infinity, got: #{inspect(timeout)}"
    end

    context = WorkflowProcess.context()
    name = "#{inspect(module)}.#{function}"

    case resolve(context, :activity, name) do
      {:replayed, _ordinal, outcome} ->
        activity_result(outcome)

      {:pending, ordinal, _work} ->
        run_activity(context, ordinal, {module, function, args}, timeout)

      {:live, ordinal} ->
        input = encode_argument!(args, "the arguments of activity #{name}")
        record!(context, {:activity_scheduled, ordinal, name, input})
        run_activity(context, ordinal, {module, function, args}, timeout)
    end
  end

  @doc """
  Sleeps for `milliseconds`, durably: the wake-up time is recorded, and a
  workflow that crashes mid-sleep wakes up on time after recovery (at once,
  if the time has passed meanwhile).

      sleep(:timer.hours(24))
  """
  @spec sleep(non_neg_integer()) :: :ok
  def sleep(milliseconds) when is_integer(milliseconds) and milliseconds >= 0 do
    context = WorkflowProcess.context()

    case resolve(context, :timer, "") do
      {:replayed, _ordinal, _fired_or_cancelled} ->
        :ok

      {:pending, ordinal, _work} ->
        await_timer(ordinal)

      {:live, ordinal} ->
        record!(context, {:timer_started, ordinal, milliseconds})
        await_timer(ordinal)
    end
  end

  def sleep(other), do: raise(ArgumentError, "expected sleep/1 to get milliseconds >= 0, got: #{inspect(other)}")

  @doc """
  The current time (UTC), recorded on first execution and replayed after:
  use it instead of `DateTime.utc_now/0` in workflow code.
  """
  @spec now() :: DateTime.t()
  def now, do: marker("now", &DateTime.utc_now/0)

  @doc """
  Runs `fun` once and records its value; on replay returns the recorded
  value without running `fun`. For cheap non-deterministic values (random
  numbers, UUIDs); do I/O in activities instead.

      token = side_effect(fn -> :crypto.strong_rand_bytes(16) end)
  """
  @spec side_effect((-> term())) :: term()
  def side_effect(fun) when is_function(fun, 0), do: marker("side_effect", fun)

  @doc "The id of the running workflow."
  @spec workflow_id() :: String.t()
  def workflow_id, do: WorkflowProcess.context().workflow_id

  defp marker(name, fun) do
    context = WorkflowProcess.context()

    case resolve(context, :marker, name) do
      {:replayed, _ordinal, {:recorded, payload}} ->
        Payload.decode(payload)

      {:live, ordinal} ->
        value = fun.()
        record!(context, {:marker, ordinal, name, encode_argument!(value, "the value of #{name}")})
        value
    end
  end

  defp resolve(context, kind, name) do
    case Native.resolve(context.run, kind, name) do
      {:error, error} -> stop(Aion.Error.from_native(error))
      resolution -> resolution
    end
  end

  defp record!(context, command) do
    case Native.call(&Native.record(context.run, command, &1)) do
      :ok -> :ok
      {:error, error} -> stop(error)
    end
  end

  defp stop(%Aion.Error{reason: :nondeterminism} = error), do: exit({:aion_nondeterminism, error})
  defp stop(%Aion.Error{reason: :superseded}), do: exit(:aion_superseded)
  defp stop(error), do: exit({:aion_engine_error, error})

  defp encode_argument!(term, what) do
    case Payload.encode(term, what) do
      {:ok, payload} -> payload
      {:error, error} -> raise ArgumentError, error.message
    end
  end

  defp activity_result({:completed, payload}), do: {:ok, Payload.decode(payload)}
  defp activity_result({:failed, payload}), do: {:error, Payload.decode(payload)}
  defp activity_result(:cancelled), do: {:error, Aion.Error.new(:cancelled, "the activity was cancelled")}

  defp await_timer(ordinal) do
    receive do
      {:aion_timer_fired, ^ordinal} -> :ok
    end
  end

  defp run_activity(context, ordinal, {module, function, args} = mfa, timeout) do
    task = Task.Supervisor.async_nolink(context.activities, fn -> invoke(mfa) end)
    result = await_activity(context, task, timeout, mfa)

    {command, value} =
      case result do
        {:ok, value} -> {:activity_completed, value}
        {:error, reason} -> {:activity_failed, reason}
      end

    case Payload.encode(value, "the result of activity #{inspect(module)}.#{function}/#{length(args)}") do
      {:ok, payload} ->
        record!(context, {command, ordinal, payload})
        result

      {:error, error} ->
        record!(context, {:activity_failed, ordinal, Payload.encode!(error)})
        {:error, error}
    end
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
    kind, value -> {:error, Aion.Error.from_crash(:activity_raised, kind, value, __STACKTRACE__)}
  end

  defp await_activity(context, task, timeout, {module, function, args}) do
    name = "#{inspect(module)}.#{function}/#{length(args)}"

    receive do
      {ref, result} when ref == task.ref ->
        Process.demonitor(ref, [:flush])
        result

      {:DOWN, ref, :process, _pid, reason} when ref == task.ref ->
        {:error, Aion.Error.new(:activity_exited, "activity #{name} exited: #{inspect(reason)}")}
    after
      timeout ->
        Task.Supervisor.terminate_child(context.activities, task.pid)
        Process.demonitor(task.ref, [:flush])
        {:error, Aion.Error.new(:activity_timeout, "activity #{name} did not finish within #{timeout} ms")}
    end
  end
end
