defmodule Aion.Test.Collector do
  @moduledoc false
  # Takes `n` signals named :item and returns them in the order taken.
  use Aion.Workflow

  @impl true
  def run(%{n: n}) do
    items =
      for _ <- 1..n do
        {:ok, item} = await_signal(:item)
        item
      end

    {:ok, items}
  end
end

defmodule Aion.Test.SignalTimeout do
  @moduledoc false
  use Aion.Workflow

  @impl true
  def run(%{timeout: timeout}) do
    first = await_signal("go", timeout: timeout)
    second = await_signal("go")
    {:ok, {first, second}}
  end
end

defmodule Aion.Test.Cancellable do
  @moduledoc false
  # Waits on a gate activity; on cancellation runs a cleanup activity and
  # a short sleep, then lets the cancellation end the run.
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{listener: listener, rethrow: rethrow}) do
    activity(Activities, :gate, [listener, :work])
  rescue
    error in Aion.CancelledError ->
      true = cancellation_requested?()
      {:ok, _} = activity(Activities, :gate_report, [listener, {:cleanup, error.reason}])
      :ok = sleep(5)
      if rethrow, do: reraise(error, __STACKTRACE__), else: {:ok, :cleaned_up}
  end
end

defmodule Aion.Test.Racer do
  @moduledoc false
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{activity_ms: activity_ms, timer_ms: timer_ms}) do
    slow = start_activity(Activities, :slow_value, [activity_ms, :activity])
    timer = start_timer(timer_ms)
    {winner, result} = await_any([slow, timer])
    both = await_all([slow, timer])
    {:ok, %{winner: winner.kind, result: result, both: both}}
  end
end

defmodule Aion.Test.Deadline do
  @moduledoc false
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{within: within, listener: listener}) do
    outcome = with_timeout(within, fn -> activity(Activities, :gate, [listener, :inside]) end)
    {:ok, after_} = activity(Activities, :add, [1, 1])
    {:ok, {outcome, after_}}
  end
end

defmodule Aion.Test.Counter do
  @moduledoc false
  # Answers :add updates (each runs an activity that reports to the
  # listener) until it gets a :stop signal-like update.
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{listener: listener, updates: n}) do
    total =
      Enum.reduce(1..n, 0, fn _, total ->
        case await_update(:add, fn
               amount when is_integer(amount) ->
                 {:ok, _} = activity(Activities, :gate_report, [listener, {:add, amount}])
                 {:ok, total + amount}

               other ->
                 {:error, {:not_a_number, other}}
             end) do
          {:ok, _amount, new_total} -> new_total
          {:error, _} -> total
        end
      end)

    {:ok, total}
  end
end
