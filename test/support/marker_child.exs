# The engine side of the marker crash test, run in its own BEAM by
# Aion.Test.ChildVM:
#   elixir -pa <aion ebin> marker_child.exs DB start|resume
# "start" starts a workflow that draws random values and reports them from an
# activity that hangs (MARKER_HANG=1) until the test SIGKILLs this VM;
# "resume" recovers it and prints its result.
[db, mode] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :marker, store: {:sqlite, db}, workflows: [Aion.Test.RandomValuesReported])

if mode == "start" do
  {:ok, _} = Aion.start_workflow(:marker, Aion.Test.RandomValuesReported, nil, id: "values")
end

IO.puts("RESULT #{inspect(Aion.await(:marker, "values", 30_000))}")
System.halt(0)
