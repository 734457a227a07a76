# The engine side of the reset crash test (test/aion/client/reset_test.exs),
# run in its own BEAM by Aion.Test.ChildVM and SIGKILLed by the test:
#   elixir -pa <aion ebin> reset_child.exs DB LOG FLAG
# Runs Aion.Test.ResetFlow "crashed" until its third step fails, resets it
# to its last completed activity with that step holding (it blocks), prints
# "RESET <new run id>", then "HELD" once the new run's third step runs, and
# waits to be killed.
[db, log, flag] = System.argv()

alias Aion.Test.{ResetActivities, ResetFlow}

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :reset, store: {:sqlite, db}, workflows: [ResetFlow])

File.write!(flag, "fail")
{:ok, id} = Aion.start_workflow(:reset, ResetFlow, %{log: log, flag: flag}, id: "crashed")
{:error, :broken} = Aion.await(:reset, id)

File.write!(flag, "hold")
{:ok, run_id} = Aion.reset(:reset, id, to: :last_completed_activity)
IO.puts("RESET #{run_id}")

wait = fn wait ->
  if length(ResetActivities.ran(log)) >= 4, do: :ok, else: (Process.sleep(5); wait.(wait))
end

wait.(wait)
IO.puts("HELD")
Process.sleep(:infinity)
