defmodule Aion.WorkflowTest do
  use Aion.Case, async: true

  alias Aion.Test.{ActivityResults, Recorded}

  @moduletag :tmp_dir

  setup %{tmp_dir: dir} do
    %{db: Path.join(dir, "aion.db")}
  end

  defp start(db), do: start_instance(name: :"wf_#{System.unique_integer([:positive])}", store: {:sqlite, db}, workflows: [ActivityResults, Recorded])

  describe "activity/4" do
    setup %{db: db}, do: %{aion: start(db)}

    for {function, args, opts, expected} <- [
          {:add, [1, 2], [], {:ok, 3}},
          {:fail, [:nope], [], {:error, :nope}},
          {:plain, [%{a: 1}], [], {:ok, %{a: 1}}},
          {:just_ok, [], [], {:ok, :ok}}
        ] do
      test "#{function} returning #{inspect(expected)}", %{aion: aion} do
        {:ok, id} = Aion.start_workflow(aion, ActivityResults, {unquote(function), unquote(Macro.escape(args)), unquote(opts)})
        assert Aion.await(aion, id) == {:ok, unquote(Macro.escape(expected))}
      end
    end

    test "a raise becomes {:error, %Aion.Error{reason: :activity_raised}}", %{aion: aion} do
      {:ok, id} = Aion.start_workflow(aion, ActivityResults, {:boom, ["kaput"], []})
      assert {:ok, {:error, %Aion.Error{reason: :activity_raised, message: message}}} = Aion.await(aion, id)
      assert message =~ "(RuntimeError) kaput"
      assert :activity_failed in event_types(aion, id)
    end

    test "a throw and an exit are failures too", %{aion: aion} do
      {:ok, thrown} = Aion.start_workflow(aion, ActivityResults, {:throw_it, [:ball], []})
      {:ok, exited} = Aion.start_workflow(aion, ActivityResults, {:exit_now, [:bye], []})
      assert {:ok, {:error, %Aion.Error{reason: :activity_raised, message: "** (throw) :ball"}}} = Aion.await(aion, thrown)
      assert {:ok, {:error, %Aion.Error{reason: :activity_exited, message: "** (exit) :bye"}}} = Aion.await(aion, exited)
    end

    test "a timeout stops the activity and fails it", %{aion: aion} do
      {:ok, id} = Aion.start_workflow(aion, ActivityResults, {:slow, [60_000], [timeout: 20]})
      assert {:ok, {:error, %Aion.Error{reason: :activity_timeout, message: message}}} = Aion.await(aion, id)
      assert message =~ "Aion.Test.Activities.slow/1 did not finish within 20 ms"
    end

    test "a result that cannot be stored fails the activity, clearly", %{aion: aion} do
      {:ok, id} = Aion.start_workflow(aion, ActivityResults, {:give_pid, [], []})
      assert {:ok, {:error, %Aion.Error{reason: :unserializable, message: message}}} = Aion.await(aion, id)
      assert message =~ "the result of activity Aion.Test.Activities.give_pid/0 cannot be stored: it holds a pid"
    end

    test "bad options and unserializable arguments fail the workflow with a clear message", %{aion: aion} do
      {:ok, bad_timeout} = Aion.start_workflow(aion, ActivityResults, {:add, [1, 2], [timeout: -1]})
      assert {:error, %Aion.Error{message: message}} = Aion.await(aion, bad_timeout)
      assert message =~ "expected :timeout to be a positive integer or :infinity, got: -1"

      {:ok, bad_args} = Aion.start_workflow(aion, ActivityResults, :ref_argument)
      assert {:error, %Aion.Error{reason: :workflow_raised, message: message}} = Aion.await(aion, bad_args)
      assert message =~ "the arguments of activity Aion.Test.Activities.plain cannot be stored: it holds a reference"
      assert event_types(aion, bad_args) == [:workflow_started, :workflow_failed]
    end
  end

  test "workflow functions refuse to run outside workflow code" do
    assert_raise RuntimeError, ~r/only be called from workflow code/, fn -> Aion.Workflow.now() end
  end

  test "now/0 and side_effect/1 return on replay what they returned live", %{db: db} do
    listener = listen()
    aion = start(db)
    {:ok, id} = Aion.start_workflow(aion, Recorded, listener)
    assert_receive {:gate, _activity, {live_at, live_token}}, 5_000
    assert_received :side_effect_ran

    # Stop the engine while the workflow waits in its activity, then start
    # again on the same store: the workflow replays from the top.
    stop_instance(aion)
    aion = start(db)
    assert_receive {:gate, activity, {replayed_at, replayed_token}}, 5_000
    assert {replayed_at, replayed_token} == {live_at, live_token}
    refute_received :side_effect_ran
    send(activity, :open)

    assert {:ok, {^live_at, ^live_token, ^id}} = Aion.await(aion, id)
    assert %DateTime{} = live_at
    assert byte_size(live_token) == 8

    markers = for %{type: :marker_recorded} = event <- elem(Aion.history(aion, id), 1), do: {event.name, event.value}
    assert markers == [{"now", live_at}, {"side_effect", live_token}]
  end
end
