defmodule Aion.Workflow.ChildCrashTest do
  # Child workflows and signals between workflows across SIGKILL of the VM,
  # in each window between "recorded" and "acted on": a child BEAM
  # (test/support/children_child.exs) runs the workflows and is killed;
  # this VM then opens the same store, recovers, and checks the end state
  # equals an uninterrupted run's: the same results, one run per child, each
  # ending recorded once in its parent, each signal delivered once.
  use Aion.Case, async: true

  alias Aion.Test.{ChildVM, Collector, Doubler, Parent, Signaller}

  @moduletag :tmp_dir
  @moduletag timeout: 120_000

  @script Path.expand("../../support/children_child.exs", __DIR__)
  @killed 128 + 9

  # Runs `mode` in a child VM until `env`'s fault kills it; then checks
  # `before` on the store as the kill left it (an instance that runs no
  # workflow type cannot resume anything), and returns an instance that
  # recovers it.
  defp run_until_killed(dir, mode, env, before) do
    db = Path.join(dir, "aion.db")
    vm = ChildVM.start(@script, [db, mode], env)
    assert {@killed, _lines} = ChildVM.await_exit(vm)
    inspector = start_instance(store: {:sqlite, db}, workflows: [])
    before.(inspector)
    stop_instance(inspector)
    start_instance(store: {:sqlite, db}, workflows: [Doubler, Parent, Signaller, Collector])
  end

  defp events(aion, id) do
    {:ok, events} = Aion.history(aion, id)
    events
  end

  defp count(aion, id, type), do: Enum.count(events(aion, id), &(&1.type == type))

  test "killed after the child is recorded, before it starts: recovery starts it once", %{tmp_dir: dir} do
    aion =
      run_until_killed(dir, "one_child", [{"AION_FAULT_KILL_AFTER", "child_workflow_started:1"}], fn aion ->
        # The kill came before the child's workflow_started.
        assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "k-child")
        assert count(aion, "k-parent", :child_workflow_started) == 1
      end)
    assert {:ok, [{:ok, 14}]} = Aion.await(aion, "k-parent", 10_000)
    assert count(aion, "k-child", :workflow_started) == 1
    assert count(aion, "k-parent", :child_workflow_started) == 1
    assert count(aion, "k-parent", :child_workflow_completed) == 1
  end

  test "killed after the child ended, before its parent's record: recovery records it once", %{tmp_dir: dir} do
    aion =
      run_until_killed(dir, "one_child", [{"AION_FAULT_KILL_AFTER", "workflow_completed:1"}], fn aion ->
        assert List.last(events(aion, "k-child")).type == :workflow_completed
        assert count(aion, "k-parent", :child_workflow_completed) == 0
      end)
    assert {:ok, [{:ok, 14}]} = Aion.await(aion, "k-parent", 10_000)
    assert count(aion, "k-parent", :child_workflow_completed) == 1
    assert count(aion, "k-child", :workflow_started) == 1
  end

  test "killed after the parent ended, before it closed its children: recovery closes them by their policies", %{tmp_dir: dir} do
    aion =
      run_until_killed(dir, "orphan", [{"AION_FAULT_KILL_AFTER", "workflow_completed:1"}], fn aion ->
        assert {:ok, %{status: :completed}} = Aion.describe(aion, "k-parent")
        assert {:ok, %{status: :running}} = Aion.describe(aion, "k-terminated")
        assert {:ok, %{status: :running}} = Aion.describe(aion, "k-cancelled")
      end)

    assert {:error, %Aion.Error{reason: :terminated}} = Aion.await(aion, "k-terminated", 10_000)
    assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, "k-cancelled", 10_000)
  end

  test "killed after a signal is recorded as sent, before delivery: recovery delivers it once", %{tmp_dir: dir} do
    aion =
      run_until_killed(dir, "signal", [{"AION_FAULT_KILL_AFTER", "signal_sent:1"}], fn aion ->
        assert count(aion, "k-sender", :signal_sent) == 1
        assert count(aion, "k-target", :signal_received) == 0
      end)
    assert {:ok, [:ok]} = Aion.await(aion, "k-sender", 10_000)
    assert {:ok, [:hello]} = Aion.await(aion, "k-target", 10_000)
    assert count(aion, "k-target", :signal_received) == 1
  end

  test "killed mid fan-out: every child runs once and is recorded once", %{tmp_dir: dir} do
    aion =
      run_until_killed(dir, "fan_out", [{"AION_FAULT_KILL_AFTER", "workflow_completed:10"}], fn aion ->
        assert count(aion, "k-fan", :child_workflow_completed) < 40
      end)

    assert {:ok, results} = Aion.await(aion, "k-fan", 60_000)
    assert results == for(n <- 1..40, do: {:ok, 2 * n})
    assert count(aion, "k-fan", :child_workflow_started) == 40
    assert count(aion, "k-fan", :child_workflow_completed) == 40
    for n <- 1..40, do: assert(count(aion, "k-#{n}", :workflow_started) == 1)
  end
end
