defmodule Aion.Test.Flaky do
  @moduledoc false
  # Activities whose attempts are counted in an :atomics kept in
  # :persistent_term under `key`, and which tell the `listener` (a
  # registered name, or nil) about each attempt.

  def counter(key), do: :persistent_term.put(key, :atomics.new(1, signed: false))
  def attempts(key), do: :atomics.get(:persistent_term.get(key), 1)

  defp attempt(key, listener) do
    n = :atomics.add_get(:persistent_term.get(key), 1, 1)
    if listener, do: send(listener, {:attempt, n, Aion.Activity.info(), System.os_time(:millisecond)})
    n
  end

  @doc "Fails `failures` times, in the way `how` says, then returns `{:ok, {:done, attempt}}`."
  def fail_then_succeed(key, failures, how, listener \\ nil) do
    n = attempt(key, listener)

    if n <= failures do
      case how do
        :error -> {:error, {:flaky, n}}
        :raise -> raise ArgumentError, "flaky #{n}"
        :exit -> exit({:flaky, n})
      end
    else
      {:ok, {:done, Aion.Activity.info().attempt}}
    end
  end

  @doc "Always fails with `reason`."
  def always_fail(key, reason, listener \\ nil) do
    _ = attempt(key, listener)
    {:error, reason}
  end

  @doc "Always raises `exception`."
  def always_raise(key, exception) do
    _ = attempt(key, nil)
    raise exception, "nope"
  end

  @doc "Attempt 1 sleeps `ms`; later ones return at once."
  def slow_first(key, ms) do
    if attempt(key, nil) == 1, do: Process.sleep(ms)
    {:ok, Aion.Activity.info().attempt}
  end

  @doc "Heartbeats every `every` ms for `total` ms, then returns."
  def heartbeating(every, total) do
    for i <- 1..div(total, every) do
      Aion.Activity.heartbeat(i)
      Process.sleep(every)
    end

    {:ok, :done}
  end

  @doc "Sleeps `ms` without a heartbeat."
  def silent(ms) do
    Process.sleep(ms)
    {:ok, :done}
  end

  @doc "Attempt 1 heartbeats 1..5 then fails; attempt 2 returns the last heartbeat it is given."
  def resume_from_heartbeat(key) do
    case attempt(key, nil) do
      1 ->
        for i <- 1..5, do: Aion.Activity.heartbeat(%{done: i})
        {:error, :interrupted}

      _ ->
        {:ok, Aion.Activity.last_heartbeat()}
    end
  end

  @doc "Heartbeats until cancelled; tells `listener` it saw the cancellation."
  def until_cancelled(listener) do
    send(listener, {:heartbeating, self()})
    loop(listener, 0)
  end

  defp loop(listener, i) do
    Aion.Activity.heartbeat(i)
    Process.sleep(10)
    loop(listener, i + 1)
  rescue
    error in Aion.CancelledError ->
      send(listener, {:activity_cancelled, error.reason, self()})
      reraise error, __STACKTRACE__
  end

  @doc "Writes `os_time(:millisecond)` of each attempt to `file`, fails the first."
  def logged(file) do
    File.write!(file, "#{System.os_time(:millisecond)}\n", [:append])
    if Aion.Activity.info().attempt == 1, do: {:error, :first_fails}, else: {:ok, :second}
  end

  @doc "Never returns."
  def hang, do: Process.sleep(:infinity)

  @doc "Attempt 1 fails; attempt 2 never returns."
  def fail_then_hang(key) do
    if attempt(key, nil) == 1, do: {:error, :first}, else: Process.sleep(:infinity)
  end
end

defmodule Aion.Test.Retrying do
  @moduledoc false
  # Runs one activity of Aion.Test.Flaky with the given options.
  use Aion.Workflow

  @impl true
  def run(%{function: function, args: args, opts: opts}), do: {:ok, activity(Aion.Test.Flaky, function, args, opts)}
end

defmodule Aion.Test.RetryingByDefault do
  @moduledoc false
  # Its activities retry by the workflow's defaults.
  use Aion.Workflow, activity_defaults: [retry: [max_attempts: 4, initial_interval: 5, backoff: 1.0], start_to_close: 5_000]

  @impl true
  def run(%{function: function, args: args, opts: opts}), do: {:ok, activity(Aion.Test.Flaky, function, args, opts)}
end

defmodule Aion.Test.CancelsHeartbeater do
  @moduledoc false
  # A heartbeating activity that is cancelled: by the workflow's
  # cancellation (:cancel), or by a with_timeout that drops it (:race).
  use Aion.Workflow

  @impl true
  def run(%{listener: listener, how: :cancel}) do
    activity(Aion.Test.Flaky, :until_cancelled, [listener], cancel_grace: 20_000)
  rescue
    Aion.CancelledError -> {:ok, :cleaned_up}
  end

  def run(%{listener: listener, how: :race}) do
    result = with_timeout(100, fn -> activity(Aion.Test.Flaky, :until_cancelled, [listener], cancel_grace: 20_000) end)
    sleep(300)
    {:ok, result}
  end
end
