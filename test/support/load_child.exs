# The engine side of the failing-load test, run in its own BEAM by
# Aion.Test.ChildVM with AION_FAULT_FAIL_LOADS set:
#   elixir -pa <aion ebin> load_child.exs DB
# Kills a sleeper's process; its respawns fail to load the run as many
# times as asked, then one succeeds. Prints the result.
[db] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :load, store: {:sqlite, db}, workflows: [Aion.Test.Sleeper])
{:ok, id} = Aion.start_workflow(:load, Aion.Test.Sleeper, 200)
Process.exit(Aion.Ownership.run_owner(:load, id), :kill)
IO.puts("RESULT #{inspect(Aion.await(:load, id, 20_000))}")
System.halt(0)
