defmodule Aion.Test.Queried do
  @moduledoc false
  # Exposes its progress through queries: waits at a gate activity, then
  # sleeps `sleep` ms, then returns; the :state query says which step it is
  # at. Other handlers echo, raise, or try to issue a command.
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{listener: listener, sleep: ms}) do
    on_query(:state, fn _args -> :started end)
    on_query("echo", fn args -> {:echo, args} end)
    on_query(:boom, fn _args -> raise "kaput" end)
    on_query(:command, fn _args -> sleep(1) end)

    {:ok, value} = activity(Activities, :gate, [listener, :first])
    on_query(:state, fn _args -> {:gated, value} end)
    :ok = sleep(ms)
    on_query(:state, fn _args -> :slept end)
    {:ok, :done}
  end
end

defmodule Aion.Test.QueriedSteps do
  @moduledoc false
  # Runs `steps` activities, the :done query counting them, then ends in a
  # long sleep or a long activity (the shapes a restart treats differently:
  # a sleeper stays evicted, a run waiting on an activity is respawned).
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{steps: steps, then: then}) do
    on_query(:done, fn _args -> 0 end)

    for step <- 1..steps do
      {:ok, _} = activity(Activities, :add, [step, 0])
      on_query(:done, fn _args -> step end)
    end

    case then do
      {:sleep, ms} -> :ok = sleep(ms)
      {:activity, ms} -> {:ok, _} = activity(Activities, :slow, [ms])
    end

    {:ok, steps}
  end
end

defmodule Aion.Test.Busy do
  @moduledoc false
  # Computes for `ms` without waiting at any command (so it cannot answer a
  # query meanwhile), then sleeps `then_sleep` ms.
  use Aion.Workflow

  @impl true
  def run(%{busy: ms, then_sleep: then_sleep}) do
    on_query(:phase, fn _args -> :busy end)
    spin(System.monotonic_time(:millisecond) + ms)
    on_query(:phase, fn _args -> :resting end)
    :ok = sleep(then_sleep)
    :done
  end

  defp spin(until) do
    if System.monotonic_time(:millisecond) < until, do: spin(until), else: :ok
  end
end

defmodule Aion.Test.BadQueries do
  @moduledoc false
  # Registers handlers wrongly and returns what on_query/2 raised.
  use Aion.Workflow

  @impl true
  def run(_input) do
    for {name, fun} <- [{42, fn _ -> :ok end}, {:arity, fn -> :ok end}, {"not_a_fun", :ok}] do
      try do
        on_query(name, fun)
      rescue
        error in ArgumentError -> error.message
      end
    end
  end
end

defmodule Aion.Test.QueriedMessages do
  @moduledoc false
  # Signals, futures and with_timeout under a :seen query: two parallel
  # activities, a with_timeout that times out, then signals :item, one at a
  # time, forever.
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(_input) do
    on_query(:seen, fn _args -> :nothing end)
    [{:ok, 2}, {:ok, 3}] = await_all([start_activity(Activities, :add, [1, 1]), start_activity(Activities, :add, [1, 2])])
    {:error, :timeout} = with_timeout(20, fn -> await_signal(:never) end)
    collect([])
  end

  defp collect(items) do
    on_query(:seen, fn _args -> Enum.reverse(items) end)
    {:ok, item} = await_signal(:item)
    collect([item | items])
  end
end

defmodule Aion.Test.QueriedPatched do
  @moduledoc false
  # Recorded values and a patch check under a query, then a long sleep.
  use Aion.Workflow

  @impl true
  def run(_input) do
    token = uuid()
    fee = if patched?(:fee), do: :with_fee, else: :no_fee
    n = random(1..1_000_000)
    on_query(:state, fn _args -> {token, n, fee} end)
    :ok = sleep(3_600_000)
  end
end
