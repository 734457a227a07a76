defmodule Aion.Activity.RetryCrashTest do
  # Retry backoffs and schedule_to_close deadlines are durable: a VM killed
  # with SIGKILL resumes them after a restart with what is left, neither
  # from zero nor at once. Times come from the activity's own log and from
  # history, not from sleeps in the test.
  use Aion.Case, async: true

  alias Aion.Test.ChildVM

  @moduletag :tmp_dir

  @script Path.expand("../../support/retry_child.exs", __DIR__)

  defp resume(db, id) do
    vm = ChildVM.start(@script, ["resume", db, id])
    assert {0, lines} = ChildVM.await_exit(vm)
    ["RESUMED " <> resumed_at] = Enum.filter(lines, &String.starts_with?(&1, "RESUMED "))
    {String.to_integer(resumed_at), lines}
  end

  test "a VM killed during a 3 s backoff, restarted after 1 s, retries when the backoff ends", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    log = Path.join(dir, "attempts.log")

    vm = ChildVM.start(@script, ["backoff", db, log])
    lines = ChildVM.read_until(vm, "BACKOFF ")
    "BACKOFF " <> retry_at = List.last(lines)
    retry_at = String.to_integer(retry_at)
    assert ChildVM.kill(vm) == 137
    Process.sleep(1_000)

    {resumed_at, lines} = resume(db, "retry-1")
    assert "RESULT {:ok, {:ok, :second}}" in lines, Enum.join(lines, "\n")

    [first, second] = log |> File.read!() |> String.split("\n", trim: true) |> Enum.map(&String.to_integer/1)
    # The retry came when the backoff ended: not at once after the restart
    # (which came before the end), not a fresh 3 s after it.
    # (Bounds with room for a slow, loaded machine: a fresh backoff would
    # come 3 s after the resume at the earliest.)
    assert second >= retry_at - 50, "retried #{retry_at - second} ms early"
    assert second - first >= 2_900
    assert second < resumed_at + 3_000, "retried #{second - resumed_at} ms after the resume: a fresh backoff"

    {:ok, events} = read_history(dir, "retry-1")
    assert %{attempts: 2, last_failure: :first_fails} = Enum.find(events, &(&1.type == :activity_completed))
  end

  test "an activity interrupted by a crash keeps its schedule_to_close deadline", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    vm = ChildVM.start(@script, ["deadline", db, "-"])
    ChildVM.read_until(vm, "SCHEDULED")
    Process.sleep(500)
    assert ChildVM.kill(vm) == 137
    Process.sleep(1_000)

    {_resumed_at, lines} = resume(db, "deadline-1")
    assert Enum.any?(lines, &(&1 =~ "RESULT {:ok, {:error, %Aion.Error{reason: :activity_timeout")), Enum.join(lines, "\n")

    {:ok, events} = read_history(dir, "deadline-1")
    scheduled = Enum.find(events, &(&1.type == :activity_scheduled)).recorded_at
    failed = Enum.find(events, &(&1.type == :activity_failed))
    assert %Aion.Error{details: %{timeout: :schedule_to_close}} = failed.error
    # 3 s from when it was scheduled, not 3 s from the restart (>= 4.5 s).
    elapsed = DateTime.diff(failed.recorded_at, scheduled, :millisecond)
    assert elapsed >= 2_950 and elapsed < 4_000, "failed #{elapsed} ms after it was scheduled"
  end

  for kind <- [:start_to_close, :heartbeat] do
    test "the attempt that runs again after a crash still has its #{kind} timeout", %{tmp_dir: dir} do
      db = Path.join(dir, "aion.db")
      vm = ChildVM.start(@script, ["deadline", db, Atom.to_string(unquote(kind))])
      ChildVM.read_until(vm, "SCHEDULED")
      assert ChildVM.kill(vm) == 137

      {_resumed_at, lines} = resume(db, "deadline-1")
      expected = "RESULT {:ok, {:error, %Aion.Error{reason: :activity_timeout"
      assert Enum.any?(lines, &(&1 =~ expected)), Enum.join(lines, "\n")

      {:ok, events} = read_history(dir, "deadline-1")
      assert %Aion.Error{details: %{timeout: unquote(kind)}} = Enum.find(events, &(&1.type == :activity_failed)).error
    end
  end

  defp read_history(dir, id) do
    aion = start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Aion.Test.Retrying])
    Aion.history(aion, id)
  end
end
