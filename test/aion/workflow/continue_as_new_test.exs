defmodule Aion.Workflow.ContinueAsNewTest do
  # continue_as_new/2, Aion.runs/2, run-scoped describe and query, and
  # history_size/0, through the real NIF and SQLite files.
  use Aion.Case, async: true

  alias Aion.Ownership
  alias Aion.Test.{BadContinue, Carried, CarrySignals, Chain, Finisher, Switcher}

  @moduletag :tmp_dir
  @moduletag timeout: 180_000

  @workflows [Chain, CarrySignals, Switcher, Finisher, Carried, BadContinue]

  defp instance(dir, opts \\ []) do
    start_instance(Keyword.merge([store: {:sqlite, Path.join(dir, "aion.db")}, workflows: @workflows], opts))
  end

  defp chain(left, extra \\ %{}), do: Map.merge(%{left: left, total: 0}, extra)

  defp awaiters(aion, id), do: length(Registry.lookup(Aion.Awaiters, {aion, id}))

  # Every run but the last continued as new, each the child of the one before.
  defp assert_chain(runs, last_status) do
    {ended, [last]} = Enum.split(runs, -1)
    assert Enum.all?(ended, &(&1.status == :continued_as_new))
    assert last.status == last_status
    assert hd(runs).parent_run_id == nil

    for [parent, child] <- Enum.chunk_every(runs, 2, 1, :discard) do
      assert child.parent_run_id == parent.run_id
      assert DateTime.compare(child.started_at, parent.closed_at) in [:gt, :eq]
    end

    assert length(Enum.uniq_by(runs, & &1.run_id)) == length(runs)
  end

  test "a chain ends with the right result; runs/2 lists each run oldest first; awaiters from before the first continue get the final result",
       %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, Chain, chain(5, %{gate: true}), id: "chain")
    waiters = for _ <- 1..3, do: Task.async(fn -> Aion.await(aion, id, 30_000) end)
    eventually(fn -> awaiters(aion, id) == 3 end)
    :ok = Aion.signal(aion, id, :go, :go)

    assert Enum.map(waiters, &Task.await(&1, 30_000)) == List.duplicate({:ok, 5 + 4 + 3 + 2 + 1}, 3)
    assert {:ok, 15} = Aion.await(aion, id, 0)

    {:ok, runs} = Aion.runs(aion, id)
    assert length(runs) == 6
    assert_chain(runs, :completed)
    assert Enum.all?(runs, &(&1.workflow_type == "Aion.Test.Chain"))

    types = event_types(aion, id)
    assert Enum.count(types, &(&1 == :workflow_continued_as_new)) == 5
    assert Enum.count(types, &(&1 == :workflow_started)) == 6

    assert {:error, %Aion.Error{reason: :not_found}} = Aion.runs(aion, "nobody")
    assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.runs(aion, 42)
  end

  test "a signal recorded before the continue and not taken is taken once, by the next run", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, CarrySignals, %{phase: 1}, id: "carry")
    :ok = Aion.signal(aion, id, :item, :one)
    :ok = Aion.signal(aion, id, :item, :two)
    :ok = Aion.signal(aion, id, :go, :go)
    assert {:ok, [:one, :two]} = Aion.await(aion, id, 10_000)

    {:ok, [first, second]} = Aion.runs(aion, id)
    {:ok, events} = Aion.history(aion, id)
    {before, [_continued | later]} = Enum.split_while(events, &(&1.type != :workflow_continued_as_new))

    # Recorded again in the next run, after its start, and taken there once.
    assert [%{type: :workflow_started, run_id: run_id, parent_run_id: parent}, %{type: :signal_received, payload: :two} = again | rest] = later
    assert {run_id, parent} == {second.run_id, first.run_id}
    assert [%{received_seq: seq}] = for(%{type: :signal_consumed} = event <- rest, do: event)
    assert seq == again.seq
    assert Enum.count(before, &match?(%{type: :signal_consumed, signal_name: "item"}, &1)) == 1
  end

  test "module: switches the workflow type", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, Switcher, %{n: 21}, id: "switch")
    assert {:ok, {:finished, 42}} = Aion.await(aion, id, 10_000)
    {:ok, runs} = Aion.runs(aion, id)
    assert Enum.map(runs, & &1.workflow_type) == ["Aion.Test.Switcher", "Aion.Test.Finisher"]
    assert_chain(runs, :completed)
    assert {:ok, %{workflow_type: "Aion.Test.Finisher", status: :completed}} = Aion.describe(aion, id)
  end

  test "a process spawned for the type a workflow had before it switched runs the type of the run it loads", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: 30)
    {:ok, id} = Aion.start_workflow(aion, Switcher, %{n: 5, hold: true}, id: "stale")
    # The Finisher run waits for :finish and is evicted.
    eventually(fn -> match?({:ok, [_, %{status: :running}]}, Aion.runs(aion, id)) and Aion.Engine.terminal(Aion.Instance.lookup(aion) |> elem(1) |> Map.fetch!(:engine), id) == {:ok, :running} and Ownership.run_owner(aion, id) == nil end)

    # A wake-up decided on the old type (as a sweep that listed it before the switch would).
    {:ok, pid} = Aion.Run.Process.resume(aion, Switcher, id)
    monitor = Process.monitor(pid)
    assert_receive {:DOWN, ^monitor, :process, ^pid, {:shutdown, :aion_evicted}}, 5_000
    assert {:ok, [_, _]} = Aion.runs(aion, id)

    :ok = Aion.signal(aion, id, :finish, :now)
    assert {:ok, {:finished, 10}} = Aion.await(aion, id, 10_000)
  end

  test "search attributes and what is left of the execution timeout carry over", %{tmp_dir: dir} do
    aion = instance(dir)

    {:ok, id} =
      Aion.start_workflow(aion, Carried, %{step: 0}, id: "carried", execution_timeout: 3_000, run_timeout: 60_000, search_attributes: %{"customer" => "ada"})

    eventually(fn -> match?({:ok, [_, _]}, Aion.runs(aion, id)) end)
    assert {:ok, %{search_attributes: %{"customer" => "ada", "stage" => "one"}, status: :running}} = Aion.describe(aion, id)
    assert {:ok, %{workflows: [%{workflow_id: "carried"}]}} = Aion.list(aion, search: %{"stage" => "one", "customer" => "ada"})

    {:ok, events} = Aion.history(aion, id)
    [first, second] = for %{type: :workflow_started} = event <- events, do: event
    assert {first.execution_timeout_ms, first.run_timeout_ms} == {3_000, 60_000}
    # The first run slept 50 ms before it continued: the next one has less.
    assert second.execution_timeout_ms <= 2_950
    assert second.run_timeout_ms == 60_000
    spent = DateTime.diff(second.recorded_at, first.recorded_at, :millisecond)
    assert_in_delta second.execution_timeout_ms, 3_000 - spent, 1

    # It ends when the workflow's 3 s are up, not 3 s after the second run began.
    assert {:error, %Aion.Error{reason: :timed_out}} = Aion.await(aion, id, 30_000)
    {:ok, runs} = Aion.runs(aion, id)
    assert_chain(runs, :timed_out)
    ended = List.last(runs).closed_at
    assert DateTime.diff(ended, first.recorded_at, :millisecond) >= 3_000
  end

  test "describe, query and status: the latest run by default, any run with run_id:", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, Chain, chain(2, %{hold: true}), id: "scoped")
    eventually(fn -> match?({:ok, [_, _, %{status: :running}]}, Aion.runs(aion, id)) end)
    {:ok, [first, second, third]} = Aion.runs(aion, id)

    assert {:ok, latest} = Aion.describe(aion, id)
    assert %{run_id: run_id, parent_run_id: parent, status: :running} = latest
    assert {run_id, parent} == {third.run_id, second.run_id}
    assert latest.history_size.events >= 1
    assert {:ok, ^latest} = Aion.describe(aion, id, run_id: third.run_id) |> without_volatile(latest)

    assert {:ok, old} = Aion.describe(aion, id, run_id: first.run_id)
    assert %{status: :continued_as_new, parent_run_id: nil, pending: [], first_seq: 1} = old
    # workflow_started and workflow_continued_as_new
    assert old.history_size.events == 2
    assert old.history_size.bytes > 0
    assert old.closed_at != nil

    # The latest run answers from its process; an older one by replay.
    assert {:ok, %{left: 0, total: 3}} = Aion.query(aion, id, :state)
    assert {:ok, %{left: 2, total: 0}} = Aion.query(aion, id, :state, nil, run_id: first.run_id)
    assert {:ok, %{left: 1, total: 2}} = Aion.query(aion, id, :state, nil, run_id: second.run_id)

    unknown = "00000000-0000-4000-8000-000000000000"
    assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, id, run_id: unknown)
    assert {:error, %Aion.Error{reason: :not_found}} = Aion.query(aion, id, :state, nil, run_id: unknown)
    assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.describe(aion, id, run_id: "nope")
    assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.describe(aion, id, other: 1)
    assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.query(aion, id, :state, nil, run_id: 7)

    :ok = Aion.signal(aion, id, :finish, :now)
    assert {:ok, 3} = Aion.await(aion, id, 10_000)
    # Status after the end: the last run's, never an older run's ending.
    assert {:ok, %{status: :completed, run_id: ^run_id}} = Aion.describe(aion, id)
    assert {:ok, %{status: :continued_as_new}} = Aion.describe(aion, id, run_id: second.run_id)
    assert {:ok, %{left: 0}} = Aion.query(aion, id, :state)
  end

  defp without_volatile({:ok, description}, reference), do: {:ok, %{description | pid: reference.pid, resident: reference.resident}}

  test "continue_as_new with an input that cannot be stored, or a module that is not a workflow of the instance, raises and records nothing",
       %{tmp_dir: dir} do
    aion = instance(dir, workflows: [BadContinue])
    {:ok, id} = Aion.start_workflow(aion, BadContinue, nil, id: "bad")
    assert {:ok, [pid, fun, not_workflow, not_ours, unknown]} = Aion.await(aion, id, 10_000)
    assert pid =~ "the input of continue_as_new/2"
    assert fun =~ "the input of continue_as_new/2"
    assert not_workflow =~ "expected :module to be a workflow module"
    assert not_ours =~ "Aion.Test.Finisher is not a workflow of instance"
    assert unknown =~ "unknown option :modul"
    assert event_types(aion, id) == [:workflow_started, :workflow_completed]
    assert {:ok, [%{status: :completed}]} = Aion.runs(aion, id)
  end

  test "history_size/0 counts what the code has seen, and describe the whole run", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, Chain, chain(0, %{hold: true, gate: true}), id: "sized")
    :ok = Aion.signal(aion, id, :go, :go)
    eventually(fn -> match?({:ok, %{pending: []}}, Aion.describe(aion, id)) and length(event_types(aion, id)) == 3 end)
    {:ok, description} = Aion.describe(aion, id)
    # workflow_started, signal_received, signal_consumed
    assert description.history_size.events == 3
    {:ok, events} = Aion.history(aion, id)
    started = hd(events)
    assert description.history_size.bytes == byte_size(:erlang.term_to_binary(started.input)) + byte_size(:erlang.term_to_binary(:go))
  end

  test "runs/2 on a chain of 1,000 runs", %{tmp_dir: dir} do
    aion = instance(dir)
    {:ok, id} = Aion.start_workflow(aion, Chain, chain(999), id: "long")
    assert {:ok, total} = Aion.await(aion, id, 170_000)
    assert total == div(999 * 1_000, 2)
    {:ok, runs} = Aion.runs(aion, id)
    assert length(runs) == 1_000
    assert_chain(runs, :completed)
    # The latest run is read alone: its start and its ending.
    assert {:ok, %{history_size: %{events: 2}, first_seq: first_seq}} = Aion.describe(aion, id)
    assert first_seq == 2 * 999 + 1
  end

  test "a run evicted while it sleeps, woken, continues as new; its successor sleeps, is evicted and finishes", %{tmp_dir: dir} do
    aion = instance(dir, evict_idle_after: 30)
    test = self()

    watcher =
      spawn_link(fn -> watch(aion, "sleepy", test) end)

    {:ok, id} = Aion.start_workflow(aion, Chain, chain(2, %{sleep: 300}), id: "sleepy")
    assert {:ok, 3} = Aion.await(aion, id, 30_000)
    send(watcher, :stop)
    assert_receive {:exits, reasons}, 5_000

    # Each of the three runs was evicted while it slept (each sleeps once,
    # before anything else): the first two continued as new from a process
    # woken by their timer.
    assert Enum.count(reasons, &(&1 == {:shutdown, :aion_evicted})) >= 3
    {:ok, runs} = Aion.runs(aion, id)
    assert length(runs) == 3
    assert_chain(runs, :completed)
  end

  # Collects the exit reasons of every process that owns the workflow's run.
  defp watch(aion, id, test, seen \\ MapSet.new(), reasons \\ []) do
    receive do
      :stop -> send(test, {:exits, Enum.reverse(reasons)})
      {:DOWN, _, :process, _, reason} -> watch(aion, id, test, seen, [reason | reasons])
    after
      1 ->
        case Ownership.run_owner(aion, id) do
          pid when is_pid(pid) ->
            if MapSet.member?(seen, pid) do
              watch(aion, id, test, seen, reasons)
            else
              Process.monitor(pid)
              watch(aion, id, test, MapSet.put(seen, pid), reasons)
            end

          nil ->
            watch(aion, id, test, seen, reasons)
        end
    end
  end
end
