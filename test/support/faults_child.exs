# The engine side of the fault injection test (test/aion/faults_test.exs),
# run in its own BEAM by Aion.Test.ChildVM, with or without AION_FAULT set:
#   elixir -pa <aion ebin> faults_child.exs DB LOG GENERATION WORKLOAD
# Starts an instance on DB (recovering whatever earlier generations left),
# starts WORKLOAD's workflows that do not exist yet (Aion.Test.FaultWorkloads),
# awaits each, then prints how each ended:
#   END <id> <result> <type>=<count>,... (its history's events by type)
#   RECORDED <key> <generation>    for each activity result in its history
# and ALL_DONE. An instance that does not start prints START_FAILED <error>.
# With AION_FAULT set, the engine aborts this VM at the fault point; its last
# line is then "AION_FAULT: aborting at <point> ...".
[db, log, generation, workload] = System.argv()

alias Aion.Test.{FaultActivities, FaultWorkloads}

FaultActivities.configure(log, String.to_integer(generation))
{:ok, _} = Application.ensure_all_started(:aion)
# A refused start answers {:error, _} instead of killing this script.
Process.flag(:trap_exit, true)

case Aion.start_link(name: :faults, store: {:sqlite, db}, workflows: FaultWorkloads.types(workload)) do
  {:ok, _} ->
    :ok

  {:error, error} ->
    IO.puts("START_FAILED #{inspect(error)}")
    System.halt(2)
end

ids = FaultWorkloads.start(workload, :faults)
IO.puts("READY")

for id <- ids do
  result = Aion.await(:faults, id, :infinity)
  {:ok, history} = Aion.history(:faults, id)
  # Counted, not ordered: concurrent children and signals interleave.
  counts = history |> Enum.frequencies_by(& &1.type) |> Enum.sort() |> Enum.map_join(",", fn {type, n} -> "#{type}=#{n}" end)
  IO.puts("END #{id} #{inspect(result)} #{counts}")

  for %{type: :activity_completed, result: %{key: key, generation: recorded_in}} <- history do
    IO.puts("RECORDED #{key} #{recorded_in}")
  end
end

IO.puts("ALL_DONE")
System.halt(0)
