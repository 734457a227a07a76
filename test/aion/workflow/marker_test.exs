defmodule Aion.Workflow.MarkerTest do
  use Aion.Case, async: true

  alias Aion.Ownership
  alias Aion.Test.{ChildVM, MarkerMisuse, Pricing, PricingPatched, PricingUnpatched, RandomBounds, RandomValues}

  @moduletag :tmp_dir

  @uuid_v4 ~r/\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\z/

  setup %{tmp_dir: dir} do
    %{db: Path.join(dir, "aion.db")}
  end

  defp markers(aion, id) do
    {:ok, events} = Aion.history(aion, id)
    for %{type: :marker_recorded} = event <- events, do: {event.name, event.value}
  end

  describe "random/0, random/1 and uuid/0" do
    test "return on replay, after the run's process is killed, what they returned live", %{db: db} do
      listener = listen()
      aion = start_instance(store: {:sqlite, db}, workflows: [RandomValues])
      {:ok, id} = Aion.start_workflow(aion, RandomValues, listener)
      assert_receive {:gate, first, live}, 5_000

      assert %{float: float, die: die, stepped: stepped, uuid: uuid} = live
      assert is_float(float) and float >= 0.0 and float < 1.0
      assert die in 1..6
      assert stepped in [10, 5, 0, -5, -10]
      assert uuid =~ @uuid_v4

      Process.exit(eventually(fn -> Ownership.run_owner(aion, id) end), :kill)

      # The respawned run replays the draws; its activity gets them again.
      assert_receive {:gate, second, ^live}, 5_000
      assert second != first
      send(second, :open)
      assert Aion.await(aion, id) == {:ok, live}

      assert markers(aion, id) == [{"random", float}, {"random", die}, {"random", stepped}, {"uuid", uuid}]
    end

    test "return after a SIGKILL of the engine's VM what they returned before it", %{db: db} do
      script = Path.expand("../../support/marker_child.exs", __DIR__)

      vm = ChildVM.start(script, [db, "start"], [{"MARKER_HANG", "1"}])
      ["VALUES " <> before] = ChildVM.await_lines(vm, "VALUES ", 1)
      assert ChildVM.kill(vm) == 128 + 9

      vm = ChildVM.start(script, [db, "resume"])
      assert {0, lines} = ChildVM.await_exit(vm)
      assert "VALUES " <> before in lines
      assert "RESULT {:ok, #{before}}" in lines

      aion = start_instance(store: {:sqlite, db}, workflows: [Aion.Test.RandomValuesReported])
      assert [{"random", _}, {"random", _}, {"random", _}, {"uuid", _}] = values = markers(aion, "values")
      {:ok, %{float: float, die: die, stepped: stepped, uuid: uuid}} = Aion.await(aion, "values")
      assert Enum.map(values, &elem(&1, 1)) == [float, die, stepped, uuid]
    end

    test "random/1 draws every value of a range, and only those, respecting its step", %{db: db} do
      aion = start_instance(store: {:sqlite, db}, workflows: [RandomBounds])
      ranges = [1..6, 0..20//4, 3..-3//-3, 7..7]
      {:ok, id} = Aion.start_workflow(aion, RandomBounds, {ranges, 100})
      assert {:ok, drawn} = Aion.await(aion, id)

      for range <- ranges do
        assert drawn[range] |> Enum.uniq() |> Enum.sort() == Enum.sort(Enum.to_list(range))
      end

      assert length(markers(aion, id)) == 100 * length(ranges)
    end

    test "uuid/0 gives a fresh version 4 UUID each call", %{db: db} do
      aion = start_instance(store: {:sqlite, db}, workflows: [RandomValues])
      listener = listen()
      {:ok, a} = Aion.start_workflow(aion, RandomValues, listener)
      {:ok, b} = Aion.start_workflow(aion, RandomValues, listener)
      assert_receive {:gate, gate_a, %{uuid: uuid_a}}, 5_000
      assert_receive {:gate, gate_b, %{uuid: uuid_b}}, 5_000
      assert uuid_a =~ @uuid_v4 and uuid_b =~ @uuid_v4
      assert uuid_a != uuid_b
      send(gate_a, :open)
      send(gate_b, :open)
      assert {:ok, _} = Aion.await(aion, a)
      assert {:ok, _} = Aion.await(aion, b)
    end
  end

  describe "patched?/1" do
    # Runs `code` until it waits at its gate, then stops the instance and
    # starts one whose module for "test.pricing" is `changed`.
    defp record_with(db, code, changed, id) do
      listener = listen()
      aion = start_instance(store: {:sqlite, db}, workflows: [code])
      {:ok, ^id} = Aion.start_workflow(aion, code, listener, id: id)
      assert_receive {:gate, _activity, ^id}, 5_000
      stop_instance(aion)
      {start_instance(store: {:sqlite, db}, workflows: [changed]), listener}
    end

    defp open_gate(id) do
      assert_receive {:gate, activity, ^id}, 5_000
      send(activity, :open)
    end

    test "a run recorded before the patch takes the old branch; new runs take the new one", %{db: db} do
      {aion, listener} = record_with(db, Pricing, PricingPatched, "old")
      assert Aion.Workflow.type(Pricing) == Aion.Workflow.type(PricingPatched)

      # Replayed by the patched code: history holds the gate where the check
      # is, so the check says no and records nothing, now or later.
      open_gate("old")
      assert Aion.await(aion, "old") == {:ok, {:old, 100, false}}
      assert markers(aion, "old") == []
      assert Enum.reject(event_types(aion, "old"), &(&1 == :activity_started)) ==
               [:workflow_started, :activity_scheduled, :activity_completed, :activity_scheduled, :activity_completed, :workflow_completed]

      # A new run reaches the check live: the marker is recorded once.
      {:ok, fresh} = Aion.start_workflow(aion, PricingPatched, listener)
      open_gate(fresh)
      assert Aion.await(aion, fresh) == {:ok, {:new, 105, true}}
      assert markers(aion, fresh) == [{"patch:fee", "fee"}]
    end

    test "a run recorded with the patch replays the new branch", %{db: db} do
      {aion, _listener} = record_with(db, PricingPatched, PricingPatched, "new")
      open_gate("new")
      assert Aion.await(aion, "new") == {:ok, {:new, 105, true}}
      assert markers(aion, "new") == [{"patch:fee", "fee"}]
    end

    test "removing the check while runs recorded with it exist is non-determinism naming the marker", %{db: db} do
      {aion, _listener} = record_with(db, PricingPatched, PricingUnpatched, "removed")

      blocked =
        eventually(fn ->
          with {:ok, %{blocked: %{} = blocked}} <- Aion.describe(aion, "removed"), do: blocked, else: (_ -> nil)
        end)

      assert %{code: "AION-ND001", message: message} = blocked
      assert message =~ "at command #1: history recorded marker `patch:fee`, the workflow code issued activity"
    end
  end

  describe "bad input" do
    test "raises ArgumentError before anything is recorded", %{db: db} do
      aion = start_instance(store: {:sqlite, db}, workflows: [MarkerMisuse])
      {:ok, id} = Aion.start_workflow(aion, MarkerMisuse, nil)
      assert {:ok, {messages, 5}} = Aion.await(aion, id)

      assert messages == [
               "random/1 expects a non-empty range, got: 1..0//1",
               "random/1 expects a range of integers (such as 1..6), got: :dice",
               "random/1 expects a range of integers (such as 1..6), got: [1, 2, 3]",
               ~s(patched?/1 expects a change id that is a non-empty string or an atom, got: ""),
               "patched?/1 expects a change id that is a non-empty string or an atom, got: nil",
               "patched?/1 expects a change id that is a non-empty string or an atom, got: 42",
               ~s(patched?/1 expects a change id that is valid UTF-8, got: <<255>>)
             ]

      assert markers(aion, id) == [{"random", 5}]
    end

    test "outside workflow code, each raises a clear error" do
      for call <- [
            &Aion.Workflow.random/0,
            fn -> Aion.Workflow.random(1..6) end,
            &Aion.Workflow.uuid/0,
            fn -> Aion.Workflow.patched?(:fee) end
          ] do
        assert_raise RuntimeError, "Aion workflow functions can only be called from workflow code (inside run/1)", call
      end
    end
  end
end
