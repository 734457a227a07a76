defmodule Aion.Workflow.EndingsTest do
  # Runs ended from outside their code: Aion.terminate/3, and the
  # :execution_timeout / :run_timeout start options, through the real NIF
  # and SQLite files.
  use Aion.Case, async: true

  alias Aion.Ownership
  alias Aion.Test.{Cancellable, Collector}

  @moduletag :tmp_dir
  @moduletag timeout: 60_000

  defp instance(dir, opts \\ []) do
    start_instance([store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Collector, Cancellable]] ++ opts)
  end

  describe "terminate" do
    test "during an activity: the run ends terminated, the activity is stopped, no cleanup runs", %{tmp_dir: dir} do
      aion = instance(dir)
      listener = listen()
      {:ok, id} = Aion.start_workflow(aion, Cancellable, %{listener: listener, rethrow: true}, id: "t1")
      assert_receive {:gate, activity, :work}, 5_000
      activity_down = Process.monitor(activity)
      workflow_down = Process.monitor(Ownership.run_owner(aion, id))

      assert :ok = Aion.terminate(aion, id, :operator_said_so)

      assert_receive {:DOWN, ^workflow_down, :process, _, {:shutdown, :aion_ended}}, 5_000
      assert_receive {:DOWN, ^activity_down, :process, _, _}, 5_000

      assert {:error, %Aion.Error{reason: :terminated, details: %{reason: :operator_said_so}}} = Aion.await(aion, id, 5_000)
      assert List.last(event_types(aion, id)) == :workflow_terminated
      assert {:ok, %{status: :terminated, pending: []}} = Aion.describe(aion, id)
      # Unlike a cancellation, no workflow code runs after a termination.
      refute_received {:report, {:cleanup, _}}
    end

    test "wakes no code of an evicted run, and ends it", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 50)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "t2")
      monitor = Process.monitor(Ownership.run_owner(aion, id))
      assert_receive {:DOWN, ^monitor, :process, _, {:shutdown, :aion_evicted}}, 5_000

      assert :ok = Aion.terminate(aion, id)
      assert {:error, %Aion.Error{reason: :terminated, details: %{reason: nil}}} = Aion.await(aion, id, 5_000)
      assert Ownership.run_owner(aion, id) == nil
    end

    test "an awaiter already waiting hears the termination at once", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "t3")
      awaiter = Task.async(fn -> Aion.await(aion, id, 30_000) end)
      eventually(fn -> Registry.lookup(Aion.Awaiters, {aion, id}) != [] end)
      :ok = Aion.terminate(aion, id, "stop")
      # Well before the awaiter's first safety-net check (5 s).
      assert {:error, %Aion.Error{reason: :terminated}} = Task.await(awaiter, 2_000)
    end

    test "an update caller waiting for a reply hears the termination at once", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "t6")
      caller = Task.async(fn -> Aion.update(aion, id, :never_awaited, 1, timeout: 30_000) end)
      eventually(fn -> :update_accepted in event_types(aion, id) end)
      :ok = Aion.terminate(aion, id)
      # Well before the caller's first safety-net check (1 s).
      assert {:error, %Aion.Error{reason: :not_running}} = Task.await(caller, 900)
    end

    test "bad input: unknown or ended workflows, bad ids, unserializable reasons", %{tmp_dir: dir} do
      aion = instance(dir)
      assert {:error, %Aion.Error{reason: :not_found}} = Aion.terminate(aion, "nobody")
      assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.terminate(aion, :not_an_id)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "t4")
      assert {:error, %Aion.Error{reason: :unserializable}} = Aion.terminate(aion, id, self())
      :ok = Aion.signal(aion, id, :item, 1)
      assert {:ok, [1]} = Aion.await(aion, id, 5_000)
      assert {:error, %Aion.Error{reason: :not_running}} = Aion.terminate(aion, id)

      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "t5")
      :ok = Aion.terminate(aion, id)
      assert {:error, %Aion.Error{reason: :not_running}} = Aion.terminate(aion, id)
      assert {:error, %Aion.Error{reason: :not_running}} = Aion.signal(aion, id, :item, 1)
      assert {:error, %Aion.Error{reason: :not_running}} = Aion.cancel(aion, id)
    end
  end

  describe "timeouts" do
    test "run_timeout ends a waiting run timed_out", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "slow", run_timeout: 100)
      assert {:error, %Aion.Error{reason: :timed_out}} = Aion.await(aion, id, 5_000)
      assert [%{type: :workflow_started, run_timeout_ms: 100, execution_timeout_ms: nil} | _] = history(aion, id)
      assert %{type: :workflow_timed_out, timeout_ms: timeout_ms} = List.last(history(aion, id))
      assert timeout_ms >= 100
      assert {:error, %Aion.Error{reason: :not_running}} = Aion.signal(aion, id, :item, 1)
    end

    test "execution_timeout of an evicted run fires and ends it", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 20)
      {:ok, id} = Aion.signal_with_start(aion, Collector, %{n: 2}, :item, 1, id: "sws", execution_timeout: 300)
      assert {:error, %Aion.Error{reason: :timed_out}} = Aion.await(aion, id, 5_000)
      assert %{type: :workflow_started, execution_timeout_ms: 300} = hd(history(aion, id))
    end

    test "execution_timeout holds across a restart, and fires at recovery when it expired meanwhile", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "restarted", execution_timeout: 400)
      stop_instance(aion)
      Process.sleep(500)

      aion = instance(dir)
      assert {:error, %Aion.Error{reason: :timed_out}} = Aion.await(aion, id, 5_000)
      assert List.last(event_types(aion, id)) == :workflow_timed_out
    end

    test "execution_timeout and a termination hold across SIGKILL of the VM", %{tmp_dir: dir} do
      db = Path.join(dir, "killed.db")
      script = Path.expand("../../support/endings_child.exs", __DIR__)
      vm = Aion.Test.ChildVM.start(script, [db, "start", "1000"])
      Aion.Test.ChildVM.await_lines(vm, "READY", 1)
      assert Aion.Test.ChildVM.kill(vm) == 128 + 9
      Process.sleep(1_100)

      vm = Aion.Test.ChildVM.start(script, [db, "resume", "1000"])
      assert {0, lines} = Aion.Test.ChildVM.await_exit(vm)
      assert Enum.any?(lines, &(&1 =~ ~r/^RESULT bounded .*reason: :timed_out/)), Enum.join(lines, "\n")
      assert Enum.any?(lines, &(&1 =~ ~r/^RESULT terminated .*reason: :terminated/)), Enum.join(lines, "\n")
      assert "LAST bounded workflow_timed_out" in lines
    end

    test "a workflow that finishes in time is not timed out later", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, id} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "quick", run_timeout: 200, execution_timeout: 200)
      :ok = Aion.signal(aion, id, :item, :done)
      assert {:ok, [:done]} = Aion.await(aion, id, 5_000)
      Process.sleep(300)
      assert {:ok, %{status: :completed}} = Aion.describe(aion, id)
      assert List.last(event_types(aion, id)) == :workflow_completed
    end

    test "bad timeouts are refused and start nothing", %{tmp_dir: dir} do
      aion = instance(dir)

      for bad <- [0, -5, 1.5, "1000", :infinity] do
        assert {:error, %Aion.Error{reason: :invalid_option, message: message}} =
                 Aion.start_workflow(aion, Collector, %{n: 1}, id: "bad", execution_timeout: bad)

        assert message =~ ":execution_timeout"

        assert {:error, %Aion.Error{reason: :invalid_option}} =
                 Aion.signal_with_start(aion, Collector, %{n: 1}, :item, 1, id: "bad", run_timeout: bad)
      end

      assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "bad")
    end
  end

  defp history(aion, id) do
    {:ok, events} = Aion.history(aion, id)
    events
  end
end
