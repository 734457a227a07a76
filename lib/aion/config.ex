defmodule Aion.Config do
  @moduledoc """
  The options of an Aion instance, validated once when it starts.

    * `:name` - the instance name, used as the first argument of every
      `Aion` function. Any term; defaults to `Aion`. Several instances can run
      in one VM under different names.
    * `:store` - required. `:memory` (nothing survives the VM) or
      `{:sqlite, path}`: an SQLite file, created if missing, in a directory
      that must exist.
    * `:workflows` - the workflow modules (`use Aion.Workflow`) this instance
      runs. Defaults to `[]`.
    * `:durability` - `:full` (default: every acknowledged write is fsynced and
      survives power loss) or `:normal` (survives a VM crash, not power loss;
      faster).

  ## Examples

      iex> {:ok, config} = Aion.Config.validate(store: :memory)
      iex> {config.name, config.store, config.durability}
      {Aion, :memory, :full}

      iex> {:error, error} = Aion.Config.validate(store: {:postgres, "db"})
      iex> error.message
      ~s(Aion: expected :store to be :memory or {:sqlite, path}, got: {:postgres, "db"})

      iex> {:error, error} = Aion.Config.validate(store: :memory, stores: :memory)
      iex> error.message
      "Aion: unknown option :stores (known options: :name, :store, :workflows, :durability)"
  """

  @enforce_keys [:name, :store]
  defstruct [:name, :store, workflows: [], durability: :full, types: %{}]

  @type t :: %__MODULE__{
          name: term(),
          store: :memory | {:sqlite, String.t()},
          workflows: [module()],
          durability: :full | :normal,
          types: %{String.t() => module()}
        }

  @known [:name, :store, :workflows, :durability]

  @doc "Validates instance options."
  @spec validate(keyword()) :: {:ok, t()} | {:error, Aion.Error.t()}
  def validate(opts) when is_list(opts) do
    with :ok <- check_keyword(opts),
         :ok <- check_known(opts),
         {:ok, store} <- store(Keyword.fetch(opts, :store)),
         {:ok, durability} <- durability(Keyword.get(opts, :durability, :full)),
         {:ok, workflows} <- workflows(Keyword.get(opts, :workflows, [])),
         {:ok, types} <- types(workflows) do
      {:ok,
       %__MODULE__{
         name: Keyword.get(opts, :name, Aion),
         store: store,
         durability: durability,
         workflows: workflows,
         types: types
       }}
    end
  end

  def validate(other), do: invalid("expected options to be a keyword list, got: #{inspect(other)}")

  defp check_keyword(opts) do
    if Keyword.keyword?(opts), do: :ok, else: invalid("expected options to be a keyword list, got: #{inspect(opts)}")
  end

  defp check_known(opts) do
    case Enum.find(Keyword.keys(opts), &(&1 not in @known)) do
      nil -> :ok
      key -> invalid("unknown option #{inspect(key)} (known options: #{Enum.map_join(@known, ", ", &inspect/1)})")
    end
  end

  defp store({:ok, :memory}), do: {:ok, :memory}

  defp store({:ok, {:sqlite, path}}) when is_binary(path) and path != "" do
    {:ok, {:sqlite, Path.expand(path)}}
  end

  defp store({:ok, other}), do: invalid("expected :store to be :memory or {:sqlite, path}, got: #{inspect(other)}")
  defp store(:error), do: invalid("the :store option is required (:memory or {:sqlite, path})")

  defp durability(value) when value in [:full, :normal], do: {:ok, value}
  defp durability(other), do: invalid("expected :durability to be :full or :normal, got: #{inspect(other)}")

  defp workflows(modules) when is_list(modules) do
    case Enum.find(modules, &(not Aion.Workflow.workflow?(&1))) do
      nil ->
        {:ok, Enum.uniq(modules)}

      module ->
        invalid("expected :workflows to list modules that `use Aion.Workflow`, got: #{inspect(module)}")
    end
  end

  defp workflows(other), do: invalid("expected :workflows to be a list of modules, got: #{inspect(other)}")

  defp types(modules) do
    Enum.reduce_while(modules, {:ok, %{}}, fn module, {:ok, types} ->
      type = Aion.Workflow.type(module)

      case types do
        %{^type => other} ->
          {:halt, invalid("#{inspect(module)} and #{inspect(other)} both use the workflow type #{inspect(type)}")}

        _ ->
          {:cont, {:ok, Map.put(types, type, module)}}
      end
    end)
  end

  defp invalid(message), do: {:error, Aion.Error.new(:invalid_option, "Aion: " <> message)}
end
