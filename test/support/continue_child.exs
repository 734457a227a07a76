# The engine side of the continue-as-new crash tests
# (test/aion/workflow/continue_as_new_crash_test.exs), run in its own BEAM by
# Aion.Test.ChildVM and SIGKILLed by the test:
#   elixir -pa <aion ebin> continue_child.exs DB FILE MODE
[db, file, mode] = System.argv()

alias Aion.Test.{Chain, KillChain}

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :can, store: {:sqlite, db}, workflows: [Chain, KillChain])

case mode do
  "chain" ->
    # A chain of 300 runs; prints how many runs there are as it goes.
    {:ok, id} = Aion.start_workflow(:can, KillChain, %{left: 299, total: 0, file: file}, id: "chain")

    # (PAST 30 once, since the count sampled every 10 ms may skip 30.)
    Stream.repeatedly(fn ->
      {:ok, runs} = Aion.runs(:can, id)
      IO.puts("RUNS #{length(runs)}")
      length(runs)
    end)
    |> Enum.reduce(false, fn runs, past ->
      if runs >= 30 and not past, do: IO.puts("PAST 30")
      Process.sleep(10)
      past or runs >= 30
    end)

  "window" ->
    # The ending and the successor's start committed, and the VM dies
    # before anything gives the successor a process: the engine is asked
    # directly, as the monitor does, and nobody spawns the answer.
    {:ok, id} = Aion.start_workflow(:can, Chain, %{left: 1, total: 0, gate: true}, id: "window")
    {:ok, [%{run_id: run_id}]} = Aion.runs(:can, id)
    {:ok, instance} = Aion.Instance.lookup(:can)
    ref = make_ref()
    input = Aion.Payload.encode!(%{left: 0, total: 7})
    :ok = Aion.Engine.continue_as_new_async(instance.engine, id, run_id, "Aion.Test.Chain", input, ref)

    receive do
      {^ref, {:ok, {:started, _successor, new_run_id}}} -> IO.puts("CONTINUED #{new_run_id}")
    end
end

Process.sleep(:infinity)
