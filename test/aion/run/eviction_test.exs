defmodule Aion.Run.EvictionTest do
  # Runs waiting on a timer longer than :evict_idle_after lose their process
  # (and their memory) and are woken by the timer: through the real NIF and
  # SQLite, and across SIGKILL of the VM.
  use Aion.Case, async: true

  alias Aion.{Ownership, Workflow}
  alias Aion.Test.{ChildVM, Sleeper}

  @moduletag :tmp_dir
  @moduletag timeout: 120_000

  test "1,000 workflows sleeping 2 s with evict_idle_after: 200 are evicted, then woken by their timers",
       %{tmp_dir: dir} do
    aion = start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Sleeper], evict_idle_after: 200)

    started =
      for n <- 1..1_000 do
        {:ok, id} = Aion.start_workflow(aion, Sleeper, 2_000, id: "sleeper-#{n}")
        pid = Ownership.run_owner(aion, id)
        {id, Process.monitor(pid)}
      end

    # Every run's process ends by eviction, not by completing.
    for {_id, monitor} <- started do
      assert_receive {:DOWN, ^monitor, :process, _pid, {:shutdown, :aion_evicted}}, 10_000
    end

    {id, _} = List.last(started)
    assert {:ok, %{status: :running, resident: false, pid: nil, pending: [%{kind: :timer}]}} = Aion.describe(aion, id)

    for {id, _} <- started, do: assert({:ok, :woke} = Aion.await(aion, id, 30_000))
    assert event_types(aion, id) == [:workflow_started, :timer_started, :timer_fired, :workflow_completed]
    assert DynamicSupervisor.count_children(Aion.Instance.workflows_supervisor(aion, Workflow.type(Sleeper))).active == 0
  end

  test "evicted sleepers survive SIGKILL of the VM and complete after recovery", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    script = Path.expand("../../support/evict_child.exs", __DIR__)

    vm = ChildVM.start(script, [db, "start", "200", "3000"])
    ChildVM.await_lines(vm, "EVICTED", 1)
    assert ChildVM.kill(vm) == 128 + 9

    vm = ChildVM.start(script, [db, "resume", "200", "3000"])
    assert {0, lines} = ChildVM.await_exit(vm)
    results = for "RESULT " <> rest <- lines, do: rest
    assert length(results) == 200
    assert Enum.all?(results, &String.ends_with?(&1, " {:ok, :woke}")), inspect(Enum.reject(results, &String.ends_with?(&1, " {:ok, :woke}")))
  end
end
