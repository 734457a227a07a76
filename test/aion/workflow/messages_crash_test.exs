defmodule Aion.Workflow.MessagesCrashTest do
  # Signals, updates, cancellation, races and await_signal timeouts across
  # SIGKILL of the VM, through the real NIF and SQLite: a child BEAM
  # (test/support/messages_child.exs) runs the workflows on a store and is
  # killed mid-way; this VM then opens the same store, recovers them, and
  # checks what they do from there.
  use Aion.Case, async: true

  alias Aion.Test.{ChildVM, KillCancellable, KillCollector, KillDeadline, KillLedger, KillRacer, KillSignalTimeout, KillTimerRace}

  @moduletag :tmp_dir
  @moduletag timeout: 120_000

  @script Path.expand("../../support/messages_child.exs", __DIR__)
  @killed 128 + 9

  # Starts the child in `mode` on a fresh store; returns {vm, db, file}.
  defp child(dir, mode) do
    db = Path.join(dir, "aion.db")
    file = Path.join(dir, "activities.log")
    {ChildVM.start(@script, [db, file, mode]), db, file}
  end

  defp recover(db) do
    start_instance(store: {:sqlite, db}, workflows: [KillCollector, KillLedger, KillCancellable, KillRacer, KillDeadline, KillSignalTimeout, KillTimerRace])
  end

  # What the activities wrote, in order.
  defp written(file), do: file |> File.read!() |> String.split("\n", trim: true)

  defp events(aion, id) do
    {:ok, events} = Aion.history(aion, id)
    events
  end

  defp count(events, type), do: Enum.count(events, &(&1.type == type))

  defp integers(line), do: line |> String.split() |> Enum.map(&String.to_integer/1)

  # Waits until the wall clock is past `unix_ms`, a timer's recorded fire time.
  defp pass(unix_ms), do: Process.sleep(max(unix_ms - System.os_time(:millisecond) + 1, 0))

  test "1,000 signals from 10 senders, SIGKILL mid-stream: each acknowledged one is taken once, in recorded order",
       %{tmp_dir: dir} do
    {vm, db, _file} = child(dir, "signals")
    seen = ChildVM.await_lines(vm, "ACK", 300)
    {status, rest} = ChildVM.kill_collecting(vm)
    assert status == @killed

    acked = MapSet.new(for "ACK " <> ack <- seen ++ rest, do: ack |> integers() |> List.to_tuple())
    # The kill came while the senders were still sending.
    assert MapSet.size(acked) in 300..999

    # Whatever was not acknowledged is sent again, as a client would.
    aion = recover(db)

    1..10
    |> Enum.map(fn sender ->
      Task.async(fn ->
        for n <- 1..100, not MapSet.member?(acked, {sender, n}), do: :ok = Aion.signal(aion, "many", :item, {sender, n})
      end)
    end)
    |> Enum.each(&Task.await(&1, 60_000))

    :ok = Aion.signal(aion, "many", :item, :done)
    assert {:ok, items} = Aion.await(aion, "many", 60_000)

    # Every recorded signal was taken exactly once, in the order recorded.
    events = events(aion, "many")
    received = for %{type: :signal_received} = event <- events, do: event
    consumed = for %{type: :signal_consumed} = event <- events, do: event
    assert Enum.map(consumed, & &1.received_seq) == Enum.map(received, & &1.seq)
    assert items ++ [:done] == Enum.map(received, & &1.payload)

    # Acknowledged signals were taken once; the others at least once (a
    # send cut by the kill may have been recorded, then sent again).
    taken = Enum.frequencies(items)
    for ack <- acked, do: assert(taken[ack] == 1, "#{inspect(ack)} taken #{inspect(taken[ack])} times")
    for sender <- 1..10, n <- 1..100, do: assert(taken[{sender, n}] in [1, 2])
    assert map_size(taken) == 1_000

    # Each sender's signals were first taken in the order it sent them.
    firsts = Enum.uniq(items)
    for sender <- 1..10, do: assert(for({^sender, n} <- firsts, do: n) == Enum.to_list(1..100))
  end

  test "an update retried with its update_id after a SIGKILL gets the recorded reply; its activity completes once",
       %{tmp_dir: dir} do
    {vm, db, file} = child(dir, "updates")
    printed = ChildVM.read_until(vm, "READY")
    {status, rest} = ChildVM.kill_collecting(vm)
    assert status == @killed
    assert ["REPLIED u-1", "HELD u-2", "QUEUED u-3"] == Enum.filter(printed, &(&1 =~ ~r/^(REPLIED|HELD|QUEUED) /))
    # u-1's reply was recorded but no caller got a reply before the kill;
    # u-2's activity was killed mid-run; u-3 was accepted, not delivered.
    assert for("CALLER" <> _ = line <- printed ++ rest, do: line) == []
    assert written(file) == ["start 5", "done 5", "start 7"]

    aion = recover(db)
    u3 = Task.async(fn -> Aion.update(aion, "ledger", :add, 11, update_id: "u-3") end)
    assert Aion.update(aion, "ledger", :add, 5, update_id: "u-1") == {:ok, 5}
    assert Aion.update(aion, "ledger", :add, 7, update_id: "u-2") == {:ok, 12}
    assert Task.await(u3, 30_000) == {:ok, 23}
    assert Aion.await(aion, "ledger") == {:ok, 23}
    # Once the run has completed, a retry still gets the recorded reply.
    assert Aion.update(aion, "ledger", :add, 7, update_id: "u-2") == {:ok, 12}
    assert Aion.update(aion, "ledger", :add, 5, update_id: "u-1") == {:ok, 5}

    # u-1's activity completed before the kill and did not run again.
    # u-2's was killed mid-run, so it ran again (activities are
    # at-least-once): it started twice and completed once.
    assert written(file) == ["start 5", "done 5", "start 7", "start 7", "done 7", "start 11", "done 11"]

    events = events(aion, "ledger")

    for id <- ["u-1", "u-2", "u-3"], type <- [:update_accepted, :update_delivered, :update_completed] do
      assert Enum.count(events, &(&1.type == type and &1.update_id == id)) == 1, "#{type} #{id}"
    end

    assert count(events, :activity_scheduled) == 3
    assert count(events, :activity_completed) == 3
  end

  test "a cancellation acknowledged before a SIGKILL ends the run after restart, its cleanup run once",
       %{tmp_dir: dir} do
    {vm, db, file} = child(dir, "cancel")
    printed = ChildVM.read_until(vm, "CLEANING c-live")
    assert ChildVM.kill(vm) == @killed
    # The last seq of each suspended run when its request was acknowledged.
    acknowledged =
      for "CANCELLED " <> rest <- printed, into: %{} do
        [id, seq] = String.split(rest)
        {id, String.to_integer(seq)}
      end

    assert Map.keys(acknowledged) == ["c-handled", "c-rethrow", "c-timer"]

    aion = recover(db)
    assert Aion.await(aion, "c-handled", 10_000) == {:ok, {:cleaned_up, :stop}}
    assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, "c-rethrow", 10_000)
    assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, "c-timer", 10_000)
    assert Aion.await(aion, "c-live", 10_000) == {:ok, {:cleaned_up, :stop}}

    # The cleanup activities finish only in this VM (in the child they wait
    # at its gate, c-live's was running there at the kill): each ran to its
    # end once.
    assert Enum.sort(for "cleanup " <> tag <- written(file), do: tag) == ["handled", "live", "rethrow", "timer"]

    for {id, last, stopped} <- [
          {"c-handled", :workflow_completed, :activity_cancelled},
          {"c-rethrow", :workflow_cancelled, :activity_cancelled},
          {"c-timer", :workflow_cancelled, :timer_cancelled},
          {"c-live", :workflow_completed, :activity_cancelled}
        ] do
      events = events(aion, id)
      assert [%{seq: seq}] = for(%{type: :cancel_requested} = event <- events, do: event), id
      # A suspended run's request was its last event when acknowledged.
      if id != "c-live", do: assert(seq == acknowledged[id], id)
      assert count(events, stopped) == 1, id
      # The work and the cleanup were scheduled once each.
      assert count(events, :activity_scheduled) == if(id == "c-timer", do: 1, else: 2), id
      assert List.last(events).type == last, id
    end
  end

  test "a race across a SIGKILL reports the winner whose result history recorded first", %{tmp_dir: dir} do
    {vm, db, _file} = child(dir, "race")
    ["PENDING " <> pending] = ChildVM.await_lines(vm, "PENDING", 1)
    [seq_at_kill, fire_at] = integers(pending)
    assert ChildVM.kill(vm) == @killed

    # r-pending's timer is due when this VM recovers it: the timer fires and
    # the activity (dispatched again) completes at about the same time.
    pass(fire_at)
    aion = recover(db)

    winners =
      for id <- ["r-timer", "r-activity", "r-pending"], into: %{} do
        assert {:ok, %{winner: winner, result: result, both: [{:ok, :activity}, :ok]}} = Aion.await(aion, id, 10_000)
        outcomes = for %{type: type} = event <- events(aion, id), type in [:activity_completed, :timer_fired], do: event
        assert Enum.sort(Enum.map(outcomes, & &1.type)) == [:activity_completed, :timer_fired], id

        case hd(outcomes).type do
          :activity_completed -> assert {winner, result} == {:activity, {:ok, :activity}}, id
          :timer_fired -> assert {winner, result} == {:timer, :ok}, id
        end

        if id == "r-pending", do: assert(Enum.all?(outcomes, &(&1.seq > seq_at_kill)))
        {id, winner}
      end

    # Those decided before the kill keep their winner.
    assert %{"r-timer" => :timer, "r-activity" => :activity} = winners

    # The short timer won before the kill; the code goes on without
    # waiting for the long one.
    assert Aion.await(aion, "t-two", 10_000) == {:ok, :short}

    # The activity running at the kill under a deadline a minute away runs
    # again at once, and wins.
    assert Aion.await(aion, "d-long", 10_000) == {:ok, {:ok, {:ok, :activity}}}
    assert :timer_cancelled in event_types(aion, "d-long")
  end

  test "await_signal with a timeout across a SIGKILL: times out if the deadline passed meanwhile; a signal queued before the kill is taken after",
       %{tmp_dir: dir} do
    {vm, db, _file} = child(dir, "signal_timeout")
    ["WAITING " <> fire_at] = ChildVM.await_lines(vm, "WAITING", 1)
    assert ChildVM.kill(vm) == @killed

    pass(String.to_integer(fire_at))
    aion = recover(db)
    # st-early's deadline (60 s) has not passed: a :go sent now is in time.
    :ok = Aion.signal(aion, "st-early", :go, :in_time)

    assert Aion.await(aion, "st-late") == {:ok, {{:error, :timeout}, {:ok, {:kept, "st-late"}}}}
    assert Aion.await(aion, "st-early") == {:ok, {{:ok, :in_time}, {:ok, {:kept, "st-early"}}}}

    late = events(aion, "st-late")
    assert {count(late, :timer_fired), count(late, :timer_cancelled)} == {1, 0}
    early = events(aion, "st-early")
    assert {count(early, :timer_fired), count(early, :timer_cancelled)} == {0, 1}

    for events <- [late, early] do
      assert count(events, :signal_received) == count(events, :signal_consumed)
      assert [%{signal_name: "later"}] = for(%{type: :signal_consumed} = event <- events, event.signal_name == "later", do: event)
    end
  end
end
