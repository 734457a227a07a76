defmodule Aion.Workflow.ChildTest do
  # Child workflows and signals between workflows, through the real NIF and
  # SQLite files: results, failures, parent close policies, cancellation
  # through generations, eviction, and bad input.
  use Aion.Case, async: true

  alias Aion.Ownership
  alias Aion.Test.{BadChildren, ChildCanceller, Collector, Doubler, Grandparent, Parent, SignalThenWait, Signaller}

  @moduletag :tmp_dir
  @moduletag timeout: 180_000

  @workflows [Doubler, Parent, Grandparent, ChildCanceller, Signaller, BadChildren, Collector, SignalThenWait]

  defp instance(dir, opts \\ []) do
    start_instance(Keyword.merge([store: {:sqlite, Path.join(dir, "aion.db")}, workflows: @workflows], opts))
  end

  defp events(aion, id) do
    {:ok, events} = Aion.history(aion, id)
    events
  end

  defp count(aion, id, type), do: Enum.count(events(aion, id), &(&1.type == type))

  describe "children" do
    test "return their results to the parent, recorded once each", %{tmp_dir: dir} do
      aion = instance(dir)
      children = [{%{n: 1}, []}, {%{n: 2}, [id: "two"]}, {%{n: 3, fail: true}, []}]
      {:ok, id} = Aion.start_workflow(aion, Parent, %{children: children}, id: "p")
      assert {:ok, [{:ok, 2}, {:ok, 4}, {:error, {:odd, 3}}]} = Aion.await(aion, id, 10_000)

      assert count(aion, id, :child_workflow_started) == 3
      assert count(aion, id, :child_workflow_completed) == 2
      assert count(aion, id, :child_workflow_failed) == 1
      # The child knows its parent; the default id is derived from the parent's.
      assert {:ok, 4} = Aion.await(aion, "two", 1_000)
      [%{parent_workflow_id: "p", parent_command: 1} | _] = events(aion, "two")
      [started | _] = for %{type: :child_workflow_started} = e <- events(aion, id), do: e
      assert String.starts_with?(started.child_workflow_id, "p/")
    end

    test "a child that waits wakes its evicted parent when it ends", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 50)
      {:ok, id} = Aion.start_workflow(aion, Parent, %{children: [{%{n: 20, wait: true}, [id: "waiter"]}]}, id: "evicted-parent")
      assert_eventually(fn -> Ownership.run_owner(aion, id) == nil and Ownership.run_owner(aion, "waiter") == nil end)
      :ok = Aion.signal(aion, "waiter", :go, 2)
      assert {:ok, [{:ok, 42}]} = Aion.await(aion, id, 10_000)
      assert count(aion, id, :child_workflow_completed) == 1
    end

    test "report cancellation, termination and a timeout as errors", %{tmp_dir: dir} do
      aion = instance(dir)
      assert {:ok, id} = Aion.start_workflow(aion, ChildCanceller, %{})
      assert {:ok, {:error, %Aion.Error{reason: :cancelled}}} = Aion.await(aion, id, 10_000)

      children = [{%{n: 1, wait: true}, [id: "to-terminate"]}, {%{n: 1, sleep: 60_000}, [id: "too-slow", execution_timeout: 200]}]
      {:ok, id} = Aion.start_workflow(aion, Parent, %{children: children}, id: "endings")
      assert_eventually(fn -> match?({:ok, %{status: :running}}, Aion.describe(aion, "to-terminate")) end)
      :ok = Aion.terminate(aion, "to-terminate", :enough)

      assert {:ok, [{:error, %Aion.Error{reason: :terminated, details: %{reason: :enough}}}, {:error, %Aion.Error{reason: :timed_out}}]} =
               Aion.await(aion, id, 10_000)
    end

    test "a taken id fails the child without running it", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, _} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "taken")
      {:ok, id} = Aion.start_workflow(aion, Parent, %{children: [{%{n: 1}, [id: "taken"]}]})
      assert {:ok, [{:error, %Aion.Error{reason: :already_started}}]} = Aion.await(aion, id, 10_000)
      assert {:ok, %{status: :running}} = Aion.describe(aion, "taken")
    end

    test "a parent fans out to 1,000 children and awaits them all", %{tmp_dir: dir} do
      aion = instance(dir)
      children = for n <- 1..1_000, do: {%{n: n}, []}
      {:ok, id} = Aion.start_workflow(aion, Parent, %{children: children}, id: "fan-out")
      assert {:ok, results} = Aion.await(aion, id, 120_000)
      assert results == for(n <- 1..1_000, do: {:ok, 2 * n})
      assert count(aion, id, :child_workflow_completed) == 1_000
    end
  end

  describe "parent close policies" do
    test "terminate (the default), request_cancel and abandon", %{tmp_dir: dir} do
      aion = instance(dir)

      children = [
        {%{n: 1, wait: true}, [id: "terminated"]},
        {%{n: 2, wait: true}, [id: "cancelled", parent_close: :request_cancel]},
        {%{n: 3, wait: true}, [id: "abandoned", parent_close: :abandon]}
      ]

      {:ok, id} = Aion.start_workflow(aion, Parent, %{children: children, then: :return})
      assert {:ok, :returned} = Aion.await(aion, id, 10_000)

      assert {:error, %Aion.Error{reason: :terminated}} = Aion.await(aion, "terminated", 10_000)
      assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, "cancelled", 10_000)
      :ok = Aion.signal(aion, "abandoned", :go, 1)
      assert {:ok, 7} = Aion.await(aion, "abandoned", 10_000)
    end

    test "cancelling a grandparent reaches its grandchildren", %{tmp_dir: dir} do
      aion = instance(dir)
      report = listen()
      children = [{%{n: 1, wait: true}, [id: "grandchild", parent_close: :request_cancel]}]
      {:ok, id} = Aion.start_workflow(aion, Grandparent, %{children: children, report: report}, id: "grandparent")
      assert_receive {:children_started, "grandparent-middle", ["grandchild"]}, 10_000
      assert_eventually(fn -> match?({:ok, %{status: :running}}, Aion.describe(aion, "grandchild")) end)
      :ok = Aion.cancel(aion, id, :stop)

      assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, id, 10_000)
      assert {:error, %Aion.Error{reason: :terminated}} = Aion.await(aion, "grandparent-middle", 10_000)
      assert {:error, %Aion.Error{reason: :cancelled}} = Aion.await(aion, "grandchild", 10_000)
    end
  end

  describe "signal_workflow/3" do
    test "delivers to a running workflow, once, and names the sender", %{tmp_dir: dir} do
      aion = instance(dir)
      {:ok, target} = Aion.start_workflow(aion, Collector, %{n: 2}, id: "target")
      sends = [{target, :item, 1}, {target, "item", 2}, {"nobody", :item, 3}]
      {:ok, id} = Aion.start_workflow(aion, Signaller, %{sends: sends}, id: "sender")

      assert {:ok, [:ok, :ok, {:error, %Aion.Error{reason: :not_found}}]} = Aion.await(aion, id, 10_000)
      assert {:ok, [1, 2]} = Aion.await(aion, target, 10_000)
      received = for %{type: :signal_received} = e <- events(aion, target), do: e.sent_by
      assert [_, _] = received
      assert Enum.all?(received, &String.starts_with?(&1, "sender/"))
      # A finished target is not running.
      {:ok, again} = Aion.start_workflow(aion, Signaller, %{sends: [{target, :item, 4}]})
      assert {:ok, [{:error, %Aion.Error{reason: :not_running}}]} = Aion.await(aion, again, 10_000)
    end
  end

  describe "signal_workflow/3 and eviction" do
    test "replays as it ran when a query replays an evicted sender, delivering nothing again", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 50)
      {:ok, target} = Aion.start_workflow(aion, Collector, %{n: 2}, id: "queried-target")
      {:ok, id} = Aion.start_workflow(aion, SignalThenWait, %{target: target})
      assert_eventually(fn -> Ownership.run_owner(aion, id) == nil end)
      assert {:ok, :sent} = Aion.query(aion, id, :state)
      assert count(aion, target, :signal_received) == 1
    end

    test "wakes an evicted target", %{tmp_dir: dir} do
      aion = instance(dir, evict_idle_after: 50)
      {:ok, target} = Aion.start_workflow(aion, Collector, %{n: 1}, id: "sleepy")
      assert_eventually(fn -> Ownership.run_owner(aion, target) == nil end)
      {:ok, id} = Aion.start_workflow(aion, Signaller, %{sends: [{target, :item, :wake_up}]})
      assert {:ok, [:ok]} = Aion.await(aion, id, 10_000)
      assert {:ok, [:wake_up]} = Aion.await(aion, target, 10_000)
    end
  end

  describe "bad input" do
    for {misuse, message} <- [
          unknown_module: "is not a workflow of instance",
          not_a_workflow_of_the_instance: "is not a workflow of instance",
          unstorable_input: "the input of child workflow",
          bad_policy: ":parent_close",
          bad_id: "at most 255 bytes",
          unknown_option: "unknown options [:parent_close_policy]",
          bad_target: "expected a workflow id"
        ] do
      test "#{misuse} raises ArgumentError before anything is recorded", %{tmp_dir: dir} do
        aion = instance(dir, workflows: @workflows -- [Collector])
        {:ok, id} = Aion.start_workflow(aion, BadChildren, %{misuse: unquote(misuse)})
        assert {:ok, {{:raised, message}, {:ok, 10}}} = Aion.await(aion, id, 10_000)
        assert message =~ unquote(message)
        assert count(aion, id, :child_workflow_started) == 1
      end
    end
  end

  defp assert_eventually(fun, tries \\ 200) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition never became true")
      true -> Process.sleep(25) && assert_eventually(fun, tries - 1)
    end
  end
end
