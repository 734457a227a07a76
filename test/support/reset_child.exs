# The engine side of the reset crash tests (test/aion/client/reset_test.exs),
# run in its own BEAM by Aion.Test.ChildVM and SIGKILLed (by the test, or by
# AION_FAULT=reset inside the reset):
#   elixir -pa <aion ebin> reset_child.exs DB LOG FLAG MODE
# MODE "held": runs Aion.Test.ResetFlow "crashed" until its third step
# fails, resets it to its last completed activity with that step holding
# (it blocks), prints "RESET <new run id>", then "HELD" once the new run's
# third step runs, and waits to be killed.
# MODE "running": runs Aion.Test.ResetWaiter "waiter" until it took its
# first signal, prints "READY", then resets it (terminate_running) to its
# last completed activity; AION_FAULT=reset kills the VM inside the reset,
# once its append is durable.
[db, log, flag, mode] = System.argv()

alias Aion.Test.{ResetActivities, ResetFlow, ResetWaiter}

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :reset, store: {:sqlite, db}, workflows: [ResetFlow, ResetWaiter])

wait = fn check ->
  wait = fn wait -> if check.(), do: :ok, else: (Process.sleep(5); wait.(wait)) end
  wait.(wait)
end

has? = fn id, type ->
  {:ok, events} = Aion.history(:reset, id)
  Enum.any?(events, &(&1.type == type))
end

case mode do
  "held" ->
    File.write!(flag, "fail")
    {:ok, id} = Aion.start_workflow(:reset, ResetFlow, %{log: log, flag: flag}, id: "crashed")
    {:error, :broken} = Aion.await(:reset, id)

    File.write!(flag, "hold")
    {:ok, run_id} = Aion.reset(:reset, id, to: :last_completed_activity)
    IO.puts("RESET #{run_id}")
    wait.(fn -> length(ResetActivities.ran(log)) >= 4 end)
    IO.puts("HELD")

  "running" ->
    {:ok, id} = Aion.start_workflow(:reset, ResetWaiter, %{log: log}, id: "waiter")
    wait.(fn -> has?.(id, :activity_completed) end)
    :ok = Aion.signal(:reset, id, :go, 1)
    wait.(fn -> has?.(id, :signal_consumed) end)
    IO.puts("READY")
    result = Aion.reset(:reset, id, to: :last_completed_activity, terminate_running: true)
    IO.puts("NOT KILLED #{inspect(result)}")
end

Process.sleep(:infinity)
