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

defmodule Aion.Test.FaultWorkloads do
  @moduledoc false
  # The workloads of the fault injection test (test/aion/faults_test.exs), by
  # name. A workload is the workflow types it registers and a start that is
  # idempotent: every generation of the child VM calls it, so a generation
  # after a crash starts what the crashed one did not, and starts nothing
  # twice. To add one: a clause of types/1 and of start/2 (returning the ids
  # to await), its activities through Aion.Test.FaultActivities.run/2 so that
  # re-executions are checked, and a test in faults_test.exs.

  alias Aion.Test.FaultSteps

  @doc "The workflow types the instance registers for `workload`."
  def types("steps"), do: [FaultSteps]

  @doc "Starts the workload's workflows that do not exist yet; returns every id to await."
  def start("steps", instance), do: for(n <- 1..6, do: start_once(instance, FaultSteps, n, "steps-#{n}"))

  @doc "Starts workflow `id` unless it exists (running or ended); returns `id`."
  def start_once(instance, type, input, id) do
    case Aion.start_workflow(instance, type, input, id: id, id_reuse: :reject_duplicate) do
      {:ok, ^id} -> id
      {:error, %Aion.Error{reason: :already_started}} -> id
    end
  end
end
