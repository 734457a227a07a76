# One engine process of the demo (see demo.exs):
#   elixir -pa <aion ebin> examples/order_engine.exs DB start|resume
Code.require_file("order_workflow.ex", __DIR__)
[db, mode] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :demo, store: {:sqlite, db}, workflows: [Demo.Order])
IO.puts("  [engine pid #{System.pid()}] Aion is up on #{db}")

if mode == "start" do
  input = %{order_id: "order-1001", items: ["kettle", "teapot"], amount_cents: 4_250, cooling_off_ms: 4_000}
  {:ok, id} = Aion.start_workflow(:demo, Demo.Order, input, id: "order-1001")
  IO.puts("  [engine pid #{System.pid()}] started workflow #{id}")

  # Tell the demo when the workflow is in its durable sleep.
  Stream.repeatedly(fn -> Aion.describe(:demo, id) end)
  |> Stream.each(fn _ -> Process.sleep(20) end)
  |> Enum.find(&match?({:ok, %{pending: [%{kind: :timer}]}}, &1))
  |> then(fn {:ok, %{pending: [%{fire_at: at}]}} -> IO.puts("SLEEPING until #{at}") end)
else
  IO.puts("  [engine pid #{System.pid()}] recovering: unfinished workflows resume from their history")
end

{:ok, result} = Aion.await(:demo, "order-1001", 60_000)
IO.puts("  [engine pid #{System.pid()}] order-1001 completed: #{inspect(result)}")
{:ok, events} = Aion.history(:demo, "order-1001")
IO.puts("\nHistory of order-1001:\n" <> Aion.History.format(events))
System.halt(0)
