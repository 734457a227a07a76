defmodule Aion.Activity.RetryTest do
  # Activity retries, timeouts, heartbeats and cancellation, through the
  # real NIF and SQLite files.
  use Aion.Case, async: true

  alias Aion.Test.{CancelsHeartbeater, Flaky, Retrying, RetryingByDefault}

  @moduletag :tmp_dir

  defp instance(dir) do
    start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Retrying, RetryingByDefault, CancelsHeartbeater])
  end

  defp key do
    key = :"aion_test_flaky_#{System.unique_integer([:positive])}"
    Flaky.counter(key)
    key
  end

  defp run(aion, workflow \\ Retrying, function, args, opts) do
    {:ok, id} = Aion.start_workflow(aion, workflow, %{function: function, args: args, opts: opts})
    {id, Aion.await(aion, id, 20_000)}
  end

  defp activity_end(aion, id) do
    {:ok, events} = Aion.history(aion, id)
    Enum.find(events, &(&1.type in [:activity_completed, :activity_failed]))
  end

  @fast [max_attempts: 5, initial_interval: 10, backoff: 2.0]

  describe "retry" do
    test "an activity failing twice then succeeding completes with attempt 3", %{tmp_dir: dir} do
      aion = instance(dir)

      for how <- [:error, :raise, :exit] do
        key = key()
        assert {id, {:ok, {:ok, {:done, 3}}}} = run(aion, :fail_then_succeed, [key, 2, how], retry: @fast)
        assert Flaky.attempts(key) == 3
        assert %{type: :activity_completed, attempts: 3, last_failure: failure} = activity_end(aion, id)
        if how == :error, do: assert(failure == {:flaky, 2}), else: assert(%Aion.Error{} = failure)
        # One event per activity, whatever the attempts: no per-attempt records.
        assert Enum.count(event_types(aion, id), &(&1 == :activity_scheduled)) == 1
        assert length(event_types(aion, id)) == 4
      end
    end

    test "a first attempt that succeeds records no attempt count", %{tmp_dir: dir} do
      aion = instance(dir)
      assert {id, {:ok, {:ok, {:done, 1}}}} = run(aion, :fail_then_succeed, [key(), 0, :error], retry: @fast)
      refute Map.has_key?(activity_end(aion, id), :attempts)
    end

    test "without a retry policy an activity fails at its first failure", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      assert {_id, {:ok, {:error, {:flaky, 1}}}} = run(aion, :fail_then_succeed, [key, 2, :error], [])
      assert Flaky.attempts(key) == 1
    end

    test "max_attempts bounds the attempts; the failure records how many ran", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      assert {id, {:ok, {:error, :boom}}} = run(aion, :always_fail, [key, :boom], retry: [max_attempts: 3, initial_interval: 1])
      assert Flaky.attempts(key) == 3
      assert %{type: :activity_failed, attempts: 3, error: :boom} = activity_end(aion, id)
    end

    test "non_retryable reasons and exception modules stop at once", %{tmp_dir: dir} do
      aion = instance(dir)
      retry = [max_attempts: 5, initial_interval: 1, non_retryable: [:card_declined, ArgumentError]]

      key = key()
      assert {_, {:ok, {:error, :card_declined}}} = run(aion, :always_fail, [key, :card_declined], retry: retry)
      assert Flaky.attempts(key) == 1

      # A tuple reason matches by its first element.
      key = key()
      assert {_, {:ok, {:error, {:card_declined, "4242"}}}} = run(aion, :always_fail, [key, {:card_declined, "4242"}], retry: retry)
      assert Flaky.attempts(key) == 1

      key = key()
      assert {_, {:ok, {:error, %Aion.Error{reason: :activity_raised}}}} = run(aion, :always_raise, [key, ArgumentError], retry: retry)
      assert Flaky.attempts(key) == 1

      key = key()
      assert {_, {:ok, {:error, %Aion.Error{reason: :activity_raised}}}} = run(aion, :always_raise, [key, RuntimeError], retry: retry)
      assert Flaky.attempts(key) == 5
    end

    test "backoff grows from initial_interval by backoff, up to max_interval", %{tmp_dir: dir} do
      aion = instance(dir)
      listener = listen()
      key = key()
      retry = [max_attempts: 4, initial_interval: 100, backoff: 3.0, max_interval: 400]
      assert {_, {:ok, {:error, :boom}}} = run(aion, :always_fail, [key, :boom, listener], retry: retry)

      times = for n <- 1..4, do: receive(do: ({:attempt, ^n, _info, at} -> at))
      gaps = times |> Enum.chunk_every(2, 1, :discard) |> Enum.map(fn [a, b] -> b - a end)
      # Waits of 100, 300 and 400 (capped) ms, give or take scheduling.
      assert [g1, g2, g3] = gaps
      assert g1 >= 100 and g1 < 300
      assert g2 >= 300 and g2 < 500
      assert g3 >= 400 and g3 < 600
    end

    test "activity_defaults of the workflow apply, and a call's options override them", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      assert {_, {:ok, {:ok, {:done, 4}}}} = run(aion, RetryingByDefault, :fail_then_succeed, [key, 3, :error], [])

      key = key()
      assert {_, {:ok, {:error, {:flaky, 2}}}} = run(aion, RetryingByDefault, :fail_then_succeed, [key, 3, :error], retry: [max_attempts: 2])
      assert Flaky.attempts(key) == 2
    end

    test "describe shows the attempts and the last failure during a backoff", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      {:ok, id} = Aion.start_workflow(aion, Retrying, %{function: :always_fail, args: [key, :boom], opts: [retry: [initial_interval: 60_000]]})

      pending =
        eventually(fn ->
          {:ok, %{pending: pending}} = Aion.describe(aion, id)
          match?([%{retry_at: %DateTime{}}], pending) && pending
        end)

      assert [%{kind: :activity, attempts: 1, last_failure: :boom, retry_at: retry_at}] = pending
      assert DateTime.diff(retry_at, DateTime.utc_now(), :second) in 55..60
      :ok = Aion.terminate(aion, id)
    end

    test "retry: true takes the workflow's retry defaults, and the built-in ones otherwise", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      assert {_, {:ok, {:ok, {:done, 4}}}} = run(aion, RetryingByDefault, :fail_then_succeed, [key, 3, :error], retry: true)
      assert Aion.Activity.Options.new!([retry: true], [], "x").retry.max_attempts == 3
    end

    test "backoff stops growing at max_interval, however many attempts" do
      options = Aion.Activity.Options.new!([retry: [max_attempts: :infinity]], [], "x")
      assert Aion.Activity.Options.backoff(options, 1) == 1_000
      assert Aion.Activity.Options.backoff(options, 3) == 4_000
      assert Aion.Activity.Options.backoff(options, 1_020) == 60_000
      assert Aion.Activity.Options.backoff(Aion.Activity.Options.new!([retry: [backoff: 10, max_attempts: :infinity]], [], "x"), 400) == 60_000
    end

    test "describe counts the attempt running after a backoff", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      input = %{function: :fail_then_hang, args: [key], opts: [retry: [initial_interval: 10]]}
      {:ok, id} = Aion.start_workflow(aion, Retrying, input)
      eventually(fn -> Flaky.attempts(key) == 2 end)
      assert {:ok, %{pending: [%{attempts: 2, last_failure: :first} = pending]}} = Aion.describe(aion, id)
      refute Map.has_key?(pending, :retry_at)
      :ok = Aion.terminate(aion, id)
    end

    test "bad retry options are a clear error at the call", %{tmp_dir: dir} do
      aion = instance(dir)
      assert {_, {:error, %Aion.Error{message: message}}} = run(aion, :always_fail, [key(), :x], retry: [max_attempts: 0])
      assert message =~ "expected :retry option :max_attempts to be a positive integer or :infinity, got: 0"
      assert {_, {:error, %Aion.Error{message: message}}} = run(aion, :always_fail, [key(), :x], retry: [tries: 3])
      assert message =~ "unknown :retry options [:tries]"
      assert {_, {:error, %Aion.Error{message: message}}} = run(aion, :always_fail, [key(), :x], retries: 3)
      assert message =~ "unknown options [:retries]"
      assert {_, {:error, %Aion.Error{message: message}}} = run(aion, :always_fail, [key(), :x], retry: :yes)
      assert message =~ "expected :retry to be a keyword list, true (the defaults) or false, got: :yes"
    end
  end

  describe "timeouts" do
    test "start_to_close times out one attempt, which is retried", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      assert {id, {:ok, {:ok, 2}}} = run(aion, :slow_first, [key, 5_000], start_to_close: 100, retry: @fast)
      assert %{attempts: 2, last_failure: %Aion.Error{reason: :activity_timeout, details: %{timeout: :start_to_close}}} = activity_end(aion, id)
    end

    test "schedule_to_close bounds all the attempts together", %{tmp_dir: dir} do
      aion = instance(dir)
      key = key()
      started = System.monotonic_time(:millisecond)
      retry = [max_attempts: :infinity, initial_interval: 20, backoff: 1.0]
      # It fails with its last failure when no retry could begin before the
      # deadline, or with the deadline itself if it passes during an attempt.
      assert {id, {:ok, {:error, error}}} = run(aion, :always_fail, [key, :boom], retry: retry, schedule_to_close: 300)
      assert error == :boom or match?(%Aion.Error{reason: :activity_timeout, details: %{timeout: :schedule_to_close}}, error)
      assert System.monotonic_time(:millisecond) - started < 2_000
      assert Flaky.attempts(key) > 3
      assert %{type: :activity_failed, attempts: attempts} = activity_end(aion, id)
      assert attempts == Flaky.attempts(key)
    end

    test "schedule_to_close stops a running attempt", %{tmp_dir: dir} do
      aion = instance(dir)
      assert {_, {:ok, {:error, %Aion.Error{details: %{timeout: :schedule_to_close}}}}} = run(aion, :hang, [], schedule_to_close: 200)
    end

    test "heartbeats extend the heartbeat deadline; silence times out", %{tmp_dir: dir} do
      aion = instance(dir)
      # Heartbeats every 20 ms for 1.5 s keep a 1 s deadline from expiring
      # (room for a loaded machine); 3 s of silence does not.
      assert {_, {:ok, {:ok, :done}}} = run(aion, :heartbeating, [20, 1_500], heartbeat_timeout: 1_000)

      assert {_, {:ok, {:error, %Aion.Error{reason: :activity_timeout, details: %{timeout: :heartbeat}, message: message}}}} =
               run(aion, :silent, [3_000], heartbeat_timeout: 1_000)

      assert message =~ "sent no heartbeat for 1000 ms"
    end

    test "last_heartbeat gives the next attempt the previous attempt's details", %{tmp_dir: dir} do
      aion = instance(dir)
      assert {_, {:ok, {:ok, %{done: 5}}}} = run(aion, :resume_from_heartbeat, [key()], retry: @fast)
    end
  end

  describe "inside an activity" do
    test "info/0 says which attempt runs, and by when it must finish", %{tmp_dir: dir} do
      aion = instance(dir)
      listener = listen()
      {id, {:ok, {:ok, _}}} = run(aion, :fail_then_succeed, [key(), 1, :error, listener], retry: @fast, start_to_close: 10_000)
      assert_received {:attempt, 1, %{attempt: 1, workflow_id: ^id, activity: "Aion.Test.Flaky.fail_then_succeed", deadline: %DateTime{}} = info, _}
      assert info.heartbeat_timeout == :infinity
      assert_received {:attempt, 2, %{attempt: 2}, _}
    end

    test "outside an activity the functions raise a clear error" do
      assert_raise RuntimeError, ~r/can only be called by the code of an activity/, fn -> Aion.Activity.heartbeat(1) end
      assert_raise RuntimeError, ~r/Aion.Activity.info\/0 can only be called/, fn -> Aion.Activity.info() end
      assert_raise RuntimeError, ~r/last_heartbeat\/0/, fn -> Aion.Activity.last_heartbeat() end
    end
  end

  describe "cancellation" do
    test "reaches a heartbeating activity when the workflow is cancelled", %{tmp_dir: dir} do
      aion = instance(dir)
      listener = listen()
      {:ok, id} = Aion.start_workflow(aion, CancelsHeartbeater, %{listener: listener, how: :cancel})
      assert_receive {:heartbeating, pid}, 5_000
      :ok = Aion.cancel(aion, id)
      # (A generous grace: on a loaded machine the heartbeat that meets the
      # cancellation may come late, and a kill would say nothing.)
      assert_receive {:activity_cancelled, :activity_cancelled, ^pid}, 15_000
      assert {:ok, :cleaned_up} = Aion.await(aion, id, 5_000)
      ref = Process.monitor(pid)
      assert_receive {:DOWN, ^ref, :process, ^pid, _}, 5_000
    end

    test "reaches a heartbeating activity a with_timeout drops", %{tmp_dir: dir} do
      aion = instance(dir)
      listener = listen()
      {:ok, id} = Aion.start_workflow(aion, CancelsHeartbeater, %{listener: listener, how: :race})
      assert_receive {:heartbeating, pid}, 5_000
      assert_receive {:activity_cancelled, :activity_cancelled, ^pid}, 15_000
      assert {:ok, {:error, :timeout}} = Aion.await(aion, id, 5_000)
    end
  end
end
