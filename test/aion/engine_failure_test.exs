defmodule Aion.EngineFailureTest do
  # Failures the engine reports in the background, made to happen in a
  # separate BEAM by the NIF's test-only fault injection: a background task
  # that dies (here the group-commit writer, made to panic right after a
  # commit) fails the instance, whose supervisor restarts it, so appends do
  # not stay `closed` forever; a run whose loads fail is retried.
  use Aion.Case, async: true

  alias Aion.Test.ChildVM

  @moduletag :tmp_dir

  test "a writer panic restarts the instance and the workflow completes", %{tmp_dir: dir} do
    script = Path.expand("../support/panic_child.exs", __DIR__)
    vm = ChildVM.start(script, [Path.join(dir, "aion.db")], [{"AION_FAULT_PANIC_AFTER", "timer_started:1"}])
    assert {0, lines} = ChildVM.await_exit(vm)
    assert "RESULT {:ok, :woke}" in lines, Enum.join(lines, "\n")
    assert "RESTARTED true" in lines
    assert Enum.any?(lines, &(&1 =~ "the engine's group-commit writer failed")), Enum.join(lines, "\n")
  end

  test "a run whose loads fail for a while is respawned until one succeeds", %{tmp_dir: dir} do
    script = Path.expand("../support/load_child.exs", __DIR__)
    vm = ChildVM.start(script, [Path.join(dir, "aion.db")], [{"AION_FAULT_FAIL_LOADS", "3"}])
    assert {0, lines} = ChildVM.await_exit(vm)
    assert "RESULT {:ok, :woke}" in lines, Enum.join(lines, "\n")
    assert Enum.count(lines, &(&1 =~ "cannot resume workflow")) == 3, Enum.join(lines, "\n")
  end
end
