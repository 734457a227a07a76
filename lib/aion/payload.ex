defmodule Aion.Payload do
  @moduledoc """
  How Aion stores values: workflow inputs and results, activity arguments and
  results, recorded markers.

  Any term without pids, references, ports or funs round-trips exactly
  (atoms, tuples, maps, structs, keyword lists, binaries, numbers). Those four
  kinds of terms name things that live only inside one running VM, so they
  cannot survive a restart and are refused with a clear error instead.

      iex> {:ok, bin} = Aion.Payload.encode(%{order: 42, items: [{:sku, "A-1"}]})
      iex> Aion.Payload.decode(bin)
      %{order: 42, items: [{:sku, "A-1"}]}

      iex> {:error, error} = Aion.Payload.encode(%{reply_to: self()})
      iex> error.reason
      :unserializable
  """

  @doc """
  Encodes `term`, or explains why it cannot be stored. `what` names the
  value in the error message.
  """
  @spec encode(term(), String.t()) :: {:ok, binary()} | {:error, Aion.Error.t()}
  def encode(term, what \\ "the value") do
    case find_unserializable(term, []) do
      nil ->
        {:ok, :erlang.term_to_binary(term)}

      {kind, path} ->
        {:error,
         Aion.Error.new(
           :unserializable,
           "#{what} cannot be stored: it holds a #{kind} (at #{format_path(path)}); pids, references, " <>
             "ports and funs only exist inside one running VM and would not survive a restart",
           details: %{kind: kind, path: path}
         )}
    end
  end

  @doc "Like `encode/2`, but raises `Aion.Error`."
  @spec encode!(term(), String.t()) :: binary()
  def encode!(term, what \\ "the value") do
    case encode(term, what) do
      {:ok, binary} -> binary
      {:error, error} -> raise error
    end
  end

  @doc "Decodes a stored payload."
  @spec decode(binary()) :: term()
  def decode(binary) when is_binary(binary), do: :erlang.binary_to_term(binary)

  defp find_unserializable(term, path) when is_pid(term), do: {:pid, Enum.reverse(path)}
  defp find_unserializable(term, path) when is_reference(term), do: {:reference, Enum.reverse(path)}
  defp find_unserializable(term, path) when is_port(term), do: {:port, Enum.reverse(path)}
  defp find_unserializable(term, path) when is_function(term), do: {:function, Enum.reverse(path)}

  defp find_unserializable(term, path) when is_tuple(term) do
    term |> Tuple.to_list() |> find_in_list(0, path)
  end

  defp find_unserializable(term, path) when is_map(term) do
    # :maps.to_list/1 also walks structs, which are not Enumerable.
    term
    |> :maps.to_list()
    |> Enum.find_value(fn {key, value} ->
      find_unserializable(key, [{:key, key} | path]) || find_unserializable(value, [key | path])
    end)
  end

  defp find_unserializable(term, path) when is_list(term), do: find_in_list(term, 0, path)
  defp find_unserializable(_term, _path), do: nil

  defp find_in_list([head | tail], index, path) do
    find_unserializable(head, [index | path]) || find_in_list(tail, index + 1, path)
  end

  defp find_in_list([], _index, _path), do: nil
  # An improper list's tail.
  defp find_in_list(tail, index, path), do: find_unserializable(tail, [index | path])

  defp format_path([]), do: "the top level"
  defp format_path(path), do: Enum.map_join(path, " -> ", &inspect/1)
end
