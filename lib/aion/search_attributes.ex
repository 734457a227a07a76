defmodule Aion.SearchAttributes do
  @moduledoc false
  # Search attributes between Elixir and the engine: checking and tagging
  # values for the NIF ({:text, s} | {:int, i} | {:float, f} | {:bool, b} |
  # {:time, microseconds}), and turning the engine's maps back into Elixir
  # values (a time arrives as {:time, microseconds} and becomes a DateTime).

  @max_name_bytes 256
  @int_range -0x8000000000000000..0x7FFFFFFFFFFFFFFF

  @doc """
  Checks a map of attributes (string or atom keys) and tags its values:
  `{:ok, [{name, tagged}]}` (sorted by name) or `{:error, message}`.
  """
  def encode(attributes) when is_map(attributes) do
    Enum.reduce_while(attributes, {:ok, []}, fn {key, value}, {:ok, acc} ->
      with {:ok, name} <- name(key),
           {:ok, tagged} <- value(value, name) do
        {:cont, {:ok, [{name, tagged} | acc]}}
      else
        {:error, message} -> {:halt, {:error, message}}
      end
    end)
    |> case do
      {:ok, tagged} -> check_unique(Enum.sort(tagged))
      error -> error
    end
  end

  def encode(other), do: {:error, "expected a map of search attributes, got: #{inspect(other)}"}

  # :a and "a" are one name: a map holding both is ambiguous.
  defp check_unique(tagged) do
    case tagged
         |> Enum.map(&elem(&1, 0))
         |> Enum.frequencies()
         |> Enum.find(fn {_, n} -> n > 1 end) do
      nil ->
        {:ok, tagged}

      {name, _} ->
        {:error, "search attribute #{inspect(name)} is given twice (as an atom and as a string)"}
    end
  end

  @doc "An attribute's name: a non-empty UTF-8 string (an atom stands for its name)."
  def name(key) when is_atom(key) and key not in [nil, true, false], do: name(Atom.to_string(key))

  def name(key) when is_binary(key) and key != "" and byte_size(key) <= @max_name_bytes do
    if String.valid?(key), do: {:ok, key}, else: bad_name(key)
  end

  def name(key), do: bad_name(key)

  defp bad_name(key) do
    {:error,
     "expected a search attribute name to be a non-empty string (at most #{@max_name_bytes} bytes of UTF-8) or an atom, got: #{inspect(key)}"}
  end

  @doc "A value tagged with its kind, or an error naming the attribute."
  def value(value, name) do
    case tag(value) do
      {:ok, tagged} ->
        {:ok, tagged}

      :error ->
        {:error,
         "search attribute #{inspect(name)}: expected a string, an integer, a float, a boolean or a DateTime, got: #{inspect(value)}"}
    end
  end

  defp tag(value) when is_boolean(value), do: {:ok, {:bool, value}}
  defp tag(value) when is_integer(value) and value in @int_range, do: {:ok, {:int, value}}
  defp tag(value) when is_float(value), do: {:ok, {:float, value}}
  defp tag(%DateTime{} = at), do: {:ok, {:time, DateTime.to_unix(at, :microsecond)}}

  defp tag(value) when is_binary(value) do
    if String.valid?(value), do: {:ok, {:text, value}}, else: :error
  end

  defp tag(_value), do: :error

  @doc "The engine's attribute map with Elixir values (times as DateTime)."
  def decode(attributes) when is_map(attributes) do
    Map.new(attributes, fn
      {name, {:time, micros}} -> {name, Aion.History.time(micros)}
      entry -> entry
    end)
  end

  def decode(other), do: other

  @doc """
  The command name of an upsert of `tagged` attributes: the names, sorted
  bytewise, joined by commas (as `search_attributes_spec` in
  src/replay/mod.rs builds it).
  """
  def spec_name(tagged), do: tagged |> Enum.map(&elem(&1, 0)) |> Enum.sort() |> Enum.join(",")
end
