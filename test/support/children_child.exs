# The engine side of the child workflow crash tests
# (test/aion/workflow/child_crash_test.exs), run in its own BEAM by
# Aion.Test.ChildVM:
#   elixir -pa <aion ebin> children_child.exs DB MODE
# Each mode starts its workflows and prints STARTED; the VM is then killed,
# by a fault the test set in the environment or by the test itself.
[db, mode] = System.argv()

alias Aion.Test.{Collector, Doubler, Parent, Signaller}

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :children, store: {:sqlite, db}, workflows: [Doubler, Parent, Signaller, Collector])

case mode do
  "one_child" ->
    {:ok, _} = Aion.start_workflow(:children, Parent, %{children: [{%{n: 7}, [id: "k-child"]}]}, id: "k-parent")

  "orphan" ->
    children = [{%{n: 1, wait: true}, [id: "k-terminated"]}, {%{n: 2, wait: true}, [id: "k-cancelled", parent_close: :request_cancel]}]
    {:ok, _} = Aion.start_workflow(:children, Parent, %{children: children, then: :return}, id: "k-parent")

  "signal" ->
    {:ok, _} = Aion.start_workflow(:children, Collector, %{n: 1}, id: "k-target")
    {:ok, _} = Aion.start_workflow(:children, Signaller, %{sends: [{"k-target", :item, :hello}]}, id: "k-sender")

  "fan_out" ->
    children = for n <- 1..40, do: {%{n: n, sleep: 50 * rem(n, 5)}, [id: "k-#{n}"]}
    {:ok, _} = Aion.start_workflow(:children, Parent, %{children: children}, id: "k-fan")
end

IO.puts("STARTED")
Process.sleep(:infinity)
