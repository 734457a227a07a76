# The engine side of the query-after-SIGKILL test, run in its own BEAM by
# Aion.Test.ChildVM:
#   elixir -pa <aion ebin> query_child.exs DB
# Starts two Aion.Test.QueriedSteps workflows that run 3 activities each,
# then one sleeps an hour ("sleeper") and one waits on a 10-minute activity
# ("worker"), and prints READY once both wait there; then waits to be killed.
[db] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :query, store: {:sqlite, db}, workflows: [Aion.Test.QueriedSteps])

{:ok, _} = Aion.start_workflow(:query, Aion.Test.QueriedSteps, %{steps: 3, then: {:sleep, 3_600_000}}, id: "sleeper")
{:ok, _} = Aion.start_workflow(:query, Aion.Test.QueriedSteps, %{steps: 3, then: {:activity, 600_000}}, id: "worker")

waiting? = fn id, last ->
  {:ok, events} = Aion.history(:query, id)
  Enum.count(events, &(&1.type == :activity_completed)) == 3 and List.last(events).type == last
end

wait = fn wait ->
  if waiting?.("sleeper", :timer_started) and waiting?.("worker", :activity_scheduled),
    do: :ok,
    else: (Process.sleep(10); wait.(wait))
end

wait.(wait)
IO.puts("READY")
Process.sleep(:infinity)
