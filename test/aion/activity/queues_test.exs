defmodule Aion.Activity.QueuesTest do
  # Activity queues (the instance's :queues, the activity's :queue option),
  # through the real NIF and SQLite files.
  use Aion.Case, async: true

  alias Aion.Test.{Fanout, QueuedPair, UnknownQueue}

  @moduletag :tmp_dir

  defp instance(dir, queues) do
    start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Fanout, QueuedPair, UnknownQueue], queues: queues)
  end

  defp counter do
    key = :"aion_test_counter_#{System.unique_integer([:positive])}"
    :persistent_term.put(key, :atomics.new(2, signed: false))
    key
  end

  defp most_at_once(key), do: :atomics.get(:persistent_term.get(key), 2)

  test "100 activities on a queue of 5 never run more than 5 at once", %{tmp_dir: dir} do
    aion = instance(dir, email: 5)
    key = counter()
    {:ok, id} = Aion.start_workflow(aion, Fanout, %{n: 100, queue: :email, key: key, ms: 10})
    assert {:ok, 100} = Aion.await(aion, id, 30_000)
    assert most_at_once(key) == 5
  end

  test "the default queue is unlimited unless listed", %{tmp_dir: dir} do
    aion = instance(dir, [])
    key = counter()
    {:ok, id} = Aion.start_workflow(aion, Fanout, %{n: 20, queue: :default, key: key, ms: 200})
    assert {:ok, 20} = Aion.await(aion, id, 30_000)
    assert most_at_once(key) > 5
  end

  test "a full queue blocks neither other queues nor the timeout of what waits in it", %{tmp_dir: dir} do
    aion = instance(dir, single: 1)
    listener = listen()
    {:ok, id} = Aion.start_workflow(aion, QueuedPair, %{listener: listener, timeout: 200})
    assert_receive {:gate, gate, :held}, 5_000
    # :default runs while :single is full.
    assert_receive {:report, :free}, 5_000
    # The queued activity waits longer than its timeout before it runs.
    Process.sleep(400)
    send(gate, :open)
    assert {:ok, {:free, {:ok, :held}, {:ok, :queued}}} = Aion.await(aion, id, 5_000)
  end

  test "an unknown queue is a clear error at the call, and nothing is recorded for it", %{tmp_dir: dir} do
    aion = instance(dir, email: 2)
    {:ok, id} = Aion.start_workflow(aion, UnknownQueue, nil)
    assert {:error, %Aion.Error{reason: :workflow_raised, message: message}} = Aion.await(aion, id, 5_000)
    assert message =~ "unknown queue :nowhere"
    refute :activity_scheduled in event_types(aion, id)
  end

  test "bad :queues options are refused" do
    for bad <- [[email: 0], [email: -1], [email: "5"], %{email: 5}, ["email"]] do
      assert {:error, %Aion.Error{reason: :invalid_option, message: message}} = Aion.Config.validate(store: :memory, queues: bad)
      assert message =~ ":queues"
    end

    assert {:ok, %{queues: %{default: 10, email: :infinity}}} = Aion.Config.validate(store: :memory, queues: [default: 10, email: :infinity])
  end
end
