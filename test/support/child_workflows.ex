defmodule Aion.Test.Doubler do
  @moduledoc false
  # A child: doubles its input, or fails, raises, or waits for a signal first.
  use Aion.Workflow

  @impl true
  def run(%{n: n} = input) do
    case input do
      %{fail: true} ->
        {:error, {:odd, n}}

      %{wait: true} ->
        {:ok, extra} = await_signal(:go)
        {:ok, n * 2 + extra}

      %{sleep: ms} ->
        :ok = sleep(ms)
        {:ok, n * 2}

      _ ->
        {:ok, n * 2}
    end
  end
end

defmodule Aion.Test.Parent do
  @moduledoc false
  # Runs children of Doubler as `input.children` says and returns their results.
  use Aion.Workflow
  alias Aion.Test.Doubler

  @impl true
  def run(%{children: children} = input) do
    futures = for {child_input, opts} <- children, do: start_child(Doubler, child_input, opts)
    if report = input[:report], do: send(report, {:children_started, workflow_id(), Enum.map(futures, & &1.workflow_id)})

    case input[:then] do
      :return -> {:ok, :returned}
      _ -> {:ok, await_all(futures)}
    end
  end
end

defmodule Aion.Test.Grandparent do
  @moduledoc false
  # A parent of Parent: three generations.
  use Aion.Workflow

  @impl true
  def run(%{children: children} = input) do
    execute_child(Aion.Test.Parent, %{children: children, report: input[:report]}, id: "#{workflow_id()}-middle")
  end
end

defmodule Aion.Test.ChildCanceller do
  @moduledoc false
  # Starts a waiting child, cancels it, and returns how it ended.
  use Aion.Workflow

  @impl true
  def run(%{}) do
    child = start_child(Aion.Test.Doubler, %{n: 1, wait: true})
    :ok = cancel_child(child)
    {:ok, await(child)}
  end
end

defmodule Aion.Test.Signaller do
  @moduledoc false
  # Sends each {target, name, payload} with signal_workflow/3; returns the answers.
  use Aion.Workflow

  @impl true
  def run(%{sends: sends}) do
    {:ok, for({target, name, payload} <- sends, do: signal_workflow(target, name, payload))}
  end
end

defmodule Aion.Test.BadChildren do
  @moduledoc false
  # Misuses start_child/signal_workflow as `input.misuse` says; rescues the raise and returns it.
  use Aion.Workflow

  @impl true
  def run(%{misuse: misuse}) do
    raised =
      try do
        case misuse do
          :unknown_module -> start_child(Enum, %{})
          :not_a_workflow_of_the_instance -> start_child(Aion.Test.Collector, %{n: 1})
          :unstorable_input -> start_child(Aion.Test.Doubler, %{n: self()})
          :bad_policy -> start_child(Aion.Test.Doubler, %{n: 1}, parent_close: :explode)
          :bad_id -> start_child(Aion.Test.Doubler, %{n: 1}, id: String.duplicate("x", 300))
          :unknown_option -> start_child(Aion.Test.Doubler, %{n: 1}, parent_close_policy: :abandon)
          :bad_target -> signal_workflow(42, :go, 1)
        end

        :no_raise
      rescue
        error in ArgumentError -> {:raised, error.message}
      end

    # Nothing was recorded by the misuse: this child is command #0.
    {:ok, {raised, execute_child(Aion.Test.Doubler, %{n: 5})}}
  end
end

defmodule Aion.Test.SignalThenWait do
  @moduledoc false
  # Sends a signal (matching :ok), then answers :state and waits forever.
  use Aion.Workflow

  @impl true
  def run(%{target: target}) do
    :ok = signal_workflow(target, :item, :hello)
    on_query(:state, fn _ -> :sent end)
    await_signal(:never)
  end
end
