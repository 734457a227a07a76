# The engine side of the eviction crash test, run in its own BEAM by
# Aion.Test.ChildVM:
#   elixir -pa <aion ebin> evict_child.exs DB start|resume COUNT SLEEP_MS
# "start" starts COUNT sleepers (evicted after 200 ms idle) and prints
# EVICTED once none has a process; "resume" recovers and prints each result.
[db, mode, count, sleep_ms] = System.argv()
count = String.to_integer(count)

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :evict, store: {:sqlite, db}, workflows: [Aion.Test.Sleeper], evict_idle_after: 200)
supervisor = Aion.Instance.workflows_supervisor(:evict, Aion.Workflow.type(Aion.Test.Sleeper))

case mode do
  "start" ->
    for n <- 1..count do
      {:ok, _} = Aion.start_workflow(:evict, Aion.Test.Sleeper, String.to_integer(sleep_ms), id: "sleeper-#{n}")
    end

    wait = fn wait ->
      if DynamicSupervisor.count_children(supervisor).active == 0, do: :ok, else: (Process.sleep(10); wait.(wait))
    end

    wait.(wait)
    IO.puts("EVICTED")
    Process.sleep(:infinity)

  "resume" ->
    for n <- 1..count, do: IO.puts("RESULT sleeper-#{n} #{inspect(Aion.await(:evict, "sleeper-#{n}", 30_000))}")
    IO.puts("ALL_DONE")
    System.halt(0)
end
