defmodule Aion.Test.QueueActivities do
  @moduledoc false
  # Counts executions running at once in an :atomics array kept in
  # :persistent_term under `key` (index 1: running now, 2: the most seen).

  def track(key, ms) do
    counter = :persistent_term.get(key)
    now = :atomics.add_get(counter, 1, 1)
    raise_max(counter, now)
    Process.sleep(ms)
    :atomics.sub(counter, 1, 1)
    {:ok, now}
  end

  defp raise_max(counter, now) do
    seen = :atomics.get(counter, 2)

    if now > seen and :atomics.compare_exchange(counter, 2, seen, now) != :ok do
      raise_max(counter, now)
    end
  end
end

defmodule Aion.Test.Fanout do
  @moduledoc false
  # Starts `n` tracked activities on `queue` at once and awaits them all.
  use Aion.Workflow

  @impl true
  def run(%{n: n, queue: queue, key: key, ms: ms}) do
    futures = for _ <- 1..n, do: start_activity(Aion.Test.QueueActivities, :track, [key, ms], queue: queue)
    {:ok, length(for {:ok, _} <- await_all(futures), do: :ok)}
  end
end

defmodule Aion.Test.QueuedPair do
  @moduledoc false
  # A gated activity holds the only slot of :single; the second activity on
  # :single waits for it with a timeout shorter than that wait; one on
  # :default runs meanwhile.
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{listener: listener, timeout: timeout}) do
    gated = start_activity(Activities, :gate, [listener, :held], queue: :single)
    queued = start_activity(Activities, :slow_value, [20, :queued], queue: :single, timeout: timeout)
    {:ok, free} = activity(Activities, :gate_report, [listener, :free])
    [gated_result, queued_result] = await_all([gated, queued])
    {:ok, {free, gated_result, queued_result}}
  end
end

defmodule Aion.Test.UnknownQueue do
  @moduledoc false
  use Aion.Workflow

  @impl true
  def run(_), do: activity(Aion.Test.Activities, :add, [1, 1], queue: :nowhere)
end
