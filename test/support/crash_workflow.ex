defmodule Aion.Test.CrashActivities do
  @moduledoc false
  # Runs in the crash test's child VM. Every execution appends
  # "start <n> <step> <generation>" to a log before doing anything, so the
  # test can count executions across kills, and returns the generation that
  # ran it, so history says which execution's completion was recorded.
  #
  # Configured per generation (see crash_child.exs):
  #   :kill_at     - the n-th activity started after arm/0 SIGKILLs the VM
  #                  right after logging its start: a kill mid-activity that
  #                  no scheduling jitter can move;
  #   :activity_ms - how long each activity takes.

  def configure(config) do
    :persistent_term.put(__MODULE__, Map.merge(config, %{started: :atomics.new(1, []), armed: :atomics.new(1, [])}))
  end

  @doc "Starts counting activities towards :kill_at."
  def arm, do: :atomics.put(:persistent_term.get(__MODULE__).armed, 1, 1)

  def step(n, step) do
    config = :persistent_term.get(__MODULE__)
    File.write!(config.log, "start #{n} #{step} #{config.generation}\n", [:append])
    IO.puts("STARTED #{n} #{step}")

    if :atomics.get(config.armed, 1) == 1 and :atomics.add_get(config.started, 1, 1) == config.kill_at do
      System.cmd("sh", ["-c", "kill -KILL #{System.pid()}"])
    end

    Process.sleep(config.activity_ms)
    {:ok, %{value: n * 10 + step, generation: config.generation}}
  end
end

defmodule Aion.Test.CrashWorkflow do
  @moduledoc false
  # Three activities with a durable sleep between each: result 30n + 6.
  use Aion.Workflow

  alias Aion.Test.CrashActivities

  @impl true
  def run(n) do
    {:ok, a} = activity(CrashActivities, :step, [n, 1])
    :ok = sleep(150)
    {:ok, b} = activity(CrashActivities, :step, [n, 2])
    :ok = sleep(150)
    {:ok, c} = activity(CrashActivities, :step, [n, 3])
    {:ok, a.value + b.value + c.value}
  end
end
