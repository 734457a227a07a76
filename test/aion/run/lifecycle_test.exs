defmodule Aion.Run.LifecycleTest do
  # The run lifecycle through the real NIF and SQLite files: who owns a run
  # and its activities, what happens when a run's process dies, and what
  # gives a running run a process again.
  use Aion.Case, async: true

  import ExUnit.CaptureLog

  alias Aion.Ownership
  alias Aion.Test.{Argued, Gated, Rescuer, Sleeper, Trapper}

  @moduletag :tmp_dir

  setup %{tmp_dir: dir} do
    db = Path.join(dir, "aion.db")
    %{db: db, aion: start_instance(store: {:sqlite, db}, workflows: [Gated, Rescuer, Sleeper, Argued, Trapper])}
  end

  defp owner!(aion, id), do: eventually(fn -> Ownership.run_owner(aion, id) end)

  test "a raise rescued before a command is recorded leaves no trace, and the run goes on", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Rescuer, nil)
    assert {:ok, {{:rescued, true}, {:rescued, "no luck"}, 3}} = Aion.await(aion, id)

    assert event_types(aion, id) == [
             :workflow_started,
             :activity_scheduled,
             :activity_completed,
             :timer_started,
             :timer_fired,
             :workflow_completed
           ]
  end

  test "an interrupted activity runs again with its recorded arguments, and a change is logged",
       %{aion: aion, db: db} do
    listener = listen()
    :persistent_term.put({Argued, listener}, :recorded)
    {:ok, id} = Aion.start_workflow(aion, Argued, listener)
    assert_receive {:gate, _activity, :recorded}, 5_000
    stop_instance(aion)

    :persistent_term.put({Argued, listener}, :changed)

    log =
      capture_log(fn ->
        aion = start_instance(store: {:sqlite, db}, workflows: [Argued])
        assert_receive {:gate, activity, :recorded}, 5_000
        send(activity, :open)
        assert {:ok, :recorded} = Aion.await(aion, id)
      end)

    assert log =~ "workflow #{id} command #0 (activity Aion.Test.Activities.gate)"
    assert log =~ ":changed"
  end

  test "a run process killed from outside is respawned; its activity's execution is stopped first, never overlapped",
       %{aion: aion} do
    listener = listen()
    {:ok, id} = Aion.start_workflow(aion, Gated, listener)
    assert_receive {:gate, first, ^id}, 5_000
    first_ref = Process.monitor(first)
    process = owner!(aion, id)

    Process.exit(process, :kill)

    # The first execution dies with its run; the respawned run replays and
    # dispatches the activity again, only once the first one is gone.
    assert_receive {:DOWN, ^first_ref, :process, ^first, :killed}, 5_000
    assert_receive {:gate, second, ^id}, 5_000
    assert second != first
    refute Process.alive?(first)
    send(second, :open)

    assert Aion.await(aion, id) == {:ok, :done}
    refute :workflow_failed in event_types(aion, id)
    refute_received {:gate, _, ^id}
  end

  test "a :shutdown exit of a run process is not an instance stop: the run is respawned", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 300)
    process = owner!(aion, id)
    Process.exit(process, :shutdown)
    assert {:ok, :woke} = Aion.await(aion, id)
    assert event_types(aion, id) == [:workflow_started, :timer_started, :timer_fired, :workflow_completed]
  end

  test "a start whose process cannot be spawned is recorded, and the reconciler gives it a process", %{aion: aion} do
    [{supervisor, _}] = Registry.lookup(Aion.Registry, {aion, :supervisor})
    type = {:workflows, Aion.Workflow.type(Sleeper)}
    :ok = Supervisor.terminate_child(supervisor, type)

    # As when a start races the instance's own start-up: the workflow's
    # supervisor is not there.
    assert {:ok, id} = Aion.start_workflow(aion, Sleeper, 1)
    assert {:ok, %{status: :running, resident: false}} = Aion.describe(aion, id)

    {:ok, _} = Supervisor.restart_child(supervisor, type)
    assert {:ok, :woke} = Aion.await(aion, id, 10_000)
  end

  test "a monitor that dies takes nothing with it: the run completes and its awaiter is answered", %{aion: aion} do
    listener = listen()
    {:ok, id} = Aion.start_workflow(aion, Gated, listener)
    assert_receive {:gate, _activity, ^id}, 5_000
    awaiter = Task.async(fn -> Aion.await(aion, id, 20_000) end)
    {:ok, instance} = Aion.Instance.lookup(aion)
    Process.exit(GenServer.whereis(Aion.Instance.monitor(instance, id)), :kill)

    # The instance restarts what came after the monitor (the run's process
    # among them); the reconciler gives the run a process again.
    assert_receive {:gate, activity, ^id}, 10_000
    send(activity, :open)
    assert Task.await(awaiter, 20_000) == {:ok, :done}
    assert {:ok, _} = Aion.Instance.lookup(aion)
  end

  test "stopping the instance stops a workflow that traps exits at once, and records nothing", %{aion: aion, db: db} do
    {:ok, id} = Aion.start_workflow(aion, Trapper, 60_000)
    eventually(fn -> match?({:ok, %{pending: [_]}}, Aion.describe(aion, id)) end)
    process = Process.monitor(owner!(aion, id))
    stop_instance(aion)

    # It obeys the shutdown instead of being killed when its supervisor's
    # patience runs out.
    assert_received {:DOWN, ^process, :process, _, :shutdown}

    aion = start_instance(store: {:sqlite, db}, workflows: [Trapper])
    assert {:ok, %{status: :running}} = Aion.describe(aion, id)
    assert event_types(aion, id) == [:workflow_started, :timer_started]
  end

  test "an awaiter of an instance that stops is answered at once", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 60_000)
    awaiter = Task.async(fn -> Aion.await(aion, id, :infinity) end)
    eventually(fn -> Registry.lookup(Aion.Awaiters, {aion, id}) != [] end)
    stop_instance(aion)
    assert {:error, %Aion.Error{reason: :not_running}} = Task.await(awaiter, 2_000)
  end

  # Loading the run elsewhere supersedes the process's replay state, as the
  # engine also does when recorded history and replay state disagree.
  defp supersede(aion, id) do
    {:ok, instance} = Aion.Instance.lookup(aion)
    {:ok, _run, _info} = Aion.Engine.load_run(instance.engine, id, 0)
  end

  test "a run whose replay state was dropped under its process is respawned, not left stuck", %{aion: aion} do
    listener = listen()
    {:ok, id} = Aion.start_workflow(aion, Gated, listener)
    assert_receive {:gate, activity, ^id}, 5_000
    supersede(aion, id)
    send(activity, :open)

    # Recording the result fails (superseded): the process stops, is
    # respawned, replays, and runs the unfinished activity again.
    assert_receive {:gate, again, ^id}, 5_000
    send(again, :open)
    assert Aion.await(aion, id) == {:ok, :done}
  end

  test "a sleeper that never hears its timer fire asks, instead of waiting forever", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 100)
    eventually(fn -> match?({:ok, %{pending: [_]}}, Aion.describe(aion, id)) end)
    # The timer's firing now goes to this test process, not to the sleeper.
    supersede(aion, id)
    assert {:ok, :woke} = Aion.await(aion, id, 5_000)
  end
end
