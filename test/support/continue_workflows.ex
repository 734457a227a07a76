defmodule Aion.Test.Chain do
  @moduledoc false
  # A counter that continues as new `left` times, carrying its total in
  # its input. Options in the input: `gate: true` (the first run waits for
  # signal :go before continuing), `hold: true` (the last run waits for
  # signal :finish before returning), `sleep: ms` (each run sleeps first),
  # `report: pid name` (each run sends {:chain_run, left} there, live only).
  use Aion.Workflow

  @impl true
  def run(%{left: left, total: total} = state) do
    on_query(:state, fn _ -> state end)
    if state[:gate], do: {:ok, :go} = await_signal(:go)
    if state[:sleep], do: :ok = sleep(state.sleep)

    if left == 0 do
      if state[:hold], do: {:ok, _} = await_signal(:finish)
      {:ok, total}
    else
      continue_as_new(%{state | left: left - 1, total: total + left} |> Map.delete(:gate))
    end
  end
end

defmodule Aion.Test.CarrySignals do
  @moduledoc false
  # First run: takes one :item, then waits for :go and continues as new
  # (items sent meanwhile wait in its inbox). Second run: takes one more
  # :item and returns both.
  use Aion.Workflow

  @impl true
  def run(%{phase: 1}) do
    {:ok, first} = await_signal(:item)
    {:ok, :go} = await_signal(:go)
    continue_as_new(%{phase: 2, first: first})
  end

  def run(%{phase: 2, first: first}) do
    {:ok, second} = await_signal(:item)
    {:ok, [first, second]}
  end
end

defmodule Aion.Test.Switcher do
  @moduledoc false
  # Continues as new into another workflow type.
  use Aion.Workflow

  @impl true
  def run(%{n: n} = input), do: continue_as_new(%{input | n: n * 2}, module: Aion.Test.Finisher)
end

defmodule Aion.Test.Finisher do
  @moduledoc false
  # With `hold: true`, waits for signal :finish first.
  use Aion.Workflow

  @impl true
  def run(%{n: n} = input) do
    if input[:hold], do: {:ok, _} = await_signal(:finish)
    {:ok, {:finished, n}}
  end

  def run(n), do: {:ok, {:finished, n}}
end

defmodule Aion.Test.Carried do
  @moduledoc false
  # Step 0 upserts a search attribute, sleeps a little (so the execution
  # timeout is partly spent) and continues as new; step 1 waits for a
  # signal that never comes, until the execution timeout ends it.
  use Aion.Workflow

  @impl true
  def run(%{step: 0}) do
    :ok = upsert_search_attributes(%{"stage" => "one"})
    :ok = sleep(50)
    continue_as_new(%{step: 1})
  end

  def run(%{step: 1}) do
    await_signal(:never)
  end
end

defmodule Aion.Test.BadContinue do
  @moduledoc false
  # Tries to continue as new in ways that raise, rescues each, and completes
  # with the messages.
  use Aion.Workflow

  @impl true
  def run(_input) do
    attempts = [
      fn -> continue_as_new(%{pid: self()}) end,
      fn -> continue_as_new(%{fun: fn -> :ok end}) end,
      fn -> continue_as_new(1, module: String) end,
      fn -> continue_as_new(1, module: Aion.Test.Finisher) end,
      fn -> continue_as_new(1, modul: Aion.Test.Finisher) end
    ]

    {:ok,
     Enum.map(attempts, fn attempt ->
       try do
         attempt.()
       rescue
         error in ArgumentError -> error.message
       end
     end)}
  end
end

defmodule Aion.Test.KillChain do
  @moduledoc false
  # A chain for the crash test: each run records a side effect (its step,
  # appended to a file once per live execution), then continues as new;
  # the last returns the total.
  use Aion.Workflow

  @impl true
  def run(%{left: left, total: total, file: file}) do
    ^left = side_effect(fn -> File.write!(file, "#{left}\n", [:append]); left end)
    # Halfway, the chain waits for :go (a signal carried from run to run
    # until taken), so that a kill always finds it going.
    if left == 150, do: {:ok, :go} = await_signal(:go)

    if left == 0,
      do: {:ok, total},
      else: continue_as_new(%{left: left - 1, total: total + left, file: file})
  end
end
