defmodule Aion.FaultsTest do
  # AION_FAULT=<point>[:<n>] (src/faults.rs) aborts the engine's OS process
  # the n-th time it reaches a named point of a crash window. Each test runs
  # a workload in a separate VM (test/support/faults_child.exs) with the
  # fault armed, sees the VM die at that point (SIGKILL, after the engine's
  # "AION_FAULT: aborting at <point>" line), restarts it on the same SQLite
  # file without the variable, and checks that the end state is an
  # uninterrupted run's: every workflow has the same result and the same
  # history (no timer fired twice, nothing lost or recorded twice), every
  # awaiter of the restarted VM is answered, and no activity ran again once
  # its result was durable.
  #
  # Histories are compared as counts of each event type (children and
  # signals interleave differently from run to run). continued_as_new gets
  # its workload (Aion.Test.FaultWorkloads) and test with continue-as-new.
  use Aion.Case, async: true

  alias Aion.Test.ChildVM

  @moduletag :tmp_dir
  @moduletag timeout: 300_000

  @killed 128 + 9
  @workloads ["steps", "family", "chain"]

  setup_all do
    # An uninterrupted run of each workload: what every crashed one must end as.
    dir = Path.join(System.tmp_dir!(), "aion-faults-reference-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    %{reference: Map.new(@workloads, &{&1, finish(Path.join(dir, &1), &1, 1)})}
  end

  test "commit_before_fsync: a group commit that never became durable is redone", %{tmp_dir: dir} = context do
    # The 6th transaction is written but not committed: its appends are lost,
    # and nobody was told they were made.
    crash(dir, "steps", 1, "commit_before_fsync:6")
    assert_as_uninterrupted(context, "steps", finish(dir, "steps", 2))
  end

  test "commit_after_fsync: a durable group commit whose callers never heard is not redone", %{tmp_dir: dir} = context do
    crash(dir, "steps", 1, "commit_after_fsync:6")
    assert_as_uninterrupted(context, "steps", finish(dir, "steps", 2))
  end

  test "timer_fired: a timer whose firing is durable but undelivered fires once", %{tmp_dir: dir} = context do
    crash(dir, "steps", 1, "timer_fired:3")
    assert_as_uninterrupted(context, "steps", finish(dir, "steps", 2))
  end

  test "terminal: an ending that is durable but unannounced answers awaiters after the restart", %{tmp_dir: dir} = context do
    crash(dir, "steps", 1, "terminal:2")
    assert_as_uninterrupted(context, "steps", finish(dir, "steps", 2))
  end

  test "recovery: a crash inside recovery leaves a store the next start recovers fully", %{tmp_dir: dir} = context do
    # Generation 1 leaves work to recover: runs mid-activity and mid-sleep.
    crash(dir, "steps", 1, "commit_after_fsync:8")
    # Generation 2 dies in recovery, after visibility and before any timer
    # fires or any run resumes: none of its activities ran.
    crash(dir, "steps", 2, "recovery")
    refute Enum.any?(executions(dir), fn {_key, generations} -> 2 in generations end)
    assert_as_uninterrupted(context, "steps", finish(dir, "steps", 3))
  end

  test "child_started: a child recorded in its parent but never started starts once", %{tmp_dir: dir} = context do
    crash(dir, "family", 1, "child_started:2")
    assert_as_uninterrupted(context, "family", finish(dir, "family", 2))
  end

  test "child_ended: a child's ending its parent never recorded is recorded once", %{tmp_dir: dir} = context do
    crash(dir, "family", 1, "child_ended:2")
    assert_as_uninterrupted(context, "family", finish(dir, "family", 2))
  end

  test "continued_as_new: a run continued as new whose successor never ran runs it once", %{tmp_dir: dir} = context do
    crash(dir, "chain", 1, "continued_as_new:3")
    assert_as_uninterrupted(context, "chain", finish(dir, "chain", 2))
  end

  test "signal_sent: a signal recorded as sent but never delivered is delivered once", %{tmp_dir: dir} = context do
    crash(dir, "family", 1, "signal_sent:2")
    assert_as_uninterrupted(context, "family", finish(dir, "family", 2))
  end

  test "an AION_FAULT naming no point refuses to start the instance, saying which points exist", %{tmp_dir: dir} do
    vm = child(dir, "steps", 1, [{"AION_FAULT", "timer_fird:2"}])
    assert {2, lines} = ChildVM.await_exit(vm)
    assert [failure] = for("START_FAILED " <> failure <- lines, do: failure)
    assert failure =~ "reason: :invalid_fault"
    assert failure =~ "unknown fault point"
    assert failure =~ "timer_fird"
    assert failure =~ "commit_before_fsync"
    refute File.exists?(log(dir))
  end

  # A generation with `spec` armed: it must die at its point.
  defp crash(dir, workload, generation, spec) do
    {status, lines} = ChildVM.await_exit(child(dir, workload, generation, [{"AION_FAULT", spec}]))
    [point | _] = String.split(spec, ":")

    assert status == @killed and Enum.any?(lines, &String.starts_with?(&1, "AION_FAULT: aborting at #{point} ")),
           "expected generation #{generation} to be killed at #{point}; it exited with status #{status}, printing:\n" <>
             Enum.join(lines, "\n")
  end

  # A generation without faults: it must finish the workload. Returns its
  # END and RECORDED lines, sorted.
  defp finish(dir, workload, generation) do
    {status, lines} = ChildVM.await_exit(child(dir, workload, generation, []))

    assert status == 0 and "ALL_DONE" in lines,
           "expected generation #{generation} to finish; it exited with status #{status}, printing:\n" <> Enum.join(lines, "\n")

    lines |> Enum.filter(&(String.starts_with?(&1, "END ") or String.starts_with?(&1, "RECORDED "))) |> Enum.sort()
  end

  defp child(dir, workload, generation, env) do
    File.mkdir_p!(dir)
    ChildVM.start(child_script(), [Path.join(dir, "aion.db"), log(dir), "#{generation}", workload], env)
  end

  defp assert_as_uninterrupted(%{tmp_dir: dir, reference: reference}, workload, lines) do
    ends = for "END " <> _ = line <- lines, do: line
    assert ends == for("END " <> _ = line <- reference[workload], do: line)

    # Every activity that ran has its result recorded by its last execution,
    # which ran once: none ran again after its result was durable.
    recorded = for "RECORDED " <> rest <- lines, into: %{}, do: rest |> String.split() |> then(fn [key, g] -> {key, String.to_integer(g)} end)
    executions = executions(dir)
    assert Enum.sort(Map.keys(executions)) == Enum.sort(Map.keys(recorded))

    for {key, recorded_in} <- recorded do
      ran_in = Map.fetch!(executions, key)

      assert Enum.max(ran_in) == recorded_in and Enum.count(ran_in, &(&1 == recorded_in)) == 1,
             "#{key} ran in generations #{inspect(ran_in)}; its result was recorded in #{recorded_in}"
    end
  end

  # key => [generation of each execution]
  defp executions(dir) do
    case File.read(log(dir)) do
      {:ok, text} ->
        text
        |> String.split("\n", trim: true)
        |> Enum.map(fn line -> ["run", key, g] = String.split(line); {key, String.to_integer(g)} end)
        |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))

      {:error, :enoent} ->
        %{}
    end
  end

  defp log(dir), do: Path.join(dir, "executions.log")
  defp child_script, do: Path.expand("../support/faults_child.exs", __DIR__)
end
