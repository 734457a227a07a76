defmodule Aion.Test.Activities do
  @moduledoc false
  # Activities for tests. Those taking a `listener` report to that registered
  # test process, so tests can assert what ran, and how often.

  def add(a, b), do: {:ok, a + b}
  def fail(reason), do: {:error, reason}
  def plain(value), do: value
  def just_ok, do: :ok
  def boom(message), do: raise(message)
  def exit_now(reason), do: exit(reason)
  def throw_it(value), do: throw(value)
  def slow(ms), do: Process.sleep(ms)
  def big_map(n), do: {:ok, Map.new(1..n, &{"key-#{&1}", &1})}
  def give_pid, do: {:ok, self()}

  def slow_value(ms, value) do
    Process.sleep(ms)
    {:ok, value}
  end

  @doc "Reports `value` to the listener and returns it."
  def gate_report(listener, value) do
    send(listener, {:report, value})
    {:ok, value}
  end

  @doc "Reports, then blocks until the test sends :open to the activity process."
  def gate(listener, value) do
    send(listener, {:gate, self(), value})

    receive do
      :open -> {:ok, value}
    end
  end
end

defmodule Aion.Test.Sequence do
  @moduledoc false
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(%{n: n}) do
    {:ok, a} = activity(Activities, :add, [n, 1])
    :ok = sleep(10)
    {:ok, b} = activity(Activities, :add, [a, 1])
    {:ok, %{n: n, result: b}}
  end
end

defmodule Aion.Test.Returns do
  @moduledoc false
  # Returns or fails as its input says.
  use Aion.Workflow

  @impl true
  def run({:ok, value}), do: {:ok, value}
  def run({:plain, value}), do: value
  def run({:error, reason}), do: {:error, reason}
  def run({:raise, message}), do: raise(message)
  def run({:exit, reason}), do: exit(reason)
  def run(:pid), do: self()
end

defmodule Aion.Test.ActivityResults do
  @moduledoc false
  # Runs one activity with the given options and returns what activity/4 gave.
  use Aion.Workflow

  @impl true
  def run(:ref_argument), do: activity(Aion.Test.Activities, :plain, [make_ref()])
  def run({function, args, opts}), do: {:ok, activity(Aion.Test.Activities, function, args, opts)}
end

defmodule Aion.Test.Recorded do
  @moduledoc false
  # Reads now/0 and a side effect, then waits at a gate: the test can stop the
  # instance there and check that replay returns the same values.
  use Aion.Workflow

  @impl true
  def run(listener) do
    at = now()

    token =
      side_effect(fn ->
        send(listener, :side_effect_ran)
        :rand.bytes(8)
      end)

    {:ok, _} = activity(Aion.Test.Activities, :gate, [listener, {at, token}])
    {:ok, {at, token, workflow_id()}}
  end
end

defmodule Aion.Test.Gated do
  @moduledoc false
  # One recorded activity, then a gate; the shape the non-determinism test
  # changes between crash and restart.
  use Aion.Workflow, name: "test.gated"

  @impl true
  def run(listener) do
    {:ok, _} = activity(Aion.Test.Activities, :add, [1, 1])
    {:ok, _} = activity(Aion.Test.Activities, :gate, [listener, workflow_id()])
    :done
  end
end

defmodule Aion.Test.GatedChanged do
  @moduledoc false
  # The same workflow type as Aion.Test.Gated, changed incompatibly: it sleeps
  # where history recorded an activity.
  use Aion.Workflow, name: "test.gated"

  @impl true
  def run(_listener) do
    :ok = sleep(1)
    {:ok, _} = activity(Aion.Test.Activities, :add, [1, 1])
    :done
  end
end

defmodule Aion.Test.Sleeper do
  @moduledoc false
  use Aion.Workflow

  @impl true
  def run(ms) do
    :ok = sleep(ms)
    {:ok, :woke}
  end
end

defmodule Aion.Test.GatedShortened do
  @moduledoc false
  # The same workflow type as Aion.Test.Gated, changed to finish at once:
  # history holds commands this code never issues.
  use Aion.Workflow, name: "test.gated"

  @impl true
  def run(_listener), do: :done
end

defmodule Aion.Test.GatedChangedFailing do
  @moduledoc false
  # Aion.Test.GatedChanged, but a run that does not replay fails instead of
  # being suspended.
  use Aion.Workflow, name: "test.gated", on_nondeterminism: :fail

  @impl true
  def run(_listener) do
    :ok = sleep(1)
    :done
  end
end

defmodule Aion.Test.Rescuer do
  @moduledoc false
  # Rescues raises that happen before a command is recorded, then goes on.
  use Aion.Workflow
  alias Aion.Test.Activities

  @impl true
  def run(_input) do
    bad_argument =
      try do
        activity(Activities, :plain, [make_ref()])
      rescue
        error in ArgumentError -> {:rescued, error.message =~ "cannot be stored"}
      end

    failed_effect =
      try do
        side_effect(fn -> raise "no luck" end)
      rescue
        error in RuntimeError -> {:rescued, error.message}
      end

    {:ok, sum} = activity(Activities, :add, [1, 2])
    :ok = sleep(1)
    {:ok, {bad_argument, failed_effect, sum}}
  end
end

defmodule Aion.Test.Argued do
  @moduledoc false
  # Passes its activity an argument read from outside history (on purpose,
  # to show that a re-dispatched activity gets its recorded arguments).
  use Aion.Workflow

  @impl true
  def run(listener) do
    {:ok, value} = activity(Aion.Test.Activities, :gate, [listener, :persistent_term.get({__MODULE__, listener})])
    {:ok, value}
  end
end

defmodule Aion.Test.Trapper do
  @moduledoc false
  # Traps exits, then sleeps.
  use Aion.Workflow

  @impl true
  def run(ms) do
    Process.flag(:trap_exit, true)
    :ok = sleep(ms)
    {:ok, :woke}
  end
end

defmodule Aion.Test.Measures do
  @moduledoc false
  # Returns the size of its (binary) input.
  use Aion.Workflow

  @impl true
  def run(input), do: {:ok, byte_size(input)}
end
