# The engine side of the failing-load test, run in its own BEAM by
# Aion.Test.ChildVM with AION_FAULT_FAIL_LOADS set:
#   elixir -pa <aion ebin> load_child.exs DB
# Kills a sleeper's process; its respawns fail to load the run as many
# times as asked, then one succeeds. Prints the result.
#
# The kill waits for the sleeper's timer to be recorded: on a busy machine
# the reconciler's first sweep can give the new run a process that resumes
# it (a load), and killing that one mid-load would use up a failing load
# without the log line the test counts.
[db] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :load, store: {:sqlite, db}, workflows: [Aion.Test.Sleeper])
{:ok, id} = Aion.start_workflow(:load, Aion.Test.Sleeper, 200)

asleep = fn asleep ->
  {:ok, events} = Aion.history(:load, id)
  unless Enum.any?(events, &(&1.type == :timer_started)), do: (Process.sleep(5); asleep.(asleep))
end

asleep.(asleep)
Process.exit(Aion.Ownership.run_owner(:load, id), :kill)
IO.puts("RESULT #{inspect(Aion.await(:load, id, 20_000))}")
System.halt(0)
