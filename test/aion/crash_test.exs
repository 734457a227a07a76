defmodule Aion.CrashTest do
  # The engine runs in a separate OS process that is killed with SIGKILL at
  # chosen points and restarted on the same SQLite file; afterwards every
  # workflow must have the right result and no activity whose completion was
  # recorded may have run again.
  use Aion.Case, async: true

  alias Aion.Test.{ChildVM, CrashWorkflow}

  @moduletag :tmp_dir
  @moduletag timeout: 300_000

  @workflows 100
  @sigkill_status 128 + 9

  test "100 workflows finish correctly across SIGKILLs mid-activity, mid-sleep and between record and reply",
       %{tmp_dir: dir} do
    db = Path.join(dir, "crash.db")
    log = Path.join(dir, "executions.log")
    child = fn generation, mode, env -> ChildVM.start(child_script(), [db, log, "#{generation}", mode, "#{@workflows}"], env) end

    # Each generation's kill point is certain to be reached: the kills that
    # need much work left come first, the commit thresholds are small.

    # 1. Mid-activity: once every start is acknowledged (READY), the 10th
    #    activity to begin SIGKILLs the engine's VM while others are running.
    vm = child.(1, "start", [{"CRASH_KILL_AT_ACTIVITY", "10"}])
    assert {@sigkill_status, lines} = ChildVM.await_exit(vm)
    assert "READY" in lines

    # 2. Killed from outside by this test, while workflows are spread over
    #    sleeps and (slow, here) activities.
    vm = child.(2, "resume", [{"CRASH_ACTIVITY_MS", "5000"}])
    ChildVM.await_lines(vm, "STARTED", 10)
    assert ChildVM.kill(vm) == @sigkill_status

    # 3. Mid-sleep, between record and reply: the engine kills itself right
    #    after the commit that makes the 5th timer_started of this run
    #    durable, before any workflow hears that its timer was recorded.
    vm = child.(3, "resume", [{"AION_FAULT_KILL_AFTER", "timer_started:5"}])
    assert {@sigkill_status, _} = ChildVM.await_exit(vm)

    # 4. Between record and reply for activity results: killed right after the
    #    commit that makes the 5th activity_completed of this run durable.
    vm = child.(4, "resume", [{"AION_FAULT_KILL_AFTER", "activity_completed:5"}])
    assert {@sigkill_status, _} = ChildVM.await_exit(vm)

    # 5. Left alone: everything finishes.
    vm = child.(5, "resume", [])
    assert {0, lines} = ChildVM.await_exit(vm)
    assert "ALL_DONE" in lines

    results = for "RESULT " <> rest <- lines, into: %{}, do: List.to_tuple(String.split(rest, " ", parts: 2))
    for n <- 1..@workflows, do: assert(results["wf-#{n}"] == "{:ok, #{30 * n + 6}}")

    # Read the histories back in this VM (the child is gone, so is its lock).
    aion = start_instance(store: {:sqlite, db}, workflows: [CrashWorkflow])
    executions = executions(log)

    reexecuted =
      for n <- 1..@workflows, reduce: 0 do
        reexecuted ->
          {:ok, history} = Aion.history(aion, "wf-#{n}")
          assert Enum.map(history, & &1.type) == expected_shape()
          assert List.last(history).result == 30 * n + 6

          for %{type: :activity_completed, command: command, result: %{generation: recorded_in}} <- history,
              reduce: reexecuted do
            reexecuted ->
              step = div(command, 2) + 1
              ran_in = Map.fetch!(executions, {n, step})
              # The execution whose result was recorded is the last one: no
              # activity ran again once its completion was durable.
              assert Enum.max(ran_in) == recorded_in,
                     "wf-#{n} step #{step} ran in generations #{inspect(ran_in)} but its result was recorded in #{recorded_in}"

              reexecuted + length(ran_in) - 1
          end
      end

    # The kills did interrupt activities (at-least-once re-execution happened),
    # so the check above was not vacuous.
    assert reexecuted > 0
    assert map_size(executions) == 3 * @workflows
  end

  defp child_script, do: Path.expand("../support/crash_child.exs", __DIR__)

  defp expected_shape do
    [:workflow_started] ++
      List.duplicate([:activity_scheduled, :activity_completed, :timer_started, :timer_fired], 2) ++
      [:activity_scheduled, :activity_completed, :workflow_completed]
    |> List.flatten()
  end

  # {n, step} => [generation of each execution]
  defp executions(log) do
    log
    |> File.read!()
    |> String.split("\n", trim: true)
    |> Enum.map(fn line ->
      ["start", n, step, generation] = String.split(line)
      {{String.to_integer(n), String.to_integer(step)}, String.to_integer(generation)}
    end)
    |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))
  end
end
