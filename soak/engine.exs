# One life of the soak's engine (see soak/run.exs): recovers the store, then
# starts scenarios until it is SIGKILLed.
#   elixir -pa <aion ebin> soak/engine.exs DB FIRST_SCENARIO
[db, first] = System.argv()
Code.require_file("workflows.ex", __DIR__)

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :soak, store: {:sqlite, db}, workflows: Aion.Soak.workflows())
IO.puts("UP")

Stream.iterate(String.to_integer(first), &(&1 + 1))
|> Enum.each(fn n ->
  ids = Aion.Soak.start(:soak, n)
  IO.puts("STARTED #{Enum.join(ids, " ")}")

  for "cancellable-" <> _ = id <- ids do
    spawn(fn -> Process.sleep(500) && Aion.cancel(:soak, id, :soak) end)
  end

  Process.sleep(40)
end)
