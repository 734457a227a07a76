defmodule Aion.Client.ResetTest do
  # Aion.reset/3 through the real NIF and SQLite: runs that failed, were
  # cancelled, terminated, timed out, suspended by non-determinism or still
  # run are reset to a point and finish; what ran before the point does not
  # run again; lineage in history and describe; eviction of the new run;
  # SIGKILL of the VM after a reset; bad input.
  use Aion.Case, async: true

  alias Aion.Test.{ChildVM, Doubler, Gated, Parent, GatedChanged, ResetActivities, ResetFlow, ResetSender, ResetSleeper, ResetSlow, ResetWaiter, Sleeper}

  @moduletag :tmp_dir
  @moduletag timeout: 120_000

  @workflows [ResetFlow, ResetSender, ResetWaiter, ResetSlow, ResetSleeper, Sleeper, Parent, Doubler]

  defp setup_files(dir) do
    {Path.join(dir, "ran.log"), Path.join(dir, "flag")}
  end

  defp instance(dir, opts \\ []) do
    start_instance([store: {:sqlite, Path.join(dir, "aion.db")}, workflows: @workflows] ++ opts)
  end

  defp events(aion, id) do
    {:ok, events} = Aion.history(aion, id)
    events
  end

  defp run_id(aion, id) do
    {:ok, %{run_id: run_id}} = Aion.describe(aion, id)
    run_id
  end

  # Starts ResetFlow with its third step broken, and waits for it to fail.
  defp failed_flow(aion, log, flag, id) do
    File.write!(flag, "fail")
    {:ok, ^id} = Aion.start_workflow(aion, ResetFlow, %{log: log, flag: flag}, id: id)
    assert {:error, :broken} = Aion.await(aion, id)
  end

  # Waits until the run has recorded an event of `type` (`count` of them).
  defp wait_for(aion, id, type, count \\ 1) do
    eventually(fn -> Enum.count(events(aion, id), &(&1.type == type)) >= count end)
  end

  test "a failed run, fixed, is reset to its last completed activity and completes; what completed before does not run again",
       %{tmp_dir: dir} do
    aion = instance(dir)
    {log, flag} = setup_files(dir)
    failed_flow(aion, log, flag, "flow")
    old_run = run_id(aion, "flow")
    before = events(aion, "flow")
    point = before |> Enum.filter(&(&1.type == :activity_completed)) |> List.last()

    File.rm!(flag)
    assert {:ok, new_run} = Aion.reset(aion, "flow", to: :last_completed_activity)
    assert new_run != old_run
    assert {:ok, ["a", "b", "c"]} = Aion.await(aion, "flow")
    assert ResetActivities.ran(log) == ["a", "b", "c", "c"]

    # Lineage: the old run is untouched; the new one names it and the point.
    history = events(aion, "flow")
    assert Enum.take(history, length(before)) == before
    [started | copied] = Enum.drop(history, length(before))
    assert %{type: :workflow_started, run_id: ^new_run, reset_from_run_id: ^old_run, reset_from_seq: seq} = started
    assert seq == point.seq
    assert Enum.map(copied, & &1.type) ==
             [:activity_scheduled, :activity_completed, :activity_scheduled, :activity_completed] ++
               [:activity_scheduled, :activity_completed, :workflow_completed]

    assert {:ok, %{status: :completed, run_id: ^new_run, reset_from: %{run_id: ^old_run, seq: ^seq}}} = Aion.describe(aion, "flow")
    assert {:ok, %{status: :failed, reset_from: nil}} = Aion.describe(aion, "flow", run_id: old_run)
    assert {:ok, runs} = Aion.runs(aion, "flow")
    assert [%{run_id: ^old_run, status: :failed, reset_from: nil}, %{run_id: ^new_run, reset_from: %{run_id: ^old_run, seq: ^seq}}] = runs
  end

  test "to: :start runs everything again; to: seq keeps what came before the seq", %{tmp_dir: dir} do
    aion = instance(dir)
    {log, flag} = setup_files(dir)
    failed_flow(aion, log, flag, "again")

    # To the first activity's completion: "b" and "c" run again, "a" does not.
    first_done = events(aion, "again") |> Enum.find(&(&1.type == :activity_completed))
    assert {:ok, _} = Aion.reset(aion, "again", to: first_done.seq)
    assert {:error, :broken} = Aion.await(aion, "again")
    assert ResetActivities.ran(log) == ["a", "b", "c", "b", "c"]

    File.rm!(flag)
    assert {:ok, run} = Aion.reset(aion, "again", to: :start)
    assert {:ok, ["a", "b", "c"]} = Aion.await(aion, "again")
    assert ResetActivities.ran(log) == ["a", "b", "c", "b", "c", "a", "b", "c"]
    assert [:workflow_started, :activity_scheduled | _] = events(aion, "again") |> Enum.drop_while(&(&1[:run_id] != run)) |> Enum.map(& &1.type)
  end

  test "run_id: resets an older run, such as the one a reset started from", %{tmp_dir: dir} do
    aion = instance(dir)
    {log, flag} = setup_files(dir)
    failed_flow(aion, log, flag, "older")
    first = run_id(aion, "older")
    # A reset to the start that fails again.
    {:ok, second} = Aion.reset(aion, "older", to: :start)
    assert {:error, :broken} = Aion.await(aion, "older")

    File.rm!(flag)
    assert {:ok, third} = Aion.reset(aion, "older", run_id: first, to: :last_completed_activity)
    assert {:ok, ["a", "b", "c"]} = Aion.await(aion, "older")
    assert {:ok, %{run_id: ^third, reset_from: %{run_id: ^first}}} = Aion.describe(aion, "older")
    assert {:ok, runs} = Aion.runs(aion, "older")
    assert [%{run_id: ^first, reset_from: nil}, %{run_id: ^second, reset_from: %{run_id: ^first}}, %{run_id: ^third, reset_from: %{run_id: ^first}}] = runs
    # "a" and "b" ran twice (the first run, the reset to the start), not in the third run; "c" in each.
    assert Enum.frequencies(ResetActivities.ran(log)) == %{"a" => 2, "b" => 2, "c" => 3}

    assert {:error, %Aion.Error{reason: :not_found}} =
             Aion.reset(aion, "older", run_id: "00000000-0000-4000-8000-000000000000", to: :start)
  end

  test "cancelled and terminated runs are reset and finish", %{tmp_dir: dir} do
    aion = instance(dir)
    {log, _flag} = setup_files(dir)

    for {id, stop} <- [{"cancelled", &Aion.cancel(&1, &2, :stop)}, {"terminated", &Aion.terminate(&1, &2, :stop)}] do
      {:ok, ^id} = Aion.start_workflow(aion, ResetWaiter, %{log: log}, id: id)
      wait_for(aion, id, :activity_completed)
      :ok = stop.(aion, id)
      assert {:error, %Aion.Error{reason: reason}} = Aion.await(aion, id)
      assert reason in [:cancelled, :terminated]

      assert {:ok, _} = Aion.reset(aion, id, to: :last_completed_activity)
      :ok = Aion.signal(aion, id, :go, 1)
      :ok = Aion.signal(aion, id, :go, 2)
      assert {:ok, ["a", 1, 2]} = Aion.await(aion, id)
    end

    # Each workflow's step ran once.
    assert ResetActivities.ran(log) == ["a", "a"]
  end

  test "a timed-out run is reset, and its run timeout counts from the reset", %{tmp_dir: dir} do
    aion = instance(dir)
    {log, flag} = setup_files(dir)
    File.write!(flag, "hold")
    {:ok, id} = Aion.start_workflow(aion, ResetSlow, %{log: log, flag: flag}, id: "slow", run_timeout: 3_000)
    assert {:error, %Aion.Error{reason: :timed_out}} = Aion.await(aion, id, 30_000)

    File.rm!(flag)
    assert {:ok, _} = Aion.reset(aion, id, to: :last_completed_activity)
    assert {:ok, ["a", "b"]} = Aion.await(aion, id, 30_000)
    assert ResetActivities.ran(log) == ["a", "b", "b"]
  end

  test "a run suspended by non-determinism is reset without terminate_running, and runs the new code", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    listener = listen()
    first = start_instance(store: {:sqlite, db}, workflows: [Gated])
    {:ok, id} = Aion.start_workflow(first, Gated, listener, id: "nd")
    assert_receive {:gate, _activity, "nd"}, 5_000
    stop_instance(first)

    aion = start_instance(store: {:sqlite, db}, workflows: [GatedChanged])
    eventually(fn -> match?({:ok, %{blocked: %{reason: :nondeterminism}}}, Aion.describe(aion, id)) end)
    old_run = run_id(aion, id)

    assert {:ok, new_run} = Aion.reset(aion, id, to: :start)
    assert {:ok, :done} = Aion.await(aion, id)
    assert {:ok, %{status: :completed, blocked: nil, run_id: ^new_run, reset_from: %{run_id: ^old_run}}} = Aion.describe(aion, id)
    # The old run ended terminated, by the reset.
    assert %{type: :workflow_terminated, reason: :reset} = events(aion, id) |> Enum.find(&(&1.type == :workflow_terminated))
  end

  test "a running run: refused without terminate_running; with it, terminated, and a signal received after the point carries over; awaiters get the new run's ending",
       %{tmp_dir: dir} do
    aion = instance(dir)
    {log, _flag} = setup_files(dir)
    {:ok, id} = Aion.start_workflow(aion, ResetWaiter, %{log: log}, id: "live")
    wait_for(aion, id, :activity_completed)
    old_run = run_id(aion, id)
    old_pid = Aion.Ownership.run_owner(aion, id)
    # Taken by the old run, after the point.
    :ok = Aion.signal(aion, id, :go, 1)
    wait_for(aion, id, :signal_consumed)
    awaiter = Task.async(fn -> Aion.await(aion, id, 60_000) end)

    history = events(aion, id)
    assert {:error, %Aion.Error{reason: :reset_refused, message: message}} = Aion.reset(aion, id, to: :last_completed_activity)
    assert message =~ "terminate_running: true"
    assert events(aion, id) == history

    ref = Process.monitor(old_pid)
    assert {:ok, new_run} = Aion.reset(aion, id, to: :last_completed_activity, terminate_running: true)
    assert_receive {:DOWN, ^ref, :process, ^old_pid, {:shutdown, :aion_ended}}, 5_000
    :ok = Aion.signal(aion, id, :go, 2)
    assert {:ok, ["a", 1, 2]} = Task.await(awaiter, 60_000)
    assert {:ok, ["a", 1, 2]} = Aion.await(aion, id)
    assert ResetActivities.ran(log) == ["a"]

    history = events(aion, id)
    assert %{type: :workflow_terminated, reason: :reset} = Enum.at(history, length(Enum.take_while(history, &(&1.type != :workflow_terminated))))
    new_segment = Enum.drop_while(history, &(&1[:run_id] != new_run))
    assert %{reset_from_run_id: ^old_run} = hd(new_segment)
    # The signal is one of the new run's events, taken by it.
    [received, _second] = for %{type: :signal_received} = event <- new_segment, do: event
    assert received.payload == 1
    assert Enum.any?(new_segment, &match?(%{type: :signal_consumed, received_seq: seq} when seq == received.seq, &1))
  end

  test "a running parent reset after it started a child keeps the child (also across a restart); a child started after the point is closed by its policy",
       %{tmp_dir: dir} do
    aion = instance(dir)
    children = [{%{n: 3, wait: true}, [id: "kept-kid"]}, {%{n: 4, wait: true}, [id: "late-kid"]}]
    {:ok, id} = Aion.start_workflow(aion, Parent, %{children: children}, id: "parent")
    wait_for(aion, id, :child_workflow_started, 2)
    eventually(fn -> match?({:ok, [%{status: :running}]}, Aion.runs(aion, "late-kid")) end)
    started = events(aion, id) |> Enum.find(&(&1.type == :child_workflow_started))

    assert {:ok, new_run} = Aion.reset(aion, id, to: started.seq, terminate_running: true)
    # The parent close policy (terminate) applied to the child started after
    # the point only; the new run starts that one again.
    assert {:ok, %{status: :running}} = Aion.describe(aion, "kept-kid")
    eventually(fn -> match?({:ok, [%{status: :terminated}, %{status: :running}]}, Aion.runs(aion, "late-kid")) end)

    # A restart loads the kept child again: its parent's run that started it
    # has ended, but the reset run keeps it.
    stop_instance(aion)
    aion = instance(dir)
    await_recovery(aion)
    assert {:ok, [%{status: :running}]} = Aion.runs(aion, "kept-kid")
    :ok = Aion.signal(aion, "kept-kid", :go, 1)
    :ok = Aion.signal(aion, "late-kid", :go, 1)
    assert {:ok, [{:ok, 7}, {:ok, 9}]} = Aion.await(aion, id, 10_000)
    new_segment = events(aion, id) |> Enum.drop_while(&(&1[:run_id] != new_run)) |> Enum.map(& &1.type)
    assert Enum.take(new_segment, 3) == [:workflow_started, :child_workflow_started, :child_workflow_started]
    assert Enum.sort(Enum.drop(new_segment, 3)) == Enum.sort([:child_workflow_completed, :child_workflow_completed, :workflow_completed])
    assert {:ok, [%{status: :completed}]} = Aion.runs(aion, "kept-kid")
  end

  test "a running child that is reset keeps its parent, which gets the new run's result", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, Parent, %{children: [{%{n: 3, wait: true}, [id: "reset-kid"]}]}, id: "waiting-parent")
    eventually(fn -> match?({:ok, %{status: :running}}, Aion.describe(aion, "reset-kid")) end)

    assert {:ok, _} = Aion.reset(aion, "reset-kid", to: :start, terminate_running: true)
    # The parent was not told its child ended: it waits for the new run.
    refute Enum.any?(events(aion, id), &(&1.type == :child_workflow_failed))
    :ok = Aion.signal(aion, "reset-kid", :go, 2)
    assert {:ok, [{:ok, 8}]} = Aion.await(aion, id, 10_000)
  end

  test "a signal sent by the old run, copied into the new one, is not delivered again", %{tmp_dir: dir} do
    aion = instance(dir)
    {log, flag} = setup_files(dir)
    {:ok, target} = Aion.start_workflow(aion, ResetWaiter, %{log: log}, id: "target")
    wait_for(aion, target, :activity_completed)
    File.write!(flag, "fail")
    {:ok, sender} = Aion.start_workflow(aion, ResetSender, %{log: log, flag: flag, target: target}, id: "sender")
    assert {:error, :broken} = Aion.await(aion, sender)
    wait_for(aion, target, :signal_received)

    # To the send: it is the new run's last recorded command when it replays.
    sent = events(aion, sender) |> Enum.find(&(&1.type == :signal_sent))
    File.rm!(flag)
    assert {:ok, _} = Aion.reset(aion, sender, to: sent.seq)
    assert {:ok, "c"} = Aion.await(aion, sender)
    :ok = Aion.signal(aion, target, :go, :from_test)
    assert {:ok, ["a", :from_sender, :from_test]} = Aion.await(aion, target)
    assert Enum.count(events(aion, target), &(&1.type == :signal_received)) == 2
  end

  test "a child whose parent has finished is reset and runs on alone", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, Parent, %{children: [{%{n: 3, wait: true}, [id: "lone-kid"]}]}, id: "done-parent")
    eventually(fn -> match?({:ok, %{status: :running}}, Aion.describe(aion, "lone-kid")) end)
    :ok = Aion.terminate(aion, "lone-kid", :stop)
    assert {:ok, [{:error, %Aion.Error{reason: :terminated}}]} = Aion.await(aion, id)

    assert {:ok, new_run} = Aion.reset(aion, "lone-kid", to: :start)
    [_, started] = for %{type: :workflow_started} = event <- events(aion, "lone-kid"), do: event
    assert %{run_id: ^new_run} = started
    refute Map.has_key?(started, :parent_workflow_id)
    # Not closed by its finished parent's policy: it waits, and completes.
    assert {:ok, %{status: :running}} = Aion.describe(aion, "lone-kid")
    :ok = Aion.signal(aion, "lone-kid", :go, 2)
    assert {:ok, 8} = Aion.await(aion, "lone-kid")
    assert {:ok, [{:error, %Aion.Error{reason: :terminated}}]} = Aion.await(aion, id)
  end

  test "the new run sleeps, is evicted and woken by its timer", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: 50)
    {log, flag} = setup_files(dir)
    File.write!(flag, "fail")
    {:ok, id} = Aion.start_workflow(aion, ResetSleeper, %{log: log, flag: flag, sleep: 1_000}, id: "sleeper")
    assert {:error, :broken} = Aion.await(aion, id)

    # From the first step: the new run sleeps again (a timer of its own).
    File.rm!(flag)
    assert {:ok, new_run} = Aion.reset(aion, id, to: :last_completed_activity)
    eventually(fn -> match?({:ok, %{status: :running, resident: false, pending: [%{kind: :timer}]}}, Aion.describe(aion, id)) end)
    assert {:ok, ["a", "c"]} = Aion.await(aion, id, 30_000)
    assert ResetActivities.ran(log) == ["a", "c", "c"]
    new_segment = events(aion, id) |> Enum.drop_while(&(&1[:run_id] != new_run)) |> Enum.map(& &1.type)
    assert new_segment == [:workflow_started, :activity_scheduled, :activity_completed, :timer_started, :timer_fired] ++
                           [:activity_scheduled, :activity_completed, :workflow_completed]
  end

  test "after a reset, the VM is SIGKILLed before the new run finishes; after restart it finishes once", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    {log, flag} = setup_files(dir)
    script = Path.expand("../../support/reset_child.exs", __DIR__)

    # The child fails the flow, resets it with the third step holding, and
    # prints RESET once the new run's third step is running.
    vm = ChildVM.start(script, [db, log, flag, "held"])
    [reset_line] = ChildVM.await_lines(vm, "RESET", 1)
    ChildVM.await_lines(vm, "HELD", 1)
    assert ChildVM.kill(vm) == 128 + 9
    "RESET " <> new_run = reset_line

    File.rm!(flag)
    aion = start_instance(store: {:sqlite, db}, workflows: @workflows)
    assert {:ok, ["a", "b", "c"]} = Aion.await(aion, "crashed", 30_000)
    # "a" and "b" ran once; "c" failed, was held when the VM died, then ran.
    assert ResetActivities.ran(log) == ["a", "b", "c", "c", "c"]
    assert {:ok, %{run_id: ^new_run, status: :completed, reset_from: %{seq: _}}} = Aion.describe(aion, "crashed")
  end

  test "AION_FAULT=reset: killed once a running run's reset is durable, before anyone heard of it; after restart the new run finishes once",
       %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    {log, flag} = setup_files(dir)
    script = Path.expand("../../support/reset_child.exs", __DIR__)

    vm = ChildVM.start(script, [db, log, flag, "running"], [{"AION_FAULT", "reset"}])
    assert {status, lines} = ChildVM.await_exit(vm)
    assert status == 128 + 9
    assert "READY" in lines
    refute Enum.any?(lines, &String.starts_with?(&1, "NOT KILLED"))

    aion = instance(dir)
    # The reset is durable: the old run ended, the new run (with the signal
    # the old one took after the point) is resumed by recovery.
    types = event_types(aion, "waiter")
    assert :workflow_terminated in types
    assert Enum.count(types, &(&1 == :workflow_started)) == 2
    :ok = Aion.signal(aion, "waiter", :go, 2)
    assert {:ok, ["a", 1, 2]} = Aion.await(aion, "waiter", 30_000)
    assert ResetActivities.ran(log) == ["a"]
    assert {:ok, [%{status: :terminated}, %{status: :completed, reset_from: %{seq: _}}]} = Aion.runs(aion, "waiter")
  end

  test "bad input is refused and records nothing", %{tmp_dir: dir} do
    aion = instance(dir)
    {log, flag} = setup_files(dir)

    assert {:error, %Aion.Error{reason: :not_found}} = Aion.reset(aion, "nobody", to: :start)
    assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.reset(aion, :nope, to: :start)

    failed_flow(aion, log, flag, "bad")
    history = events(aion, "bad")
    last = List.last(history).seq

    for opts <- [[], [to: :middle], [to: 0], [to: -1], [to: "3"], [to: :start, terminate_running: :yes], [to: :start, run: 1], [to: :start, run_id: "nope"], [to: :start, run_id: 7], :start] do
      assert {:error, %Aion.Error{reason: :invalid_option, message: "Aion.reset: " <> _}} = Aion.reset(aion, "bad", opts)
    end

    # Beyond the run's last event before its ending, or its ending itself.
    for seq <- [last, last + 1, 10_000] do
      assert {:error, %Aion.Error{reason: :invalid_option, message: message}} = Aion.reset(aion, "bad", to: seq)
      assert message =~ "seq #{seq}"
    end

    assert events(aion, "bad") == history

    # A completed run is not reset.
    File.rm!(flag)
    {:ok, _} = Aion.reset(aion, "bad", to: :start)
    assert {:ok, _} = Aion.await(aion, "bad")
    assert {:error, %Aion.Error{reason: :reset_refused, message: message}} = Aion.reset(aion, "bad", to: :start)
    assert message =~ "completed"

    # A run without a completed activity has no such point.
    {:ok, sleeper} = Aion.start_workflow(aion, Sleeper, 60_000)
    :ok = Aion.terminate(aion, sleeper)
    history = events(aion, sleeper)
    assert {:error, %Aion.Error{reason: :invalid_option, message: message}} = Aion.reset(aion, sleeper, to: :last_completed_activity)
    assert message =~ "no completed activity"
    assert events(aion, sleeper) == history
  end
end
