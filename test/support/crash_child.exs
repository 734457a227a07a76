# The engine side of the crash test, run in its own BEAM by Aion.Test.ChildVM:
#   elixir -pa <aion ebin> crash_child.exs DB LOG GENERATION start|resume COUNT
# It starts an instance on DB (recovering whatever earlier generations left),
# starts COUNT workflows if told to, then prints each workflow's result.
[db, log, generation, mode, count] = System.argv()
count = String.to_integer(count)

Aion.Test.CrashActivities.configure(%{
  log: log,
  generation: String.to_integer(generation),
  kill_at: with(value when is_binary(value) <- System.get_env("CRASH_KILL_AT_ACTIVITY"), do: String.to_integer(value)),
  activity_ms: String.to_integer(System.get_env("CRASH_ACTIVITY_MS", "20"))
})
{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :crash, store: {:sqlite, db}, workflows: [Aion.Test.CrashWorkflow])

if mode == "start" do
  for n <- 1..count do
    {:ok, _} = Aion.start_workflow(:crash, Aion.Test.CrashWorkflow, n, id: "wf-#{n}")
  end
end

# READY goes out before any activity may kill this VM.
IO.puts("READY")
Aion.Test.CrashActivities.arm()

for n <- 1..count do
  IO.puts("RESULT wf-#{n} #{inspect(Aion.await(:crash, "wf-#{n}", :infinity))}")
end

IO.puts("ALL_DONE")
System.halt(0)
