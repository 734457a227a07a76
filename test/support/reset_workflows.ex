defmodule Aion.Test.ResetActivities do
  @moduledoc false
  # Activities that append what ran to a log file (so tests count
  # executions across VMs), one of them broken while a flag file says so:
  #   "fail" -> {:error, :broken}; "hold" -> blocks forever; absent -> ok.

  def step(log, name) do
    File.write!(log, name <> "\n", [:append])
    {:ok, name}
  end

  def flaky(log, name, flag) do
    File.write!(log, name <> "\n", [:append])

    case File.read(flag) do
      {:ok, "fail"} -> {:error, :broken}
      {:ok, "hold"} -> Process.sleep(:infinity)
      _ -> {:ok, name}
    end
  end

  @doc "Blocks while `flag` exists (checked every 10 ms), then returns."
  def while_flag(log, name, flag) do
    File.write!(log, name <> "\n", [:append])
    wait_gone(flag)
    {:ok, name}
  end

  defp wait_gone(flag) do
    if File.exists?(flag), do: (Process.sleep(10); wait_gone(flag)), else: :ok
  end

  @doc "The activities that ran, in order."
  def ran(log), do: if(File.exists?(log), do: log |> File.read!() |> String.split("\n", trim: true), else: [])
end

defmodule Aion.Test.ResetFlow do
  @moduledoc false
  # Two steps, then a step that fails while its flag file says so.
  use Aion.Workflow, name: "test.reset_flow"
  alias Aion.Test.ResetActivities, as: A

  @impl true
  def run(%{log: log, flag: flag}) do
    {:ok, a} = activity(A, :step, [log, "a"])
    {:ok, b} = activity(A, :step, [log, "b"])

    case activity(A, :flaky, [log, "c", flag]) do
      {:ok, c} -> {:ok, [a, b, c]}
      {:error, reason} -> {:error, reason}
    end
  end
end

defmodule Aion.Test.ResetWaiter do
  @moduledoc false
  # A step, then two signals :go: cancelled, terminated or reset while it
  # waits.
  use Aion.Workflow, name: "test.reset_waiter"
  alias Aion.Test.ResetActivities, as: A

  @impl true
  def run(%{log: log}) do
    {:ok, a} = activity(A, :step, [log, "a"])
    {:ok, first} = await_signal(:go)
    {:ok, second} = await_signal(:go)
    {:ok, [a, first, second]}
  end
end

defmodule Aion.Test.ResetSlow do
  @moduledoc false
  # A step, then one that blocks while its flag file exists: with a run
  # timeout, the run times out there.
  use Aion.Workflow, name: "test.reset_slow"
  alias Aion.Test.ResetActivities, as: A

  @impl true
  def run(%{log: log, flag: flag}) do
    {:ok, a} = activity(A, :step, [log, "a"])
    {:ok, b} = activity(A, :while_flag, [log, "b", flag])
    {:ok, [a, b]}
  end
end

defmodule Aion.Test.ResetSleeper do
  @moduledoc false
  # A step, a sleep, then a step that fails while its flag file says so.
  use Aion.Workflow, name: "test.reset_sleeper"
  alias Aion.Test.ResetActivities, as: A

  @impl true
  def run(%{log: log, flag: flag, sleep: ms}) do
    {:ok, a} = activity(A, :step, [log, "a"])
    :ok = sleep(ms)

    case activity(A, :flaky, [log, "c", flag]) do
      {:ok, c} -> {:ok, [a, c]}
      {:error, reason} -> {:error, reason}
    end
  end
end

defmodule Aion.Test.ResetSender do
  @moduledoc false
  # Signals :go to `target`, then a step that fails while its flag file
  # says so.
  use Aion.Workflow, name: "test.reset_sender"
  alias Aion.Test.ResetActivities, as: A

  @impl true
  def run(%{log: log, flag: flag, target: target}) do
    :ok = signal_workflow(target, :go, :from_sender)

    case activity(A, :flaky, [log, "c", flag]) do
      {:ok, c} -> {:ok, c}
      {:error, reason} -> {:error, reason}
    end
  end
end
