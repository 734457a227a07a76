defmodule Aion.RecoveryTest do
  use Aion.Case, async: true

  import ExUnit.CaptureLog

  require Logger

  alias Aion.Test.{Gated, Sleeper}

  @moduletag :tmp_dir

  test "a broken history is logged and skipped; the other workflows recover", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    listener = listen()
    aion = start_instance(store: {:sqlite, db}, workflows: [Gated])

    for id <- ~w(a b c) do
      {:ok, ^id} = Aion.start_workflow(aion, Gated, listener, id: id)
      assert_receive {:gate, _activity, ^id}, 5_000
    end

    stop_instance(aion)
    damage = "UPDATE events SET body = X'FF00' WHERE workflow_id = 'b' AND seq = 2"
    {_, 0} = System.cmd("sqlite3", [db, damage])

    {aion, log} =
      with_log(fn ->
        aion = start_instance(store: {:sqlite, db}, workflows: [Gated])

        for id <- ~w(a c) do
          assert_receive {:gate, activity, ^id}, 5_000
          send(activity, :open)
          assert Aion.await(aion, id) == {:ok, :done}
        end

        await_recovery(aion)
        await_workflow_exit(aion, "b")
        aion
      end)

    assert log =~ "cannot resume workflow b, skipping it"
    assert {:error, %Aion.Error{reason: :store_corrupt, message: message}} = Aion.describe(aion, "b")
    assert message =~ "b seq 2"
    refute_received {:gate, _, "b"}
  end

  test "a damaged visibility row fails nobody: every workflow, its own included, goes on", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    listener = listen()
    aion = start_instance(store: {:sqlite, db}, workflows: [Gated])

    gates =
      for id <- ~w(a b c) do
        {:ok, ^id} = Aion.start_workflow(aion, Gated, listener, id: id)
        assert_receive {:gate, activity, ^id}, 5_000
        {id, activity}
      end

    {_, 0} = System.cmd("sqlite3", [db, "UPDATE workflows SET status = 'bogus', head_seq = 'x' WHERE workflow_id = 'b'"])

    for {id, activity} <- gates do
      send(activity, :open)
      assert Aion.await(aion, id) == {:ok, :done}
    end

    assert {:ok, %{status: :completed}} = Aion.describe(aion, "b")
  end

  test "a workflow of a type the instance does not run waits for one that does", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    aion = start_instance(store: {:sqlite, db}, workflows: [Sleeper])
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 50)
    stop_instance(aion)

    log =
      capture_log(fn ->
        other = start_instance(store: {:sqlite, db}, workflows: [Gated])
        # The run sleeps until its timer fires, then needs a process, which
        # this instance cannot give: the reconciler notes it (and logs once).
        reconciler = GenServer.whereis(Aion.Instance.via(other, :reconciler))
        eventually(fn -> MapSet.member?(:sys.get_state(reconciler).unknown, id) end)
        Logger.flush()
        stop_instance(other)
      end)

    assert log =~ ~s(has type "Aion.Test.Sleeper", which instance)

    aion = start_instance(store: {:sqlite, db}, workflows: [Sleeper])
    assert {:ok, :woke} = Aion.await(aion, id)
  end

  test "a workflow sleeping through a restart wakes on time", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    aion = start_instance(store: {:sqlite, db}, workflows: [Sleeper])
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 300)
    {:ok, %{pending: pending}} = Aion.describe(aion, id)
    stop_instance(aion)

    aion = start_instance(store: {:sqlite, db}, workflows: [Sleeper])
    assert {:ok, :woke} = Aion.await(aion, id)
    {:ok, events} = Aion.history(aion, id)
    assert Enum.map(events, & &1.type) == [:workflow_started, :timer_started, :timer_fired, :workflow_completed]
    [started, fired] = Enum.filter(events, &(&1.type in [:timer_started, :timer_fired]))
    assert DateTime.compare(fired.recorded_at, started.fire_at) != :lt
    assert pending in [[], [%{kind: :timer, command: 0, fire_at: started.fire_at, timer_id: started.timer_id, name: ""}]]
  end
end
