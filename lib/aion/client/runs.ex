defmodule Aion.Client.Runs do
  @moduledoc false
  # The runs of a workflow (Aion.runs/2), and the `:run_id` option of the
  # reads scoped to one run (describe, query).

  alias Aion.{Engine, Instance}

  @doc "The runs of `workflow_id`, oldest first, as Aion.runs/2 returns them."
  def runs(%Instance{} = instance, workflow_id) do
    with {:ok, runs} <- Engine.runs(instance.engine, workflow_id) do
      {:ok, Enum.map(runs, &(&1 |> Map.take([:run_id, :parent_run_id, :reset_from, :status, :started_at, :closed_at, :workflow_type]) |> Aion.History.times([:started_at, :closed_at])))}
    end
  end

  @doc "Options that are only `:run_id` (describe): `{:ok, run_id}`."
  def options(opts, entry) do
    cond do
      not Keyword.keyword?(opts) ->
        {:error, Aion.Error.new(:invalid_option, "#{entry}: expected the options to be a keyword list, got: #{inspect(opts)}")}

      (unknown = Keyword.keys(opts) -- [:run_id]) != [] ->
        {:error, Aion.Error.new(:invalid_option, "#{entry}: unknown option #{inspect(hd(unknown))} (known options: :run_id)")}

      true ->
        run_id_option(opts, entry)
    end
  end

  @doc "The `:run_id` option: nil (the latest run) or a run id (a UUID string)."
  def run_id_option(opts, entry) do
    case Keyword.get(opts, :run_id) do
      nil ->
        {:ok, nil}

      run_id when is_binary(run_id) ->
        if uuid?(run_id) do
          {:ok, String.downcase(run_id)}
        else
          invalid(entry, run_id)
        end

      other ->
        invalid(entry, other)
    end
  end

  defp uuid?(text), do: String.match?(text, ~r/\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\z/)

  defp invalid(entry, value) do
    {:error, Aion.Error.new(:invalid_option, "#{entry}: expected :run_id to be a run id (a UUID string, see Aion.runs/2), got: #{inspect(value)}")}
  end
end
