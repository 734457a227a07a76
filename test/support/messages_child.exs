# The engine side of the message crash tests
# (test/aion/workflow/messages_crash_test.exs), run in its own BEAM by
# Aion.Test.ChildVM and SIGKILLed by the test:
#   elixir -pa <aion ebin> messages_child.exs DB FILE MODE
# FILE is where the activities of Aion.Test.KillActivities write what they
# did. This process registers as their gate: an activity that reports here
# waits until it is told :go. Each mode sets up its workflows and prints
# what the test needs to know, then waits to be killed.
[db, file, mode] = System.argv()

alias Aion.Test.{KillActivities, KillCancellable, KillCollector, KillDeadline, KillLedger, KillRacer, KillSignalTimeout, KillTimerRace}

{:ok, _} = Application.ensure_all_started(:aion)

{:ok, _} =
  Aion.start_link(
    name: :messages,
    store: {:sqlite, db},
    workflows: [KillCollector, KillLedger, KillCancellable, KillRacer, KillDeadline, KillSignalTimeout, KillTimerRace]
  )

Process.register(self(), KillActivities.gate())

defmodule Child do
  def events(id) do
    {:ok, events} = Aion.history(:messages, id)
    events
  end

  def has?(id, check), do: Enum.any?(events(id), check)

  def wait_until(check) do
    if check.(), do: :ok, else: (Process.sleep(5); wait_until(check))
  end

  def fire_at_ms(id) do
    [%{fire_at: at} | _] = for %{type: :timer_started} = event <- events(id), do: event
    DateTime.to_unix(at, :millisecond)
  end

  def last_seq(id), do: List.last(events(id)).seq

  def lines(file), do: if(File.exists?(file), do: file |> File.read!() |> String.split("\n", trim: true), else: [])
end

case mode do
  "signals" ->
    # 10 senders, 100 signals each; ACK once Aion.signal/4 said :ok.
    {:ok, id} = Aion.start_workflow(:messages, KillCollector, nil, id: "many")

    for sender <- 1..10 do
      spawn_link(fn ->
        for n <- 1..100 do
          :ok = Aion.signal(:messages, id, :item, {sender, n})
          IO.puts("ACK #{sender} #{n}")
          Process.sleep(3)
        end
      end)
    end

  "updates" ->
    {:ok, id} = Aion.start_workflow(:messages, KillLedger, %{file: file, updates: 3}, id: "ledger")

    caller = fn update_id, amount ->
      spawn(fn ->
        reply = Aion.update(:messages, id, :add, amount, update_id: update_id, timeout: :infinity)
        IO.puts("CALLER #{update_id} #{inspect(reply)}")
      end)
    end

    # u-1: its caller is suspended while the handler's activity runs, so
    # the reply gets recorded but never reaches it.
    first = caller.("u-1", 5)
    receive do
      {:held, activity, {:ledger, 5}} ->
        true = :erlang.suspend_process(first)
        send(activity, :go)
    end

    Child.wait_until(fn -> Child.has?(id, &match?(%{type: :update_completed, update_id: "u-1"}, &1)) end)
    IO.puts("REPLIED u-1")

    # u-2: the handler's activity is held mid-run until the kill.
    caller.("u-2", 7)
    receive do
      {:held, _activity, {:ledger, 7}} -> :ok
    end

    IO.puts("HELD u-2")

    # u-3: accepted while the workflow is busy with u-2, not yet delivered.
    caller.("u-3", 11)
    Child.wait_until(fn -> Child.has?(id, &match?(%{type: :update_accepted, update_id: "u-3"}, &1)) end)
    IO.puts("QUEUED u-3")

  "cancel" ->
    # c-handled, c-rethrow and c-timer: their processes are suspended before
    # the cancellation is recorded, so their code meets it only after the
    # restart. c-live: its code takes it before the kill, and its cleanup
    # activity is running (held at the gate) at the kill.
    runs = [{"handled", :activity, false}, {"rethrow", :activity, true}, {"timer", :timer, true}, {"live", :activity, false}]

    for {tag, block, rethrow} <- runs do
      {:ok, _} = Aion.start_workflow(:messages, KillCancellable, %{file: file, tag: tag, block: block, rethrow: rethrow}, id: "c-#{tag}")
    end

    Child.wait_until(fn -> Enum.all?(["work handled", "work rethrow", "work live"], &(&1 in Child.lines(file))) end)
    Child.wait_until(fn -> Child.has?("c-timer", &(&1.type == :timer_started)) end)

    for tag <- ["handled", "rethrow", "timer"] do
      true = :erlang.suspend_process(Aion.Ownership.run_owner(:messages, "c-#{tag}"))
      :ok = Aion.cancel(:messages, "c-#{tag}", :stop)
      IO.puts("CANCELLED c-#{tag} #{Child.last_seq("c-#{tag}")}")
    end

    :ok = Aion.cancel(:messages, "c-live", :stop)

    receive do
      {:held, _activity, {:cleanup, "live"}} -> :ok
    end

    IO.puts("CLEANING c-live")

  "race" ->
    # r-timer: the timer won before the kill; r-activity: the activity won
    # before the kill; r-pending: neither has a result at the kill, and its
    # timer is due when the test recovers it.
    {:ok, _} = Aion.start_workflow(:messages, KillRacer, %{held: true, timer_ms: 10}, id: "r-timer")
    {:ok, _} = Aion.start_workflow(:messages, KillRacer, %{held: false, timer_ms: 1_500}, id: "r-activity")
    Child.wait_until(fn -> Child.has?("r-timer", &(&1.type == :timer_fired)) end)
    Child.wait_until(fn -> Child.has?("r-activity", &(&1.type == :activity_completed)) end)

    # t-two: of two timers, the short one fired while the run's process was
    # suspended: the race is decided in history, not yet seen by the code.
    {:ok, _} = Aion.start_workflow(:messages, KillTimerRace, %{short: 200, long: 60_000}, id: "t-two")
    Child.wait_until(fn -> Enum.count(Child.events("t-two"), &(&1.type == :timer_started)) == 2 end)
    true = :erlang.suspend_process(Aion.Ownership.run_owner(:messages, "t-two"))
    Child.wait_until(fn -> Child.has?("t-two", &(&1.type == :timer_fired)) end)

    # d-long: an activity under a deadline a minute away, running at the kill.
    {:ok, _} = Aion.start_workflow(:messages, KillDeadline, %{within: 60_000}, id: "d-long")
    {:ok, _} = Aion.start_workflow(:messages, KillRacer, %{held: true, timer_ms: 1_000}, id: "r-pending")
    # The held activities (r-timer's, d-long's and r-pending's) have reported.
    for _ <- 1..3 do
      receive do
        {:held, _activity, :race} -> :ok
      end
    end
    Child.wait_until(fn -> Child.has?("r-pending", &(&1.type == :timer_started)) end)
    IO.puts("PENDING #{Child.last_seq("r-pending")} #{Child.fire_at_ms("r-pending")}")

  "signal_timeout" ->
    {:ok, _} = Aion.start_workflow(:messages, KillSignalTimeout, %{timeout: 1_000}, id: "st-late")
    {:ok, _} = Aion.start_workflow(:messages, KillSignalTimeout, %{timeout: 60_000}, id: "st-early")

    for id <- ["st-late", "st-early"] do
      Child.wait_until(fn -> Child.has?(id, &(&1.type == :timer_started)) end)
      :ok = Aion.signal(:messages, id, :later, {:kept, id})
    end

    IO.puts("WAITING #{Child.fire_at_ms("st-late")}")
end

IO.puts("READY")
Process.sleep(:infinity)
