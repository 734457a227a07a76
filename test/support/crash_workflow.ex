defmodule Aion.Test.CrashActivities do
  @moduledoc false
  # Runs in the crash test's child VM. Every execution appends
  # "start <n> <step> <generation>" to a log before doing anything, so the
  # test can count executions across kills, and returns the generation that
  # ran it, so history says which execution's completion was recorded.

  def step(n, step) do
    %{log: log, generation: generation} = :persistent_term.get(__MODULE__)
    File.write!(log, "start #{n} #{step} #{generation}\n", [:append])
    IO.puts("STARTED #{n} #{step}")
    # The window a kill lands "mid-activity" in.
    Process.sleep(20)
    {:ok, %{value: n * 10 + step, generation: generation}}
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
