defmodule Aion.Client.IdReuseTest do
  # Id reuse on start (:id_reuse, :if_running), through the real NIF and
  # SQLite files, including a start retried after SIGKILL of the VM.
  use Aion.Case, async: true

  alias Aion.Test.{ChildVM, Collector, Sequence}

  @moduletag :tmp_dir

  defp instance(dir, file \\ "aion.db") do
    start_instance(store: {:sqlite, Path.join(dir, file)}, workflows: [Collector, Sequence])
  end

  defp starts(aion, id), do: Enum.count(event_types(aion, id), &(&1 == :workflow_started))

  # A finished workflow of each kind: "done" completed, "stopped" terminated.
  defp finished(aion) do
    {:ok, "done"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "done")
    :ok = Aion.signal(aion, "done", :item, 1)
    {:ok, [1]} = Aion.await(aion, "done", 5_000)
    {:ok, "stopped"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "stopped")
    :ok = Aion.terminate(aion, "stopped")
  end

  test "id_reuse: :allow_duplicate (the default) starts a new run of a finished id", %{tmp_dir: dir} do
    aion = instance(dir)
    finished(aion)
    assert {:ok, "done"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "done")
    assert {:ok, "stopped"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "stopped", id_reuse: :allow_duplicate)
    assert starts(aion, "done") == 2 and starts(aion, "stopped") == 2
    assert {:ok, %{status: :running}} = Aion.describe(aion, "done")
  end

  test "id_reuse: :allow_duplicate_failed_only refuses after a completion, allows after a termination", %{tmp_dir: dir} do
    aion = instance(dir)
    finished(aion)

    assert {:error, %Aion.Error{reason: :already_started, message: message}} =
             Aion.start_workflow(aion, Collector, %{n: 1}, id: "done", id_reuse: :allow_duplicate_failed_only)

    assert message =~ "completed"
    assert starts(aion, "done") == 1
    assert {:ok, "stopped"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "stopped", id_reuse: :allow_duplicate_failed_only)
  end

  test "id_reuse: :reject_duplicate refuses any finished id, and signal_with_start follows it", %{tmp_dir: dir} do
    aion = instance(dir)
    finished(aion)

    for id <- ["done", "stopped"] do
      assert {:error, %Aion.Error{reason: :already_started}} =
               Aion.start_workflow(aion, Collector, %{n: 1}, id: id, id_reuse: :reject_duplicate)

      assert {:error, %Aion.Error{reason: :already_started}} =
               Aion.signal_with_start(aion, Collector, %{n: 1}, :item, 1, id: id, id_reuse: :reject_duplicate)

      assert starts(aion, id) == 1
    end
  end

  test "if_running: :use_existing returns the running workflow; :error (the default) refuses", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, "live"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "live")
    assert {:error, %Aion.Error{reason: :already_started}} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "live")
    assert {:error, %Aion.Error{reason: :already_started}} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "live", if_running: :error)
    assert {:ok, "live"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "live", if_running: :use_existing)
    assert starts(aion, "live") == 1

    # A finished workflow refused by its id reuse policy is not "running".
    finished(aion)

    assert {:error, %Aion.Error{reason: :already_started}} =
             Aion.start_workflow(aion, Collector, %{n: 1}, id: "done", if_running: :use_existing, id_reuse: :reject_duplicate)
  end

  test "bad options are refused and start nothing", %{tmp_dir: dir} do
    aion = instance(dir)

    for opts <- [[id_reuse: :sometimes], [id_reuse: "reject_duplicate"], [id_reuse: nil], [if_running: :replace], [if_running: 1]] do
      assert {:error, %Aion.Error{reason: :invalid_option, message: message}} =
               Aion.start_workflow(aion, Collector, %{n: 1}, [id: "bad"] ++ opts)

      assert message =~ inspect(hd(Keyword.keys(opts)))
    end

    assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "bad")
  end

  test "a start retried with if_running: :use_existing after SIGKILL of the VM finds the run it started", %{tmp_dir: dir} do
    db = Path.join(dir, "killed.db")
    script = Path.expand("../../support/id_reuse_child.exs", __DIR__)
    vm = ChildVM.start(script, [db])
    ChildVM.await_lines(vm, "STARTED", 1)
    assert ChildVM.kill(vm) == 128 + 9

    aion = start_instance(store: {:sqlite, db}, workflows: [Collector])
    assert {:ok, "order-1"} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "order-1", if_running: :use_existing)
    assert starts(aion, "order-1") == 1
    :ok = Aion.signal(aion, "order-1", :item, :paid)
    assert {:ok, [:paid]} = Aion.await(aion, "order-1", 5_000)
  end
end
