defmodule AionTest do
  use Aion.Case, async: true

  alias Aion.Test.{Returns, Sequence, Sleeper}

  @moduletag :tmp_dir

  setup %{tmp_dir: dir} do
    name = start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Sequence, Returns, Sleeper])
    %{aion: name}
  end

  test "a workflow runs its activities and sleep and completes with its result", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sequence, %{n: 1})
    assert {:ok, %{n: 1, result: 3}} = Aion.await(aion, id, 5_000)

    assert event_types(aion, id) == [
             :workflow_started,
             :activity_scheduled,
             :activity_completed,
             :timer_started,
             :timer_fired,
             :activity_scheduled,
             :activity_completed,
             :workflow_completed
           ]
  end

  test "{:ok, v} and a plain v complete the run with v", %{aion: aion} do
    {:ok, a} = Aion.start_workflow(aion, Returns, {:ok, [1, :two, "three"]})
    {:ok, b} = Aion.start_workflow(aion, Returns, {:plain, %{nested: {:tuple, 1.5}}})
    assert Aion.await(aion, a) == {:ok, [1, :two, "three"]}
    assert Aion.await(aion, b) == {:ok, %{nested: {:tuple, 1.5}}}
  end

  test "{:error, reason} fails the run with reason", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Returns, {:error, :out_of_stock})
    assert Aion.await(aion, id) == {:error, :out_of_stock}
    assert {:ok, %{status: :failed}} = Aion.describe(aion, id)
  end

  test "a raise fails the run with the exception's message", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Returns, {:raise, "card declined"})
    assert {:error, %Aion.Error{reason: :workflow_raised, message: message}} = Aion.await(aion, id)
    assert message =~ "(RuntimeError) card declined"
  end

  test "an exit fails the run", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Returns, {:exit, :gone})
    assert {:error, %Aion.Error{reason: :workflow_raised, message: message}} = Aion.await(aion, id)
    assert message =~ ":gone"
  end

  test "a result that cannot be stored fails the run with a clear error", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Returns, :pid)
    assert {:error, %Aion.Error{reason: :unserializable, message: message}} = Aion.await(aion, id)
    assert message =~ "the workflow's result cannot be stored: it holds a pid"
  end

  test "a custom id; a running id cannot start again; a finished one starts a new run", %{aion: aion} do
    assert {:ok, "order-1"} = Aion.start_workflow(aion, Sleeper, 200, id: "order-1")

    assert {:error, %Aion.Error{reason: :already_started, message: message}} =
             Aion.start_workflow(aion, Sleeper, 1, id: "order-1")

    assert message =~ "order-1"
    assert {:ok, :woke} = Aion.await(aion, "order-1")

    {:ok, before} = Aion.describe(aion, "order-1")
    assert {:ok, "order-1"} = Aion.start_workflow(aion, Returns, {:ok, 2}, id: "order-1")
    assert {:ok, 2} = Aion.await(aion, "order-1")
    {:ok, now} = Aion.describe(aion, "order-1")
    assert {:ok, [%{run_id: first, status: :completed}, %{run_id: second, parent_run_id: nil, status: :completed}]} =
             Aion.runs(aion, "order-1")

    assert {first, second} == {before.run_id, now.run_id}
    assert now.run_id != before.run_id
    assert now.workflow_type == "Aion.Test.Returns"
  end

  test "await times out on a running workflow and can be called again", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 300)
    assert {:error, %Aion.Error{reason: :timeout}} = Aion.await(aion, id, 10)
    assert {:ok, :woke} = Aion.await(aion, id, 5_000)
    assert {:ok, :woke} = Aion.await(aion, id, 0)
  end

  test "several processes can await one workflow", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 50)
    waiters = for _ <- 1..5, do: Task.async(fn -> Aion.await(aion, id, 5_000) end)
    assert Enum.map(waiters, &Task.await/1) == List.duplicate({:ok, :woke}, 5)
  end

  test "describe shows status, timestamps and pending work", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sleeper, 60_000)
    # The timer is pending once its timer_started is recorded.
    description = eventually(fn -> match?({:ok, %{pending: [_]}}, Aion.describe(aion, id)) end, aion, id)

    assert %{
             workflow_id: ^id,
             workflow_type: "Aion.Test.Sleeper",
             status: :running,
             closed_at: nil,
             history_length: 2,
             pending: [%{command: 0, kind: :timer, fire_at: %DateTime{} = fire_at}],
             first_seq: 1,
             parent_run_id: nil
           } = description

    # 60 s from when the code slept, shortly after the start (a busy
    # machine can take a while to run it).
    assert DateTime.diff(fire_at, description.started_at, :millisecond) in 60_000..65_000
  end

  test "history renders as a timeline", %{aion: aion} do
    {:ok, id} = Aion.start_workflow(aion, Sequence, %{n: 5})
    {:ok, _} = Aion.await(aion, id)
    {:ok, events} = Aion.history(aion, id)
    assert [%{seq: 1, type: :workflow_started, input: %{n: 5}, recorded_at: %DateTime{}} | _] = events
    timeline = Aion.History.format(events)
    assert timeline =~ "workflow_started"
    assert timeline =~ "#0 Aion.Test.Activities.add  input: [5, 1]"
    assert timeline =~ "result: %{n: 5, result: 7}"
    assert length(String.split(timeline, "\n")) == 8
  end

  test "unknown workflow ids and instances are clear errors", %{aion: aion} do
    assert {:error, %Aion.Error{reason: :not_found}} = Aion.await(aion, "nope")
    assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "nope")
    assert {:error, %Aion.Error{reason: :not_found}} = Aion.history(aion, "nope")
    assert {:error, %Aion.Error{reason: :not_running}} = Aion.start_workflow(:no_such_instance, Sequence, 1)
  end

  test "several instances run side by side in one VM", %{aion: aion, tmp_dir: dir} do
    other = start_instance(store: {:sqlite, Path.join(dir, "other.db")}, workflows: [Sequence])
    memory = start_instance(store: :memory, workflows: [Sequence])

    {:ok, a} = Aion.start_workflow(aion, Sequence, %{n: 10}, id: "same-id")
    {:ok, b} = Aion.start_workflow(other, Sequence, %{n: 20}, id: "same-id")
    {:ok, c} = Aion.start_workflow(memory, Sequence, %{n: 30}, id: "same-id")
    assert {:ok, %{result: 12}} = Aion.await(aion, a)
    assert {:ok, %{result: 22}} = Aion.await(other, b)
    assert {:ok, %{result: 32}} = Aion.await(memory, c)
  end

  test "many concurrent workflows all complete", %{aion: aion} do
    ids = for n <- 1..200, do: elem(Aion.start_workflow(aion, Sequence, %{n: n}), 1)
    results = Enum.map(ids, &Aion.await(aion, &1, 30_000))
    assert results == for(n <- 1..200, do: {:ok, %{n: n, result: n + 2}})
  end

  # The workflow records its timer asynchronously after start_workflow
  # returns; poll describe (bounded) until it shows.
  defp eventually(check, aion, id, attempts \\ 1_000) do
    cond do
      check.() ->
        {:ok, description} = Aion.describe(aion, id)
        description

      attempts > 0 ->
        receive after: (2 -> eventually(check, aion, id, attempts - 1))

      true ->
        flunk("condition never held")
    end
  end
end
