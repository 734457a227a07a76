defmodule Aion.Workflow.MessagesTest do
  # Signals, updates, cancellation, futures, races and with_timeout, through
  # the real NIF and SQLite files.
  use Aion.Case, async: true

  alias Aion.Ownership
  alias Aion.Test.{Activities, Cancellable, Collector, Counter, Deadline, Racer, SignalTimeout}

  @moduletag :tmp_dir
  @moduletag timeout: 120_000

  @workflows [Collector, SignalTimeout, Cancellable, Racer, Deadline, Counter]

  defp instance(dir, opts \\ []) do
    start_instance([store: {:sqlite, Path.join(dir, "aion.db")}, workflows: @workflows] ++ opts)
  end

  describe "signals" do
    test "are taken in the order recorded, including those sent before the workflow waits", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 3}, id: "c1")
      :ok = Aion.signal(aion, id, :item, 1)
      :ok = Aion.signal(aion, id, "item", %{two: 2})
      :ok = Aion.signal(aion, id, :item, {:three})
      assert {:ok, [1, %{two: 2}, {:three}]} = Aion.await(aion, id, 5_000)
      types = event_types(aion, id)
      assert Enum.count(types, &(&1 == :signal_received)) == 3
      assert Enum.count(types, &(&1 == :signal_consumed)) == 3
    end

    test "1,000 signals from 10 concurrent senders are each taken once, in recorded order", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1_000}, id: "many")

      1..10
      |> Enum.map(fn sender -> Task.async(fn -> for n <- 1..100, do: :ok = Aion.signal(aion, id, :item, {sender, n}) end) end)
      |> Enum.each(&Task.await(&1, 60_000))

      assert {:ok, items} = Aion.await(aion, id, 60_000)
      {:ok, events} = Aion.history(aion, id)
      recorded = for %{type: :signal_received, payload: payload} <- events, do: payload
      assert items == recorded
      assert length(Enum.uniq(items)) == 1_000
      # Each sender's signals keep the order it sent them in.
      for sender <- 1..10, do: assert(for({^sender, n} <- items, do: n) == Enum.to_list(1..100))
    end

    test "wake an evicted workflow", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 50)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "evicted")
      monitor = Process.monitor(Ownership.run_owner(aion, id))
      assert_receive {:DOWN, ^monitor, :process, _, {:shutdown, :aion_evicted}}, 5_000
      :ok = Aion.signal(aion, id, :item, :hello)
      assert {:ok, [:hello]} = Aion.await(aion, id, 5_000)
    end

    test "an evicted waiter stays evicted through the reconciler's sweeps until its signal comes", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 50)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "parked")
      monitor = Process.monitor(Ownership.run_owner(aion, id))
      assert_receive {:DOWN, ^monitor, :process, _, {:shutdown, :aion_evicted}}, 5_000

      reconciler = GenServer.whereis(Aion.Instance.via(aion, :reconciler))
      send(reconciler, {:sweep, nil})
      _ = :sys.get_state(reconciler)
      assert Ownership.run_owner(aion, id) == nil

      :ok = Aion.signal(aion, id, :item, :hello)
      assert {:ok, [:hello]} = Aion.await(aion, id, 5_000)
    end

    test "await_signal with a timeout: the timer wins when no signal comes; the signal stays for later", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, SignalTimeout, %{timeout: 100})
      eventually(fn -> :timer_fired in event_types(aion, id) end)
      :ok = Aion.signal(aion, id, :go, :late)
      assert {:ok, {{:error, :timeout}, {:ok, :late}}} = Aion.await(aion, id, 5_000)
    end

    test "await_signal with a timeout: a signal in time cancels the timer", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.signal_with_start(aion, SignalTimeout, %{timeout: 60_000}, :go, :first, id: "sws")
      :ok = Aion.signal(aion, id, :go, :second)
      assert {:ok, {{:ok, :first}, {:ok, :second}}} = Aion.await(aion, id, 5_000)
      assert :timer_cancelled in event_types(aion, id)
    end

    test "signal_with_start starts once and signals a running workflow", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, "sws2"} = Aion.signal_with_start(aion, Collector, %{n: 2}, :item, :a, id: "sws2")
      {:ok, "sws2"} = Aion.signal_with_start(aion, Collector, %{n: 2}, :item, :b, id: "sws2")
      assert {:ok, [:a, :b]} = Aion.await(aion, "sws2", 5_000)
      [:workflow_started, :signal_received | _] = event_types(aion, "sws2")
    end

    test "bad input gets clear errors", %{tmp_dir: dir} do
      aion = instance(dir)
      assert {:error, %Aion.Error{reason: :not_found}} = Aion.signal(aion, "nope", :item, 1)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1})
      assert {:error, %Aion.Error{reason: :unserializable}} = Aion.signal(aion, id, :item, self())
      assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.signal(aion, id, nil, 1)
      assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.signal(aion, 42, :item, 1)
      :ok = Aion.signal(aion, id, :item, 1)
      assert {:ok, [1]} = Aion.await(aion, id)
      assert {:error, %Aion.Error{reason: :not_running}} = Aion.signal(aion, id, :item, 2)
      assert_raise RuntimeError, ~r/only be called from workflow code/, fn -> Aion.Workflow.await_signal(:item) end
    end
  end

  describe "cancellation" do
    test "raises at the blocked command; cleanup runs; unhandled, the run ends cancelled", %{tmp_dir: dir} do
      listener = listen()
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Cancellable, %{listener: listener, rethrow: true})
      assert_receive {:gate, gate, :work}, 5_000
      gate_ref = Process.monitor(gate)
      :ok = Aion.cancel(aion, id, :changed_my_mind)
      assert_receive {:report, {:cleanup, :changed_my_mind}}, 5_000
      # The pending activity was stopped.
      assert_receive {:DOWN, ^gate_ref, :process, _, _}, 5_000
      assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, id, 5_000)
      types = event_types(aion, id)
      assert :cancel_requested in types and :activity_cancelled in types
      assert List.last(types) == :workflow_cancelled
      assert {:ok, %{status: :cancelled}} = Aion.describe(aion, id)
      assert {:error, %Aion.Error{reason: :not_running}} = Aion.cancel(aion, id)
    end

    test "a workflow that handles it completes", %{tmp_dir: dir} do
      listener = listen()
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Cancellable, %{listener: listener, rethrow: false})
      assert_receive {:gate, _gate, :work}, 5_000
      :ok = Aion.cancel(aion, id)
      assert {:ok, :cleaned_up} = Aion.await(aion, id, 5_000)
      assert {:error, %Aion.Error{reason: :not_found}} = Aion.cancel(aion, "missing")
    end

    test "reaches an evicted workflow", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 50)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1})
      monitor = Process.monitor(Ownership.run_owner(aion, id))
      assert_receive {:DOWN, ^monitor, :process, _, {:shutdown, :aion_evicted}}, 5_000
      :ok = Aion.cancel(aion, id, :bye)
      assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, id, 5_000)
    end
  end

  describe "futures and races" do
    test "await_any picks the first recorded; await_all gives every result in order", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Racer, %{activity_ms: 10, timer_ms: 1_000})
      assert {:ok, %{winner: :activity, result: {:ok, :activity}, both: [{:ok, :activity}, :ok]}} = Aion.await(aion, id, 5_000)

      {:ok, id} = Aion.start_workflow(aion, Racer, %{activity_ms: 800, timer_ms: 10})
      assert {:ok, %{winner: :timer, result: :ok, both: [{:ok, :activity}, :ok]}} = Aion.await(aion, id, 5_000)
    end

    test "a race replays to the same winner after the process is killed", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Racer, %{activity_ms: 300, timer_ms: 10})
      eventually(fn -> :timer_fired in event_types(aion, id) end)
      Process.exit(Ownership.run_owner(aion, id), :kill)
      assert {:ok, %{winner: :timer}} = Aion.await(aion, id, 5_000)
    end

    test "with_timeout: in time gives {:ok, value}; late cancels the work inside", %{tmp_dir: dir} do
      listener = listen()
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Deadline, %{within: 5_000, listener: listener})
      assert_receive {:gate, gate, :inside}, 5_000
      send(gate, :open)
      assert {:ok, {{:ok, {:ok, :inside}}, 2}} = Aion.await(aion, id, 5_000)

      {:ok, id} = Aion.start_workflow(aion, Deadline, %{within: 100, listener: listener})
      assert_receive {:gate, gate, :inside}, 5_000
      ref = Process.monitor(gate)
      assert {:ok, {{:error, :timeout}, 2}} = Aion.await(aion, id, 5_000)
      assert_receive {:DOWN, ^ref, :process, _, _}, 5_000
      assert :activity_cancelled in event_types(aion, id)
    end
  end

  describe "updates" do
    test "the caller gets the handler's reply; a retry with the same update_id does not run it again", %{tmp_dir: dir} do
      listener = listen()
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Counter, %{listener: listener, updates: 3})
      assert {:ok, 5} = Aion.update(aion, id, :add, 5, update_id: "u1")
      assert_receive {:report, {:add, 5}}
      assert {:ok, 5} = Aion.update(aion, id, :add, 5, update_id: "u1")
      refute_receive {:report, _}, 100
      assert {:error, {:not_a_number, :x}} = Aion.update(aion, id, :add, :x)
      assert {:ok, 12} = Aion.update(aion, id, "add", 7)
      assert {:ok, 12} = Aion.await(aion, id, 5_000)
    end

    test "wake an evicted workflow; it is evicted again between updates", %{tmp_dir: dir} do
      listener = listen()
      aion = instance(dir, evict_idle_after: 50)
      {:ok, id} = Aion.start_workflow(aion, Counter, %{listener: listener, updates: 2}, id: "evicted-counter")

      for {amount, total} <- [{3, 3}, {4, 7}] do
        eventually(fn -> match?({:ok, %{resident: false, status: :running}}, Aion.describe(aion, id)) end)
        assert {:ok, ^total} = Aion.update(aion, id, :add, amount)
        assert_receive {:report, {:add, ^amount}}
      end

      assert {:ok, 7} = Aion.await(aion, id, 5_000)
    end

    test "bad input and a workflow that does not answer", %{tmp_dir: dir} do
      listener = listen()
      aion = instance(dir)
      assert {:error, %Aion.Error{reason: :not_found}} = Aion.update(aion, "nope", :add, 1)
      {:ok, id} = Aion.start_workflow(aion, Counter, %{listener: listener, updates: 1})
      assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.update(aion, id, :add, 1, update_id: 7)
      assert {:error, %Aion.Error{reason: :unserializable}} = Aion.update(aion, id, :add, self())
      assert {:error, %Aion.Error{reason: :timeout}} = Aion.update(aion, id, :unknown_update, 1, timeout: 100)
    end
  end

  test "activities in parallel run at once", %{tmp_dir: dir} do
    _ = Activities
    aion = instance(dir)
    started = System.monotonic_time(:millisecond)
    {:ok, id} = Aion.start_workflow(aion, Racer, %{activity_ms: 300, timer_ms: 300})
    assert {:ok, %{both: [{:ok, :activity}, :ok]}} = Aion.await(aion, id, 5_000)
    assert System.monotonic_time(:millisecond) - started < 2_000
  end
end
