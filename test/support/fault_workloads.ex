defmodule Aion.Test.FaultActivities do
  @moduledoc false
  # Runs in the fault test's child VM (test/support/faults_child.exs). Every
  # execution appends "run <key> <generation>" to the log before anything
  # else, so the test counts executions across crashes, and returns its key
  # and generation, so history says which execution's result was recorded.

  def configure(log, generation), do: :persistent_term.put(__MODULE__, {log, generation})

  def run(key, value) do
    {log, generation} = :persistent_term.get(__MODULE__)
    File.write!(log, "run #{key} #{generation}\n", [:append])
    {:ok, %{key: key, value: value, generation: generation}}
  end
end

defmodule Aion.Test.FaultSteps do
  @moduledoc false
  # Three activities with a durable sleep between each: result 30n + 6.
  use Aion.Workflow

  alias Aion.Test.FaultActivities

  @impl true
  def run(n) do
    {:ok, a} = activity(FaultActivities, :run, ["steps-#{n}/1", 10 * n + 1])
    :ok = sleep(100)
    {:ok, b} = activity(FaultActivities, :run, ["steps-#{n}/2", 10 * n + 2])
    :ok = sleep(100)
    {:ok, c} = activity(FaultActivities, :run, ["steps-#{n}/3", 10 * n + 3])
    {:ok, a.value + b.value + c.value}
  end
end

defmodule Aion.Test.FaultParent do
  @moduledoc false
  # Three children, then a signal to the inbox: {:ok, {child results, :ok}}.
  use Aion.Workflow

  @impl true
  def run(n) do
    futures = for k <- 1..3, do: start_child(Aion.Test.FaultChild, {n, k}, id: "family-#{n}-#{k}")
    results = await_all(futures)
    {:ok, {results, signal_workflow("family-inbox", :item, n)}}
  end
end

defmodule Aion.Test.FaultChild do
  @moduledoc false
  # One activity: 2 * (10n + k).
  use Aion.Workflow

  @impl true
  def run({n, k}) do
    {:ok, result} = activity(Aion.Test.FaultActivities, :run, ["family-#{n}-#{k}", 10 * n + k])
    {:ok, 2 * result.value}
  end
end

defmodule Aion.Test.FaultInbox do
  @moduledoc false
  # Takes `count` :item signals; returns them sorted (senders race).
  use Aion.Workflow

  @impl true
  def run(count) do
    items =
      for _ <- 1..count do
        {:ok, item} = await_signal(:item)
        item
      end

    {:ok, Enum.sort(items)}
  end
end

defmodule Aion.Test.FaultChain do
  @moduledoc false
  # An activity per run, then continue-as-new until `left` is 0: the sum of
  # the activities' values.
  use Aion.Workflow

  @impl true
  def run({name, 0, acc}), do: {:ok, {name, acc}}

  def run({name, left, acc}) do
    {:ok, result} = activity(Aion.Test.FaultActivities, :run, ["#{name}/#{left}", left])
    continue_as_new({name, left - 1, acc + result.value})
  end
end

defmodule Aion.Test.FaultChainParent do
  @moduledoc false
  # A child that continues as new: the parent gets its last run's result.
  use Aion.Workflow

  @impl true
  def run(n), do: execute_child(Aion.Test.FaultChain, {"chain-child-#{n}", 4, 0}, id: "chain-child-#{n}")
end

defmodule Aion.Test.FaultWorkloads do
  @moduledoc false
  # The workloads of the fault injection test (test/aion/faults_test.exs), by
  # name. A workload is the workflow types it registers and a start that is
  # idempotent: every generation of the child VM calls it, so a generation
  # after a crash starts what the crashed one did not, and starts nothing
  # twice. To add one: a clause of types/1 and of start/2 (returning the ids
  # to await), its activities through Aion.Test.FaultActivities.run/2 so that
  # re-executions are checked, and a test in faults_test.exs.

  alias Aion.Test.{FaultChain, FaultChainParent, FaultChild, FaultInbox, FaultParent, FaultSteps}

  @parents 4

  @doc "The workflow types the instance registers for `workload`."
  def types("steps"), do: [FaultSteps]
  def types("family"), do: [FaultParent, FaultChild, FaultInbox]
  def types("chain"), do: [FaultChain, FaultChainParent]

  @doc """
  Starts the workload's workflows that do not exist yet; returns every id to
  await, in an order in which each exists once those before it ended.
  """
  # steps: 6 workflows of three activities with a sleep between each.
  def start("steps", instance), do: for(n <- 1..6, do: start_once(instance, FaultSteps, n, "steps-#{n}"))

  # family: an inbox, then 4 parents with 3 children each (one activity
  # each); each parent signals the inbox once its children ended.
  def start("family", instance) do
    inbox = start_once(instance, FaultInbox, @parents, "family-inbox")
    parents = for n <- 1..@parents, do: start_once(instance, FaultParent, n, "family-#{n}")
    parents ++ for(n <- 1..@parents, k <- 1..3, do: "family-#{n}-#{k}") ++ [inbox]
  end

  # chain: 3 workflows continuing as new 5 times, and a parent awaiting a
  # child that continues as new 4 times.
  def start("chain", instance) do
    chains = for n <- 1..3, do: start_once(instance, FaultChain, {"chain-#{n}", 5, 0}, "chain-#{n}")
    chains ++ [start_once(instance, FaultChainParent, 1, "chain-parent-1"), "chain-child-1"]
  end

  @doc "Starts workflow `id` unless it exists (running or ended); returns `id`."
  def start_once(instance, type, input, id) do
    case Aion.start_workflow(instance, type, input, id: id, id_reuse: :reject_duplicate) do
      {:ok, ^id} -> id
      {:error, %Aion.Error{reason: :already_started}} -> id
    end
  end
end
