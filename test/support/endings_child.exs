# The engine side of the endings crash test, run in its own BEAM by
# Aion.Test.ChildVM:
#   elixir -pa <aion ebin> endings_child.exs DB start|resume TIMEOUT_MS
# "start" starts a workflow that waits for a signal, with an
# execution_timeout of TIMEOUT_MS, and a second one it terminates; prints
# READY once both are durable. "resume" recovers and prints how each ended.
[db, mode, timeout_ms] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :endings, store: {:sqlite, db}, workflows: [Aion.Test.Collector])

case mode do
  "start" ->
    {:ok, _} = Aion.start_workflow(:endings, Aion.Test.Collector, %{n: 1}, id: "bounded", execution_timeout: String.to_integer(timeout_ms))
    {:ok, _} = Aion.start_workflow(:endings, Aion.Test.Collector, %{n: 1}, id: "terminated")
    :ok = Aion.terminate(:endings, "terminated", :by_test)
    IO.puts("READY")
    Process.sleep(:infinity)

  "resume" ->
    for id <- ["bounded", "terminated"], do: IO.puts("RESULT #{id} #{inspect(Aion.await(:endings, id, 10_000))}")
    {:ok, events} = Aion.history(:endings, "bounded")
    IO.puts("LAST bounded #{List.last(events).type}")
    System.halt(0)
end
