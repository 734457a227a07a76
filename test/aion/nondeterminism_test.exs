defmodule Aion.NondeterminismTest do
  use Aion.Case, async: true

  alias Aion.Test.{Gated, GatedChanged, GatedShortened, Sequence}

  @moduletag :tmp_dir

  # Runs Gated until it waits at its gate, then stops the instance (for the
  # workflow, as good as a crash) and starts a new one whose code for the same
  # workflow type is `changed`.
  defp crash_and_change(dir, changed) do
    db = Path.join(dir, "aion.db")
    listener = listen()
    first = start_instance(store: {:sqlite, db}, workflows: [Gated])
    {:ok, id} = Aion.start_workflow(first, Gated, listener, id: "nd-1")
    assert_receive {:gate, _activity, "nd-1"}, 5_000
    stop_instance(first)
    {start_instance(store: {:sqlite, db}, workflows: [changed, Sequence]), id}
  end

  test "code that issues a different command fails with AION-ND001 naming the key", %{tmp_dir: dir} do
    {aion, id} = crash_and_change(dir, GatedChanged)

    assert {:error, %Aion.Error{reason: :nondeterminism, code: "AION-ND001", message: message}} = Aion.await(aion, id)
    assert message =~ "[AION-ND001]"
    assert message =~ "at command #0"
    assert message =~ "history recorded activity `Aion.Test.Activities.add`"
    assert message =~ "the workflow code issued timer"

    assert List.last(event_types(aion, id)) == :workflow_failed
    assert {:ok, %{status: :failed}} = Aion.describe(aion, id)

    # The VM, the instance and other workflows are unaffected; new runs of the
    # changed code work.
    {:ok, other} = Aion.start_workflow(aion, Sequence, %{n: 1})
    assert {:ok, %{result: 3}} = Aion.await(aion, other)
    {:ok, fresh} = Aion.start_workflow(aion, GatedChanged, nil)
    assert {:ok, :done} = Aion.await(aion, fresh)
  end

  test "code that finishes before issuing the recorded commands fails with AION-ND002", %{tmp_dir: dir} do
    {aion, id} = crash_and_change(dir, GatedShortened)

    assert {:error, %Aion.Error{reason: :nondeterminism, code: "AION-ND002", message: message}} = Aion.await(aion, id)
    assert message =~ "finished after 0 commands, but history recorded 2"
    assert message =~ "command #0 was activity `Aion.Test.Activities.add`"
  end
end
