defmodule Aion.Client.QueryTest do
  # Queries through the real NIF and SQLite: answered live by a resident
  # run's process, or by a read-only replay for runs without one (evicted,
  # finished, after SIGKILL of the VM); never recording anything.
  use Aion.Case, async: true

  alias Aion.Ownership
  alias Aion.Test.{BadQueries, Busy, ChildVM, Gated, GatedChanged, GatedShortened, Queried, QueriedMessages, QueriedPatched, QueriedSteps}

  @moduletag :tmp_dir
  @moduletag timeout: 120_000

  defp instance(dir, opts \\ []) do
    start_instance(
      Keyword.merge([store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Queried, QueriedSteps, QueriedMessages, Busy, BadQueries]], opts)
    )
  end

  # Starts Queried and waits until it is at its gate activity; returns {id, activity pid}.
  defp at_gate(aion, sleep_ms) do
    listener = listen()
    {:ok, id} = Aion.start_workflow(aion, Queried, %{listener: listener, sleep: sleep_ms})
    assert_receive {:gate, gate, :first}, 5_000
    {id, gate}
  end

  defp sleeping?(aion, id), do: List.last(event_types(aion, id)) == :timer_started

  test "a resident workflow answers from where it waits: at an activity, then at a sleep", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: :never)
    {id, gate} = at_gate(aion, 3_600_000)
    pid = Ownership.run_owner(aion, id)
    history = Aion.history(aion, id)

    assert Aion.query(aion, id, :state) == {:ok, :started}
    # Atoms and strings name the same query; args and values need not be serializable.
    assert Aion.query(aion, id, "state") == {:ok, :started}
    me = self()
    assert Aion.query(aion, id, :echo, {me, &Enum.map/2}) == {:ok, {:echo, {me, &Enum.map/2}}}
    assert Aion.history(aion, id) == history

    send(gate, :open)
    eventually(fn -> sleeping?(aion, id) end)
    history = Aion.history(aion, id)

    assert Aion.query(aion, id, :state) == {:ok, {:gated, :first}}
    assert Aion.history(aion, id) == history
    assert Ownership.run_owner(aion, id) == pid
    assert {:ok, %{status: :running, resident: true}} = Aion.describe(aion, id)
  end

  test "an evicted workflow is answered by a read-only replay and stays evicted", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: 50)
    {id, gate} = at_gate(aion, 3_600_000)
    pid = Ownership.run_owner(aion, id)
    monitor = Process.monitor(pid)
    send(gate, :open)
    assert_receive {:DOWN, ^monitor, :process, ^pid, {:shutdown, :aion_evicted}}, 5_000
    {:ok, history} = Aion.history(aion, id)

    assert Aion.query(aion, id, :state) == {:ok, {:gated, :first}}
    assert Aion.query(aion, id, :echo, self()) == {:ok, {:echo, self()}}

    assert Ownership.run_owner(aion, id) == nil
    assert {:ok, %{status: :running, resident: false, pending: [%{kind: :timer}]}} = Aion.describe(aion, id)
    assert Aion.history(aion, id) == {:ok, history}
    # The replay ran the code past the (recorded) gate without dispatching it.
    refute_received {:gate, _, _}
  end

  test "a read-only replay stops at a pending activity without dispatching it, and leaves the resident run alone",
       %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: :never)
    {id, gate} = at_gate(aion, 10)
    pid = Ownership.run_owner(aion, id)
    {:ok, history} = Aion.history(aion, id)
    {:ok, instance} = Aion.Instance.lookup(aion)

    # The path a query takes when the run has no process, taken here while it has one.
    reply_to = :erlang.alias()
    {replay, monitor} = Aion.Workflow.Query.Replay.start(instance, id, nil, reply_to, "state", nil)
    assert_receive {^reply_to, {:ok, :started}}, 5_000
    assert_receive {:DOWN, ^monitor, :process, ^replay, :normal}
    refute_received {:gate, _, _}
    assert Aion.history(aion, id) == {:ok, history}

    # The resident run was not superseded: it goes on and completes.
    assert Ownership.run_owner(aion, id) == pid
    send(gate, :open)
    assert Aion.await(aion, id) == {:ok, :done}
  end

  test "signals, futures and with_timeout replay read-only", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: 50)
    {:ok, id} = Aion.start_workflow(aion, QueriedMessages, nil)
    :ok = Aion.signal(aion, id, :item, :a)
    :ok = Aion.signal(aion, id, :item, :b)
    eventually(fn -> Enum.count(event_types(aion, id), &(&1 == :signal_consumed)) == 2 end)
    eventually(fn -> Ownership.run_owner(aion, id) == nil end)

    # Evicted, waiting for a third signal: replay takes the two recorded ones.
    {:ok, history} = Aion.history(aion, id)
    assert Aion.query(aion, id, :seen) == {:ok, [:a, :b]}
    assert Aion.history(aion, id) == {:ok, history}

    # A third signal wakes it; whether resident or evicted again, it answers with all three.
    :ok = Aion.signal(aion, id, :item, :c)
    eventually(fn -> Aion.query(aion, id, :seen) == {:ok, [:a, :b, :c]} end)
  end

  test "a replay answers with the values and patch decisions the run recorded", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    first = start_instance(store: {:sqlite, db}, workflows: [QueriedPatched], evict_idle_after: :never)
    {:ok, id} = Aion.start_workflow(first, QueriedPatched, nil)
    eventually(fn -> sleeping?(first, id) end)
    assert {:ok, {token, n, :with_fee} = live} = Aion.query(first, id, :state)
    stop_instance(first)

    # After a restart the sleeper has no process: the replay meets the
    # recorded uuid, patch marker and random value, and stops at the sleep.
    aion = start_instance(store: {:sqlite, db}, workflows: [QueriedPatched])
    await_recovery(aion)
    assert Ownership.run_owner(aion, id) == nil
    {:ok, history} = Aion.history(aion, id)
    assert Aion.query(aion, id, :state) == {:ok, live}
    assert [^token, "fee", ^n] = for(%{type: :marker_recorded, value: value} <- history, do: value)
    assert Aion.history(aion, id) == {:ok, history}
  end

  test "a completed workflow is answered by replaying its code to its end", %{tmp_dir: dir} do
    aion = instance(dir)
    {id, gate} = at_gate(aion, 10)
    send(gate, :open)
    assert Aion.await(aion, id) == {:ok, :done}
    await_workflow_exit(aion, id)
    {:ok, history} = Aion.history(aion, id)

    assert Aion.query(aion, id, :state) == {:ok, :slept}
    assert Aion.query(aion, id, :echo, 42) == {:ok, {:echo, 42}}
    assert {:error, %Aion.Error{reason: :query_failed, message: message}} = Aion.query(aion, id, :command)
    assert message =~ "cannot issue commands"
    assert Ownership.run_owner(aion, id) == nil
    assert Aion.history(aion, id) == {:ok, history}
    assert {:ok, %{status: :completed}} = Aion.describe(aion, id)
  end

  test "after SIGKILL of the VM, a sleeper is answered by replay and a respawned run live", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    vm = ChildVM.start(Path.expand("../../support/query_child.exs", __DIR__), [db])
    ChildVM.await_lines(vm, "READY", 1)
    assert ChildVM.kill(vm) == 128 + 9

    aion = start_instance(store: {:sqlite, db}, workflows: [QueriedSteps])
    await_recovery(aion)
    {:ok, sleeper_history} = Aion.history(aion, "sleeper")

    # The sleeper stays evicted until its timer fires: replay answers.
    assert Ownership.run_owner(aion, "sleeper") == nil
    assert Aion.query(aion, "sleeper", :done) == {:ok, 3}
    assert Ownership.run_owner(aion, "sleeper") == nil
    assert Aion.history(aion, "sleeper") == {:ok, sleeper_history}

    # The worker waits on an activity: the reconciler gives it a process, which answers.
    eventually(fn -> Ownership.run_owner(aion, "worker") end)
    assert Aion.query(aion, "worker", "done") == {:ok, 3}
  end

  test "code that no longer replays its history fails the query with the non-determinism", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    listener = listen()
    first = start_instance(store: {:sqlite, db}, workflows: [Gated])
    {:ok, id} = Aion.start_workflow(first, Gated, listener, id: "nd-1")
    assert_receive {:gate, _activity, "nd-1"}, 5_000
    stop_instance(first)

    for {changed, code} <- [{GatedChanged, "AION-ND001"}, {GatedShortened, "AION-ND002"}] do
      aion = start_instance(store: {:sqlite, db}, workflows: [changed])
      # Suspended: no process; the query's replay meets the same divergence.
      eventually(fn -> match?({:ok, %{blocked: %{}}}, Aion.describe(aion, id)) end)
      {:ok, history} = Aion.history(aion, id)

      assert {:error, %Aion.Error{reason: :nondeterminism, code: ^code}} = Aion.query(aion, id, :state)
      assert Aion.history(aion, id) == {:ok, history}
      assert Ownership.run_owner(aion, id) == nil
      stop_instance(aion)
    end
  end

  test "a replay that outlasts the timeout is stopped", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: 0)
    {:ok, id} = Aion.start_workflow(aion, Busy, %{busy: 200, then_sleep: 3_600_000})
    eventually(fn -> sleeping?(aion, id) and Ownership.run_owner(aion, id) == nil end)
    replaying? = fn -> Enum.any?(Process.list(), &match?(%{workflow_id: ^id}, replay_context(&1))) end

    # The replay computes for 200 ms before it reaches the sleep.
    assert {:error, %Aion.Error{reason: :timeout}} = Aion.query(aion, id, :phase, nil, timeout: 20)
    refute replaying?.()
    assert {:ok, :resting} = Aion.query(aion, id, :phase, nil, timeout: 5_000)
  end

  # The workflow context of a process running a query's replay, else nil.
  defp replay_context(pid) do
    with {:dictionary, dictionary} <- Process.info(pid, :dictionary),
         %{query: _} = context <- Keyword.get(dictionary, :"$aion_run") do
      context
    else
      _ -> nil
    end
  end

  test "an unknown query name lists the registered ones", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: :never)
    {id, _gate} = at_gate(aion, 10)

    assert {:error, %Aion.Error{reason: :unknown_query, message: message, details: details}} =
             Aion.query(aion, id, :nope)

    assert message =~ ~s(no handler for query "nope")
    assert message =~ ~s("boom", "command", "echo", "state")
    assert details == %{query: "nope", known: ["boom", "command", "echo", "state"]}
  end

  test "unknown ids and bad arguments are refused", %{tmp_dir: dir} do
    aion = instance(dir)

    assert {:error, %Aion.Error{reason: :not_found}} = Aion.query(aion, "nobody", :state)
    assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.query(aion, :not_a_string, :state)
    assert {:error, %Aion.Error{reason: :invalid_query_name}} = Aion.query(aion, "nobody", 42)
    assert {:error, %Aion.Error{reason: :invalid_query_name}} = Aion.query(aion, "nobody", nil)
    assert {:error, %Aion.Error{reason: :invalid_option, message: message}} = Aion.query(aion, "x", :s, nil, timeout: -1)
    assert message =~ "Aion.query: expected :timeout"
    assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.query(aion, "x", :s, nil, tiemout: 5)
    assert {:error, %Aion.Error{reason: :not_running}} = Aion.query(make_ref(), "x", :s)
  end

  test "on_query/2 refuses bad names and handlers, and code outside a workflow", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, BadQueries, nil)

    assert {:ok, [name, arity, not_a_fun]} = Aion.await(aion, id)
    assert name =~ "on_query/2: expected the query name to be a string or an atom"
    assert arity =~ "on_query/2: expected the handler to be a function of one argument"
    assert not_a_fun =~ "got: :ok"
    assert_raise RuntimeError, ~r/only be called from workflow code/, fn -> Aion.Workflow.on_query(:x, & &1) end
  end

  test "a raising handler fails only the query", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: :never)
    {id, gate} = at_gate(aion, 10)
    pid = Ownership.run_owner(aion, id)

    assert {:error, %Aion.Error{reason: :query_failed, message: message}} = Aion.query(aion, id, :boom)
    assert message =~ ~s(query "boom" of workflow #{id} failed)
    assert message =~ "kaput"

    assert Ownership.run_owner(aion, id) == pid
    assert Aion.query(aion, id, :state) == {:ok, :started}
    send(gate, :open)
    assert Aion.await(aion, id) == {:ok, :done}
    # A finished workflow's replay fails the same way.
    assert {:error, %Aion.Error{reason: :query_failed}} = Aion.query(aion, id, :boom)
  end

  test "a handler that issues a command fails the query, and nothing is recorded", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: :never)
    {id, gate} = at_gate(aion, 10)
    pid = Ownership.run_owner(aion, id)
    {:ok, history} = Aion.history(aion, id)

    assert {:error, %Aion.Error{reason: :query_failed, message: message}} = Aion.query(aion, id, :command)
    assert message =~ "cannot issue commands"

    assert Aion.history(aion, id) == {:ok, history}
    assert Ownership.run_owner(aion, id) == pid
    send(gate, :open)
    assert Aion.await(aion, id) == {:ok, :done}
    assert event_types(aion, id) ==
             [:workflow_started, :activity_scheduled, :activity_completed, :timer_started, :timer_fired, :workflow_completed]
  end

  test "a workflow busy computing does not answer within the timeout; the late answer is dropped", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: :never)
    {:ok, id} = Aion.start_workflow(aion, Busy, %{busy: 1_000, then_sleep: 3_600_000})

    assert {:error, %Aion.Error{reason: :timeout, message: message}} = Aion.query(aion, id, :phase, nil, timeout: 100)
    assert message =~ "did not answer query \"phase\" within 100 ms"

    # Once it waits at its sleep it answers (and has answered the first query, to nobody).
    assert {:ok, :resting} = Aion.query(aion, id, :phase, nil, timeout: 5_000)
    refute_received _any
  end
end
