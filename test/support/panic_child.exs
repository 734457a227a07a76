# The engine side of the writer-panic test, run in its own BEAM by
# Aion.Test.ChildVM with AION_FAULT_PANIC_AFTER set:
#   elixir -pa <aion ebin> panic_child.exs DB
# Starts a sleeper whose first commit after the start makes the writer panic,
# then awaits it (again, while the instance restarts) and prints the result
# and whether the engine was restarted.
[db] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :panic, store: {:sqlite, db}, workflows: [Aion.Test.Sleeper])
first_owner = Aion.Instance.engine_owner(:panic)
{:ok, id} = Aion.start_workflow(:panic, Aion.Test.Sleeper, 50)

await = fn await, attempts ->
  case Aion.await(:panic, id, 10_000) do
    {:error, %Aion.Error{reason: reason}} when reason in [:not_running, :closed] and attempts > 0 ->
      Process.sleep(50)
      await.(await, attempts - 1)

    other ->
      other
  end
end

IO.puts("RESULT #{inspect(await.(await, 100))}")
IO.puts("RESTARTED #{Aion.Instance.engine_owner(:panic) not in [nil, first_owner]}")
System.halt(0)
