# The soak test's workflows (see soak/run.exs): a mixed load whose every
# result is known from its input, so that a run that lived through many
# SIGKILLs can be checked against an uninterrupted one.

defmodule Aion.Soak.Activities do
  @moduledoc false
  # x + 1; the first attempt of every third input fails, so retries happen.
  def work(x) do
    if rem(x, 3) == 0 and Aion.Activity.info().attempt == 1, do: {:error, :flaky}, else: {:ok, x + 1}
  end
end

defmodule Aion.Soak.Leaf do
  @moduledoc false
  # A retried activity and a durable sleep: (x + 1) * 2.
  use Aion.Workflow

  @impl true
  def run(x) do
    {:ok, y} = activity(Aion.Soak.Activities, :work, [x], retry: [max_attempts: 5, initial_interval: 50])
    :ok = sleep(rem(x, 7) * 60)
    {:ok, y * 2}
  end

  def expected(x), do: (x + 1) * 2
end

defmodule Aion.Soak.Tree do
  @moduledoc false
  # Children (and grandchildren at depth 2): the sum of its leaves.
  use Aion.Workflow
  alias Aion.Soak.Leaf

  @impl true
  def run(%{x: x, width: width, depth: depth}) do
    results = children(x, width, depth) |> Enum.map(fn {module, input} -> start_child(module, input) end) |> await_all()
    {:ok, Enum.sum(for {:ok, value} <- results, do: value)}
  end

  defp children(x, width, 1), do: for(i <- 1..width, do: {Leaf, x * 10 + i})
  defp children(x, width, depth), do: for(i <- 1..width, do: {__MODULE__, %{x: x * 10 + i, width: width, depth: depth - 1}})

  def expected(%{x: x, width: width, depth: 1}), do: Enum.sum(for i <- 1..width, do: Leaf.expected(x * 10 + i))
  def expected(%{x: x, width: width, depth: depth}), do: Enum.sum(for i <- 1..width, do: expected(%{x: x * 10 + i, width: width, depth: depth - 1}))
end

defmodule Aion.Soak.Chain do
  @moduledoc false
  # Continue-as-new `left` times, an activity per run: the sum of (n + 1).
  use Aion.Workflow

  @impl true
  def run(%{left: 0, acc: acc}), do: {:ok, acc}

  def run(%{left: left, acc: acc}) do
    {:ok, y} = activity(Aion.Soak.Activities, :work, [left], retry: [max_attempts: 5, initial_interval: 50])
    :ok = sleep(20)
    continue_as_new(%{left: left - 1, acc: acc + y})
  end

  def expected(%{left: left, acc: acc}), do: acc + Enum.sum(for n <- 1..left//1, do: n + 1)
end

defmodule Aion.Soak.Collector do
  @moduledoc false
  # Takes `k` :ping signals (sent by a Pinger): their sum.
  use Aion.Workflow

  @impl true
  def run(%{k: k}) do
    {:ok, Enum.reduce(1..k, 0, fn _, acc -> (fn {:ok, v} -> acc + v end).(await_signal(:ping)) end)}
  end

  def expected(%{k: k}), do: div(k * (k + 1), 2)
end

defmodule Aion.Soak.Pinger do
  @moduledoc false
  # Sends 1..k as :ping to its Collector with signal_workflow/3.
  use Aion.Workflow

  @impl true
  def run(%{target: target, k: k}) do
    for i <- 1..k, do: :ok = signal_workflow(target, :ping, i)
    {:ok, k}
  end

  def expected(%{k: k}), do: k
end

defmodule Aion.Soak.Updatable do
  @moduledoc false
  # Takes `k` :add updates (ids u-1..u-k, sent from outside): their sum.
  use Aion.Workflow

  @impl true
  def run(%{k: k}) do
    total =
      Enum.reduce(1..k, 0, fn _, acc ->
        {:ok, value, _reply} = await_update(:add, fn value -> {:ok, value} end)
        acc + value
      end)

    {:ok, total}
  end

  def expected(%{k: k}), do: div(k * (k + 1), 2)
end

defmodule Aion.Soak.Waiter do
  @moduledoc false
  use Aion.Workflow

  @impl true
  def run(_), do: await_signal(:never)
end

defmodule Aion.Soak.Cancellable do
  @moduledoc false
  # Two waiting children (one asked to cancel, one terminated when it ends),
  # then waits until it is cancelled.
  use Aion.Workflow
  alias Aion.Soak.Waiter

  @impl true
  def run(%{}) do
    _ = start_child(Waiter, %{}, parent_close: :request_cancel)
    _ = start_child(Waiter, %{}, parent_close: :terminate)
    await_signal(:never)
  end
end

defmodule Aion.Soak do
  @moduledoc false
  alias Aion.Soak.{Cancellable, Chain, Collector, Leaf, Pinger, Tree, Updatable, Waiter}

  def workflows, do: [Leaf, Tree, Chain, Collector, Pinger, Updatable, Waiter, Cancellable]

  @doc "Starts scenario number `n` (its workflows' ids derive from `n`); returns the ids of the roots."
  def start(name, n) do
    case rem(n, 6) do
      0 -> [start!(name, Tree, %{x: n, width: 3, depth: 2}, "tree-#{n}")]
      1 -> [start!(name, Chain, %{left: 5 + rem(n, 10), acc: 0}, "chain-#{n}")]
      2 -> [start!(name, Collector, %{k: 5}, "collector-#{n}"), start!(name, Pinger, %{target: "collector-#{n}", k: 5}, "pinger-#{n}")]
      3 -> [start!(name, Updatable, %{k: 4}, "updatable-#{n}")] |> tap(fn _ -> drive_updates(name, "updatable-#{n}", 4) end)
      4 -> [start!(name, Cancellable, %{}, "cancellable-#{n}")]
      5 -> [start!(name, Tree, %{x: n, width: 4, depth: 1}, "tree-#{n}")]
    end
  end

  defp start!(name, module, input, id) do
    case Aion.start_workflow(name, module, input, id: id, if_running: :use_existing) do
      {:ok, ^id} -> id
      {:error, %Aion.Error{reason: :already_started}} -> id
      {:error, error} -> raise "soak: could not start #{id}: #{error.message}"
    end
  end

  @doc "Sends the updates u-1..u-k (idempotent: each id is recorded once)."
  def drive_updates(name, id, k) do
    spawn(fn -> for i <- 1..k, do: Aion.update(name, id, :add, i, update_id: "u-#{i}", timeout: 60_000) end)
  end
end
