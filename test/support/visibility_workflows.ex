defmodule Aion.Test.Visibility do
  @moduledoc false
  # Workflows for the visibility tests (Aion.list/3, Aion.count/2, search
  # attributes). The trivial ones end as their input says: :complete,
  # :fail, or :sleep (an hour: they stay running).

  @doc "What a trivial workflow does with its input."
  def outcome(:complete), do: {:ok, :done}
  def outcome(:fail), do: {:error, :refused}

  def outcome(:sleep) do
    Aion.Workflow.sleep(:timer.hours(1))
    {:ok, :woke}
  end
end

defmodule Aion.Test.Visibility.Alpha do
  @moduledoc false
  use Aion.Workflow
  @impl true
  def run(outcome), do: Aion.Test.Visibility.outcome(outcome)
end

defmodule Aion.Test.Visibility.Beta do
  @moduledoc false
  use Aion.Workflow, name: "visibility-beta"
  @impl true
  def run(outcome), do: Aion.Test.Visibility.outcome(outcome)
end

defmodule Aion.Test.Visibility.Gamma do
  @moduledoc false
  use Aion.Workflow
  @impl true
  def run(outcome), do: Aion.Test.Visibility.outcome(outcome)
end

defmodule Aion.Test.Visibility.Upserter do
  @moduledoc false
  # Upserts `first`, then (after the signal :next, if `wait`) `second`;
  # returns what it upserted. A kind refused by the store raises
  # ArgumentError, which it rescues and returns as {:refused, message}.
  use Aion.Workflow

  @impl true
  def run(%{first: first} = input) do
    :ok = upsert_search_attributes(first)
    if input[:wait], do: {:ok, _} = await_signal(:next)

    case input[:second] do
      nil -> {:ok, :upserted}
      second -> {:ok, try_upsert(second)}
    end
  end

  defp try_upsert(attributes) do
    upsert_search_attributes(attributes)
    :upserted
  rescue
    error in ArgumentError -> {:refused, error.message}
  end
end
