defmodule Aion.Test.TimedOutThenGated do
  @moduledoc false
  # A with_timeout that times out before its wait is recorded, then a gate.
  use Aion.Workflow

  @impl true
  def run(listener) do
    {:error, :timeout} = with_timeout(20, fn -> await_signal(:never) end)
    activity(Aion.Test.Activities, :gate, [listener, :after])
  end
end

defmodule Aion.Workflow.WithTimeoutReplayTest do
  # Replays of runs whose with_timeout timed out: what came after it must
  # replay as it was recorded (regressions found by query replays).
  use Aion.Case, async: true

  alias Aion.Test.{QueriedMessages, TimedOutThenGated}

  @moduletag :tmp_dir

  test "a wait interrupted before it was recorded is not compared with the next recorded command",
       %{tmp_dir: dir} do
    aion = start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [QueriedMessages], evict_idle_after: 50)
    {:ok, id} = Aion.start_workflow(aion, QueriedMessages, nil)
    :ok = Aion.signal(aion, id, :item, :a)
    eventually(fn -> :signal_consumed in event_types(aion, id) and Aion.Ownership.run_owner(aion, id) == nil end)

    # The next signal wakes it: its replay passes the with_timeout and takes it.
    :ok = Aion.signal(aion, id, :item, :b)
    eventually(fn -> Enum.count(event_types(aion, id), &(&1 == :signal_consumed)) == 2 end)
    assert {:ok, %{blocked: nil, status: :running}} = Aion.describe(aion, id)
  end

  test "a replay does not cancel work recorded after the with_timeout", %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    listener = listen()
    first = start_instance(store: {:sqlite, db}, workflows: [TimedOutThenGated])
    {:ok, id} = Aion.start_workflow(first, TimedOutThenGated, listener)
    assert_receive {:gate, _gate, :after}, 5_000
    stop_instance(first)

    aion = start_instance(store: {:sqlite, db}, workflows: [TimedOutThenGated])
    assert_receive {:gate, gate, :after}, 5_000
    send(gate, :open)
    assert Aion.await(aion, id) == {:ok, :after}
    refute :activity_cancelled in event_types(aion, id)
  end
end
