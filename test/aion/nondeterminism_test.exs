defmodule Aion.NondeterminismTest do
  use Aion.Case, async: true

  alias Aion.Test.{Gated, GatedChanged, GatedChangedFailing, GatedShortened, Sequence}

  @moduletag :tmp_dir

  # Runs Gated until it waits at its gate, then stops the instance (for the
  # workflow, as good as a crash: a new engine knows nothing of the old one)
  # and starts a new one whose code for the same workflow type is `changed`.
  defp crash_and_change(dir, changed) do
    db = Path.join(dir, "aion.db")
    listener = listen()
    first = start_instance(store: {:sqlite, db}, workflows: [Gated])
    {:ok, id} = Aion.start_workflow(first, Gated, listener, id: "nd-1")
    assert_receive {:gate, _activity, "nd-1"}, 5_000
    stop_instance(first)
    {start_instance(store: {:sqlite, db}, workflows: [changed, Sequence]), id, db}
  end

  defp blocked(aion, id) do
    eventually(fn ->
      case Aion.describe(aion, id) do
        {:ok, %{blocked: %{} = blocked} = description} -> {blocked, description}
        _ -> nil
      end
    end)
  end

  test "code that issues a different command suspends the run with AION-ND001; the original code resumes it",
       %{tmp_dir: dir} do
    {aion, id, db} = crash_and_change(dir, GatedChanged)
    history = event_types(aion, id)

    {blocked, description} = blocked(aion, id)
    assert %{reason: :nondeterminism, code: "AION-ND001", message: message} = blocked
    assert message =~ "[AION-ND001]"
    assert message =~ "at command #0"
    assert message =~ "history recorded activity `Aion.Test.Activities.add`"
    assert message =~ "the workflow code issued timer"
    assert %{status: :running, resident: false, pid: nil} = description

    # Nothing was recorded, the run is not failed, and nobody retries it.
    assert {:error, %Aion.Error{reason: :timeout}} = Aion.await(aion, id, 100)
    assert event_types(aion, id) == history

    # The VM, the instance and other workflows are unaffected; new runs of
    # the changed code work.
    {:ok, other} = Aion.start_workflow(aion, Sequence, %{n: 1})
    assert {:ok, %{result: 3}} = Aion.await(aion, other)
    {:ok, fresh} = Aion.start_workflow(aion, GatedChanged, nil)
    assert {:ok, :done} = Aion.await(aion, fresh)

    # A deploy of code that replays the history resumes the run.
    stop_instance(aion)
    aion = start_instance(store: {:sqlite, db}, workflows: [Gated])
    assert_receive {:gate, activity, "nd-1"}, 5_000
    send(activity, :open)
    assert Aion.await(aion, id) == {:ok, :done}
    assert {:ok, %{blocked: nil, status: :completed}} = Aion.describe(aion, id)
  end

  test "code that finishes before issuing the recorded commands suspends the run with AION-ND002", %{tmp_dir: dir} do
    {aion, id, _db} = crash_and_change(dir, GatedShortened)

    {blocked, _description} = blocked(aion, id)
    assert %{code: "AION-ND002", message: message} = blocked
    assert message =~ "finished after 0 commands, but history recorded 2"
    assert message =~ "command #0 was activity `Aion.Test.Activities.add`"
    refute :workflow_failed in event_types(aion, id)
  end

  test "with on_nondeterminism: :fail the run fails with the coded error", %{tmp_dir: dir} do
    {aion, id, _db} = crash_and_change(dir, GatedChangedFailing)

    assert {:error, %Aion.Error{reason: :nondeterminism, code: "AION-ND001", message: message}} = Aion.await(aion, id)
    assert message =~ "at command #0"
    assert List.last(event_types(aion, id)) == :workflow_failed
    assert {:ok, %{status: :failed, blocked: nil}} = Aion.describe(aion, id)
  end
end
