defmodule Aion.Client.List do
  @moduledoc false
  # Aion.list/3 and Aion.count/2: checking the filter and the options,
  # turning them into what the NIF takes, and the rows and the cursor back
  # into Elixir terms. The query itself runs in the store (SQL on SQLite).

  alias Aion.{Engine, Instance}
  alias Aion.SearchAttributes

  @statuses [
    :running,
    :completed,
    :failed,
    :cancelled,
    :terminated,
    :timed_out,
    :continued_as_new
  ]
  @times [:started_after, :started_before, :closed_after, :closed_before]
  @keys [:type, :status, :search] ++ @times
  @ops %{:== => :eq, :> => :gt, :>= => :ge, :< => :lt, :<= => :le}
  @default_limit 100
  @max_limit 1000
  @cursor_prefix "c1."

  def list(%Instance{engine: engine}, filter, opts) do
    with {:ok, filter} <- filter(filter, "Aion.list"),
         {:ok, limit} <- limit(opts),
         {:ok, cursor} <- cursor(opts),
         {:ok, page} <- Engine.list(engine, filter, cursor, limit) do
      {:ok, %{workflows: Enum.map(page.workflows, &row/1), cursor: encode_cursor(page.next)}}
    end
  end

  def count(%Instance{engine: engine}, filter) do
    with {:ok, filter} <- filter(filter, "Aion.count") do
      Engine.count(engine, filter)
    end
  end

  @doc false
  def default_limit, do: @default_limit
  @doc false
  def max_limit, do: @max_limit

  defp filter(filter, entry) when is_map(filter), do: filter(Map.to_list(filter), entry)

  defp filter(filter, entry) when is_list(filter) do
    empty = %{
      workflow_type: nil,
      statuses: [],
      started_after: nil,
      started_before: nil,
      closed_after: nil,
      closed_before: nil,
      search: []
    }

    Enum.reduce_while(filter, {:ok, empty, []}, fn
      {key, value}, {:ok, acc, seen} when key in @keys ->
        if key in seen do
          {:halt, invalid(entry, "filter key #{inspect(key)} is given twice")}
        else
          case field(key, value, entry) do
            {:ok, fields} -> {:cont, {:ok, Map.merge(acc, fields), [key | seen]}}
            error -> {:halt, error}
          end
        end

      {key, _value}, _acc when is_atom(key) ->
        {:halt,
         invalid(
           entry,
           "unknown filter key #{inspect(key)} (known keys: #{Enum.map_join(@keys, ", ", &inspect/1)})"
         )}

      other, _acc ->
        {:halt,
         invalid(
           entry,
           "expected the filter to be a keyword list or a map, got an entry: #{inspect(other)}"
         )}
    end)
    |> case do
      {:ok, filter, _seen} -> {:ok, filter}
      error -> error
    end
  end

  defp filter(other, entry),
    do:
      invalid(entry, "expected the filter to be a keyword list or a map, got: #{inspect(other)}")

  defp field(:type, type, entry) when is_binary(type) and type != "",
    do: ok_if_valid(type, %{workflow_type: type}, entry)

  defp field(:type, module, entry) when is_atom(module) and module not in [nil, true, false] do
    if Aion.Workflow.workflow?(module),
      do: {:ok, %{workflow_type: Aion.Workflow.type(module)}},
      else:
        invalid(
          entry,
          "expected :type to be a workflow module or a type name, got: #{inspect(module)} (not a workflow module)"
        )
  end

  defp field(:type, other, entry),
    do:
      invalid(
        entry,
        "expected :type to be a workflow module or a type name, got: #{inspect(other)}"
      )

  defp field(:status, status, entry) when is_atom(status), do: field(:status, [status], entry)

  defp field(:status, [_ | _] = statuses, entry) do
    case Enum.reject(statuses, &(&1 in @statuses)) do
      [] ->
        {:ok, %{statuses: Enum.uniq(statuses)}}

      [bad | _] ->
        invalid(
          entry,
          "unknown status #{inspect(bad)} in :status (statuses: #{Enum.map_join(@statuses, ", ", &inspect/1)})"
        )
    end
  end

  defp field(:status, other, entry) do
    invalid(
      entry,
      "expected :status to be a status or a non-empty list of them (#{Enum.map_join(@statuses, ", ", &inspect/1)}), got: #{inspect(other)}"
    )
  end

  defp field(key, %DateTime{} = at, _entry) when key in @times,
    do: {:ok, %{key => DateTime.to_unix(at, :microsecond)}}

  defp field(key, other, entry) when key in @times,
    do: invalid(entry, "expected #{inspect(key)} to be a DateTime, got: #{inspect(other)}")

  defp field(:search, search, entry) when is_map(search) do
    Enum.reduce_while(search, {:ok, []}, fn {key, condition}, {:ok, acc} ->
      with {:ok, name} <- SearchAttributes.name(key),
           {:ok, op} <- condition(name, condition) do
        {:cont, {:ok, [{name, op} | acc]}}
      else
        {:error, message} -> {:halt, invalid(entry, ":search: " <> message)}
      end
    end)
    |> case do
      {:ok, conditions} -> {:ok, %{search: Enum.sort(conditions)}}
      error -> error
    end
  end

  defp field(:search, other, entry),
    do:
      invalid(
        entry,
        "expected :search to be a map of search attribute names to values or conditions, got: #{inspect(other)}"
      )

  defp ok_if_valid(type, fields, entry) do
    if String.valid?(type),
      do: {:ok, fields},
      else:
        invalid(
          entry,
          "expected :type to be a workflow module or a type name, got: #{inspect(type)}"
        )
  end

  # A value (equality), {op, value} with op one of :==, :>, :>=, :<, :<=,
  # or {:between, low, high} (both included).
  defp condition(name, {:between, low, high}) do
    with {:ok, low} <- SearchAttributes.value(low, name),
         {:ok, high} <- SearchAttributes.value(high, name) do
      {:ok, {:between, low, high}}
    end
  end

  defp condition(name, {op, value}) when is_map_key(@ops, op) do
    with {:ok, tagged} <- SearchAttributes.value(value, name),
         do: {:ok, {Map.fetch!(@ops, op), tagged}}
  end

  defp condition(name, condition) when is_tuple(condition) do
    {:error,
     "search attribute #{inspect(name)}: expected a value, {op, value} with op one of :==, :>, :>=, :<, :<=, " <>
       "or {:between, low, high}, got: #{inspect(condition)}"}
  end

  defp condition(name, value) do
    with {:ok, tagged} <- SearchAttributes.value(value, name), do: {:ok, {:eq, tagged}}
  end

  defp limit(opts) do
    case option(opts, :limit, @default_limit) do
      {:ok, limit} when is_integer(limit) and limit in 1..@max_limit ->
        {:ok, limit}

      {:ok, other} ->
        bad_option(
          "expected :limit to be an integer from 1 to #{@max_limit}, got: #{inspect(other)}"
        )

      error ->
        error
    end
  end

  defp cursor(opts) do
    with {:ok, cursor} <- option(opts, :cursor, nil), do: decode_cursor(cursor)
  end

  defp option(opts, key, default) when is_list(opts) do
    case Keyword.keys(opts) -- [:limit, :cursor] do
      [] ->
        {:ok, Keyword.get(opts, key, default)}

      [unknown | _] ->
        bad_option("unknown option #{inspect(unknown)} (known options: :limit, :cursor)")
    end
  rescue
    ArgumentError ->
      bad_option("expected the options to be a keyword list, got: #{inspect(opts)}")
  end

  defp option(opts, _key, _default),
    do: bad_option("expected the options to be a keyword list, got: #{inspect(opts)}")

  # The cursor is opaque to callers: a string that names the last row of a page.
  defp encode_cursor(nil), do: nil

  defp encode_cursor({micros, id}),
    do: @cursor_prefix <> Base.url_encode64("#{micros}:#{id}", padding: false)

  defp decode_cursor(nil), do: {:ok, nil}

  defp decode_cursor(@cursor_prefix <> encoded = cursor) do
    with {:ok, text} <- Base.url_decode64(encoded, padding: false),
         [micros, id] <- String.split(text, ":", parts: 2),
         {micros, ""} <- Integer.parse(micros),
         true <- id != "" and String.valid?(id) do
      {:ok, {micros, id}}
    else
      _ -> bad_cursor(cursor)
    end
  end

  defp decode_cursor(other), do: bad_cursor(other)

  defp bad_cursor(cursor),
    do:
      bad_option(
        "expected :cursor to be nil or the :cursor of a previous page, got: #{inspect(cursor)}"
      )

  defp row(row) do
    row
    |> Aion.History.times([:started_at, :closed_at])
    |> Map.update!(:search_attributes, &SearchAttributes.decode/1)
  end

  defp invalid(entry, message),
    do: {:error, Aion.Error.new(:invalid_filter, "#{entry}: #{message}")}

  defp bad_option(message), do: {:error, Aion.Error.new(:invalid_option, "Aion.list: #{message}")}
end
