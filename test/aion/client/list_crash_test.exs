defmodule Aion.Client.ListCrashTest do
  # Visibility after SIGKILL: a separate BEAM starts workflows (completing,
  # failing, upserting search attributes) and is killed while it starts
  # more; a new instance on the same SQLite file lists and counts the right
  # statuses and attributes, and every workflow's listing agrees with its
  # history (attributes and rows are written in the append's transaction).
  use Aion.Case, async: true

  alias Aion.Test.ChildVM
  alias Aion.Test.Visibility.{Alpha, Upserter}

  @moduletag :tmp_dir

  # The latest run's attributes and status, from the history itself.
  defp from_history(aion, id) do
    {:ok, events} = Aion.history(aion, id)

    attributes =
      Enum.reduce(events, %{}, fn
        %{type: :workflow_started, search_attributes: set}, _ -> set
        %{type: :search_attributes_updated, attributes: set}, acc -> Map.merge(acc, set)
        _, acc -> acc
      end)

    status =
      Enum.reduce(events, nil, fn
        %{type: :workflow_started}, _ -> :running
        %{type: :workflow_completed}, _ -> :completed
        %{type: :workflow_failed}, _ -> :failed
        _, status -> status
      end)

    {status, attributes}
  end

  test "after SIGKILL a new VM lists and counts the right statuses and attributes", %{
    tmp_dir: dir
  } do
    db = Path.join(dir, "killed.db")
    vm = ChildVM.start(Path.expand("../../support/visibility_child.exs", __DIR__), [db])
    ChildVM.read_until(vm, "READY")
    ChildVM.await_lines(vm, "MORE", 5)
    assert ChildVM.kill(vm) == 128 + 9

    # First without Upserter: its runs stay as the kill left them (an
    # instance does not run types it does not know), so that listings and
    # histories read one after the other describe the same state.
    aion = start_instance(store: {:sqlite, db}, workflows: [Alpha])
    await_recovery(aion)

    assert {:ok, 20} = Aion.count(aion, status: :completed, search: %{"batch" => "k"})
    assert {:ok, 10} = Aion.count(aion, status: :failed, search: %{"batch" => "k"})
    assert {:ok, 10} = Aion.count(aion, status: :running, search: %{"batch" => "k"})
    assert {:ok, 10} = Aion.count(aion, type: Upserter, search: %{"stage" => "upserted"})

    {:ok, %{workflows: upserted, cursor: nil}} =
      Aion.list(aion, search: %{"stage" => "upserted", "i" => {:between, 1, 10}})

    assert Enum.sort(Enum.map(upserted, & &1.workflow_id)) ==
             Enum.sort(for i <- 1..10, do: "up-#{i}")

    for %{workflow_id: "up-" <> i, search_attributes: attributes, status: :running} <- upserted do
      assert attributes == %{"stage" => "upserted", "batch" => "k", "i" => String.to_integer(i)}
    end

    {:ok, %{workflows: done}} =
      Aion.list(aion, [status: :completed, search: %{"i" => {:>, 15}, "batch" => "k"}],
        limit: 1_000
      )

    assert done |> Enum.map(& &1.workflow_id) |> Enum.sort() ==
             Enum.sort(for i <- 16..20, do: "done-#{i}")

    # Every workflow in the store, whatever the kill interrupted, is listed
    # as its history says.
    {:ok, %{workflows: all, cursor: nil}} = Aion.list(aion, [], limit: 1_000)
    assert length(all) >= 45

    for row <- all do
      assert {row.status, row.search_attributes} == from_history(aion, row.workflow_id),
             row.workflow_id
    end

    # And the running ones carry on: signalled, they complete and stay listed.
    stop_instance(aion)
    aion = start_instance(store: {:sqlite, db}, workflows: [Alpha, Upserter])
    for i <- 1..10, do: :ok = Aion.signal(aion, "up-#{i}", :next, nil)
    for i <- 1..10, do: {:ok, :upserted} = Aion.await(aion, "up-#{i}", 5_000)
    assert {:ok, 10} = Aion.count(aion, status: :completed, search: %{"stage" => "upserted"})
  end
end
