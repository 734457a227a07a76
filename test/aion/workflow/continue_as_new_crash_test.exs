defmodule Aion.Workflow.ContinueAsNewCrashTest do
  # Continue-as-new across SIGKILL of the VM, through the real NIF and
  # SQLite: a child BEAM (test/support/continue_child.exs) runs a chain and
  # is killed mid-way; this VM opens the same store, recovers, and checks
  # that the chain finishes with the same result and no run twice.
  use Aion.Case, async: true

  alias Aion.Test.{Chain, ChildVM, KillChain}

  @moduletag :tmp_dir
  @moduletag timeout: 180_000

  @script Path.expand("../../support/continue_child.exs", __DIR__)
  @killed 128 + 9

  defp child(dir, mode) do
    db = Path.join(dir, "aion.db")
    file = Path.join(dir, "steps.log")
    {ChildVM.start(@script, [db, file, mode]), db, file}
  end

  defp recover(db), do: start_instance(store: {:sqlite, db}, workflows: [Chain, KillChain])

  test "SIGKILL mid-chain: after restart the chain finishes with the same result, each run once", %{tmp_dir: dir} do
    {vm, db, file} = child(dir, "chain")
    # Killed once 30 runs exist, while the chain goes on (it waits halfway).
    ChildVM.read_until(vm, "PAST 30")
    {status, lines} = ChildVM.kill_collecting(vm)
    assert status == @killed
    # The chain was still going.
    last = for("RUNS " <> n <- lines, do: String.to_integer(n)) |> Enum.max(fn -> 30 end)
    assert last < 300

    aion = recover(db)
    :ok = Aion.signal(aion, "chain", :go, :go)
    assert {:ok, total} = Aion.await(aion, "chain", 170_000)
    assert total == div(299 * 300, 2)

    {:ok, runs} = Aion.runs(aion, "chain")
    assert length(runs) == 300
    assert length(Enum.uniq_by(runs, & &1.run_id)) == 300
    {ended, [last]} = Enum.split(runs, -1)
    assert Enum.all?(ended, &(&1.status == :continued_as_new))
    assert last.status == :completed
    for [parent, child] <- Enum.chunk_every(runs, 2, 1, :discard), do: assert(child.parent_run_id == parent.run_id)

    {:ok, events} = Aion.history(aion, "chain")
    assert Enum.count(events, &(&1.type == :workflow_started)) == 300
    assert Enum.count(events, &(&1.type == :workflow_continued_as_new)) == 299

    # Each run's side effect ran live at least once; only one cut by the
    # kill can have run twice.
    steps = file |> File.read!() |> String.split("\n", trim: true) |> Enum.frequencies()
    assert Map.keys(steps) |> Enum.map(&String.to_integer/1) |> Enum.sort() == Enum.to_list(0..299)
    assert Enum.count(steps, fn {_step, times} -> times > 1 end) <= 1
  end

  test "SIGKILL after the continue is committed and before the successor has a process: recovery runs it", %{tmp_dir: dir} do
    {vm, db, _file} = child(dir, "window")
    ["CONTINUED " <> new_run_id] = ChildVM.await_lines(vm, "CONTINUED", 1)
    assert ChildVM.kill(vm) == @killed

    aion = recover(db)
    assert {:ok, 7} = Aion.await(aion, "window", 30_000)
    assert {:ok, [%{status: :continued_as_new, run_id: first}, %{run_id: ^new_run_id, parent_run_id: first2, status: :completed}]} =
             Aion.runs(aion, "window")

    assert first == first2
  end
end
