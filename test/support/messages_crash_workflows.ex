defmodule Aion.Test.KillActivities do
  @moduledoc false
  # Activities for the message crash tests (test/support/messages_child.exs).
  # What they did is appended to a file, which survives SIGKILL of the VM
  # that ran them. In the child VM, whose main process registers as
  # @gate, hold/1 reports to it and waits for :go (which it may never
  # send); elsewhere it returns at once.

  @gate :aion_messages_child_gate

  def gate, do: @gate

  defp hold(tag) do
    case Process.whereis(@gate) do
      nil ->
        :ok

      gate ->
        send(gate, {:held, self(), tag})

        receive do
          :go -> :ok
        end
    end
  end

  defp append(file, line), do: File.write!(file, line <> "\n", [:append])

  @doc "An update handler's effect: its start and its end are written apart."
  def ledger_add(file, amount) do
    append(file, "start #{amount}")
    hold({:ledger, amount})
    append(file, "done #{amount}")
    {:ok, amount}
  end

  @doc "Work that never ends by itself: only a cancellation stops it."
  def work(file, tag) do
    append(file, "work #{tag}")
    Process.sleep(:infinity)
  end

  @doc "Cleanup after a cancellation; in the child VM it waits on the gate."
  def cleanup(file, tag) do
    hold({:cleanup, tag})
    append(file, "cleanup #{tag}")
    {:ok, tag}
  end

  @doc "A race's activity: held at the gate in the child VM when `held?`."
  def race_work(held?) do
    if held?, do: hold(:race)
    {:ok, :activity}
  end
end

defmodule Aion.Test.KillCollector do
  @moduledoc false
  # Takes :item signals one by one until the payload :done; returns the
  # payloads taken, in order.
  use Aion.Workflow

  @impl true
  def run(_input), do: collect([])

  defp collect(taken) do
    case await_signal(:item) do
      {:ok, :done} -> {:ok, Enum.reverse(taken)}
      {:ok, item} -> collect([item | taken])
    end
  end
end

defmodule Aion.Test.KillLedger do
  @moduledoc false
  # Answers `updates` :add updates; each handler runs a ledger_add activity
  # and replies with the running total.
  use Aion.Workflow
  alias Aion.Test.KillActivities

  @impl true
  def run(%{file: file, updates: n}) do
    total =
      Enum.reduce(1..n, 0, fn _, total ->
        {:ok, _amount, total} =
          await_update(:add, fn amount ->
            {:ok, ^amount} = activity(KillActivities, :ledger_add, [file, amount])
            {:ok, total + amount}
          end)

        total
      end)

    {:ok, total}
  end
end

defmodule Aion.Test.KillCancellable do
  @moduledoc false
  # Blocks in a never-ending activity or an hour-long sleep; on cancellation
  # runs a cleanup activity, then completes or lets the cancellation end
  # the run.
  use Aion.Workflow
  alias Aion.Test.KillActivities

  @impl true
  def run(%{file: file, tag: tag, block: block, rethrow: rethrow}) do
    case block do
      :activity -> activity(KillActivities, :work, [file, tag])
      :timer -> sleep(3_600_000)
    end
  rescue
    error in Aion.CancelledError ->
      {:ok, ^tag} = activity(KillActivities, :cleanup, [file, tag])
      if rethrow, do: reraise(error, __STACKTRACE__), else: {:ok, {:cleaned_up, error.reason}}
  end
end

defmodule Aion.Test.KillRacer do
  @moduledoc false
  # Races an activity against a timer, then waits for both.
  use Aion.Workflow
  alias Aion.Test.KillActivities

  @impl true
  def run(%{held: held?, timer_ms: timer_ms}) do
    work = start_activity(KillActivities, :race_work, [held?])
    timer = start_timer(timer_ms)
    {winner, result} = await_any([work, timer])
    both = await_all([work, timer])
    {:ok, %{winner: winner.kind, result: result, both: both}}
  end
end

defmodule Aion.Test.KillTimerRace do
  @moduledoc false
  # Races two timers; returns which won.
  use Aion.Workflow

  @impl true
  def run(%{short: short, long: long}) do
    short_timer = start_timer(short)
    long_timer = start_timer(long)
    {winner, :ok} = await_any([short_timer, long_timer])
    {:ok, if(winner == short_timer, do: :short, else: :long)}
  end
end

defmodule Aion.Test.KillDeadline do
  @moduledoc false
  # An activity under a durable deadline.
  use Aion.Workflow
  alias Aion.Test.KillActivities

  @impl true
  def run(%{within: within}), do: {:ok, with_timeout(within, fn -> activity(KillActivities, :race_work, [true]) end)}
end

defmodule Aion.Test.KillSignalTimeout do
  @moduledoc false
  # Waits for :go with a timeout, then for :later without one.
  use Aion.Workflow

  @impl true
  def run(%{timeout: timeout}) do
    go = await_signal(:go, timeout: timeout)
    later = await_signal(:later)
    {:ok, {go, later}}
  end
end
