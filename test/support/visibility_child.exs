# The engine side of the visibility crash test, run in its own BEAM by
# Aion.Test.ChildVM:   elixir -pa <aion ebin> visibility_child.exs DB
# Starts 20 workflows that complete, 10 that fail and 10 that upsert
# search attributes and wait for a signal, each with search attributes at
# start; prints READY once all of that is durable, then keeps starting
# upserting workflows ("more-N", one line each) until it is killed.
alias Aion.Test.Visibility.{Alpha, Upserter}

[db] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :vis, store: {:sqlite, db}, workflows: [Alpha, Upserter])

for i <- 1..20,
    do:
      {:ok, _} =
        Aion.start_workflow(:vis, Alpha, :complete,
          id: "done-#{i}",
          search_attributes: %{"batch" => "k", "i" => i}
        )

for i <- 1..10,
    do:
      {:ok, _} =
        Aion.start_workflow(:vis, Alpha, :fail,
          id: "failed-#{i}",
          search_attributes: %{"batch" => "k", "i" => i}
        )

for i <- 1..10 do
  input = %{first: %{"stage" => "upserted", "i" => i}, wait: true}

  {:ok, _} =
    Aion.start_workflow(:vis, Upserter, input,
      id: "up-#{i}",
      search_attributes: %{"stage" => "started", "batch" => "k"}
    )
end

for i <- 1..20, do: Aion.await(:vis, "done-#{i}", 10_000)
for i <- 1..10, do: Aion.await(:vis, "failed-#{i}", 10_000)

wait = fn wait ->
  case Aion.count(:vis, search: %{"stage" => "upserted"}) do
    {:ok, 10} -> :ok
    _ -> Process.sleep(5) && wait.(wait)
  end
end

wait.(wait)
IO.puts("READY")

Stream.iterate(1, &(&1 + 1))
|> Enum.each(fn i ->
  input = %{first: %{"stage" => "more", "i" => i}}

  {:ok, _} =
    Aion.start_workflow(:vis, Upserter, input,
      id: "more-#{i}",
      search_attributes: %{"stage" => "started"}
    )

  IO.puts("MORE #{i}")
end)
