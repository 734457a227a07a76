defmodule Aion.Test.RandomValues do
  @moduledoc false
  # Draws recorded random values, then shows them at a gate: the test can
  # kill the run there and check that replay draws the same ones.
  use Aion.Workflow

  @impl true
  def run(listener) do
    values = draw()
    {:ok, _} = activity(Aion.Test.Activities, :gate, [listener, values])
    {:ok, values}
  end

  @doc false
  def draw, do: %{float: random(), die: random(1..6), stepped: random(10..-10//-5), uuid: uuid()}
end

defmodule Aion.Test.RandomBounds do
  @moduledoc false
  # Draws `count` values from each range it is given.
  use Aion.Workflow

  @impl true
  def run({ranges, count}), do: {:ok, for(range <- ranges, into: %{}, do: {range, for(_ <- 1..count, do: random(range))})}
end

defmodule Aion.Test.MarkerMisuse do
  @moduledoc false
  # Calls the marker functions with bad arguments, rescues each raise, then
  # records a value: the raises must have left no trace.
  use Aion.Workflow

  @impl true
  def run(_input) do
    raised =
      for call <- [
            fn -> random(1..0//1) end,
            fn -> random(:dice) end,
            fn -> random([1, 2, 3]) end,
            fn -> patched?("") end,
            fn -> patched?(nil) end,
            fn -> patched?(42) end,
            fn -> patched?(<<0xFF>>) end
          ] do
        try do
          call.()
        rescue
          error in ArgumentError -> error.message
        end
      end

    {:ok, {raised, random(5..5)}}
  end
end

defmodule Aion.Test.Pricing do
  @moduledoc false
  # A workflow type's code before a change: one activity, then a gate.
  use Aion.Workflow, name: "test.pricing"

  alias Aion.Test.Activities

  @impl true
  def run(listener) do
    {:ok, price} = activity(Activities, :add, [100, 0])
    {:ok, _} = activity(Activities, :gate, [listener, workflow_id()])
    {:ok, {:old, price}}
  end
end

defmodule Aion.Test.PricingPatched do
  @moduledoc false
  # The same workflow type after a change guarded by patched?/1: a fee
  # activity before the gate. Runs recorded by Aion.Test.Pricing replay the
  # old branch; the second check shows that a run answers once.
  use Aion.Workflow, name: "test.pricing"

  alias Aion.Test.Activities

  @impl true
  def run(listener) do
    {:ok, price} = activity(Activities, :add, [100, 0])

    if patched?(:fee) do
      {:ok, total} = activity(Activities, :add, [price, 5])
      {:ok, _} = activity(Activities, :gate, [listener, workflow_id()])
      {:ok, {:new, total, patched?("fee")}}
    else
      {:ok, _} = activity(Activities, :gate, [listener, workflow_id()])
      {:ok, {:old, price, patched?("fee")}}
    end
  end
end

defmodule Aion.Test.PricingUnpatched do
  @moduledoc false
  # The same workflow type with the patch check removed too early: runs
  # recorded with the marker no longer replay.
  use Aion.Workflow, name: "test.pricing"

  alias Aion.Test.Activities

  @impl true
  def run(listener) do
    {:ok, price} = activity(Activities, :add, [100, 0])
    {:ok, total} = activity(Activities, :add, [price, 5])
    {:ok, _} = activity(Activities, :gate, [listener, workflow_id()])
    {:ok, {:new, total, true}}
  end
end

defmodule Aion.Test.MarkerActivities do
  @moduledoc false
  # For the marker crash test's child VM: prints the values it is given,
  # then hangs (the first VM, killed there) or returns (the one after).
  def report(values) do
    IO.puts("VALUES #{inspect(values)}")
    if System.get_env("MARKER_HANG") == "1", do: Process.sleep(:infinity)
    {:ok, :reported}
  end
end

defmodule Aion.Test.RandomValuesReported do
  @moduledoc false
  # Aion.Test.RandomValues for the crash test's child VM.
  use Aion.Workflow

  @impl true
  def run(_input) do
    values = Aion.Test.RandomValues.draw()
    {:ok, :reported} = activity(Aion.Test.MarkerActivities, :report, [values])
    {:ok, values}
  end
end
