# The engine side of the id reuse crash test, run in its own BEAM by
# Aion.Test.ChildVM:   elixir -pa <aion ebin> id_reuse_child.exs DB
# Starts workflow "order-1" (it waits for a signal), prints STARTED once the
# start is durable, and waits to be killed.
[db] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :id_reuse, store: {:sqlite, db}, workflows: [Aion.Test.Collector])
{:ok, "order-1"} = Aion.start_workflow(:id_reuse, Aion.Test.Collector, %{n: 1}, id: "order-1", if_running: :use_existing)
IO.puts("STARTED")
Process.sleep(:infinity)
