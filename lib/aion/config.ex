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
    * `:evict_idle_after` - milliseconds a workflow may wait on a durable
      timer before its process is *evicted* (ended, its memory freed; the
      store keeps everything), or `:never`. Defaults to `60_000`. An evicted
      workflow is made resident again (respawned and replayed) when its
      timer fires, so a million sleeping workflows cost little more than
      their timers.
    * `:queues` - activity queues and how many activities of each may run at
      once on this instance, e.g. `[default: 50, email: 5]` (a positive
      integer, or `:infinity`). An activity picks its queue with the
      `:queue` option (`Aion.Workflow.activity/4`); excess executions wait,
      in order, and their `:timeout` starts when they run. The `:default`
      queue always exists, unlimited unless listed.

  ## Examples

      iex> {:ok, config} = Aion.Config.validate(store: :memory)
      iex> {config.name, config.store, config.durability}
      {Aion, :memory, :full}

      iex> {:error, error} = Aion.Config.validate(store: {:postgres, "db"})
      iex> error.message
      ~s(Aion: expected :store to be :memory or {:sqlite, path}, got: {:postgres, "db"})

      iex> {:error, error} = Aion.Config.validate(store: :memory, stores: :memory)
      iex> error.message
      "Aion: unknown option :stores (known options: :name, :store, :workflows, :durability, :evict_idle_after, :queues)"
  """

  @enforce_keys [:name, :store]
  defstruct [:name, :store, workflows: [], durability: :full, evict_idle_after: 60_000, queues: %{default: :infinity}, types: %{}]

  @type t :: %__MODULE__{
          name: term(),
          store: :memory | {:sqlite, String.t()},
          workflows: [module()],
          durability: :full | :normal,
          evict_idle_after: non_neg_integer() | :never,
          queues: %{atom() => pos_integer() | :infinity},
          types: %{String.t() => module()}
        }

  @known [:name, :store, :workflows, :durability, :evict_idle_after, :queues]

  @doc "Validates instance options."
  @spec validate(keyword()) :: {:ok, t()} | {:error, Aion.Error.t()}
  def validate(opts) when is_list(opts) do
    with :ok <- check_keyword(opts),
         :ok <- check_known(opts),
         {:ok, store} <- store(Keyword.fetch(opts, :store)),
         {:ok, durability} <- durability(Keyword.get(opts, :durability, :full)),
         {:ok, evict_idle_after} <- evict_idle_after(Keyword.get(opts, :evict_idle_after, 60_000)),
         {:ok, queues} <- queues(Keyword.get(opts, :queues, [])),
         {:ok, workflows} <- workflows(Keyword.get(opts, :workflows, [])),
         {:ok, types} <- types(workflows) do
      {:ok,
       %__MODULE__{
         name: Keyword.get(opts, :name, Aion),
         store: store,
         durability: durability,
         evict_idle_after: evict_idle_after,
         queues: queues,
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

  defp queues(queues) do
    valid? = fn {queue, limit} -> is_atom(queue) and (limit == :infinity or (is_integer(limit) and limit > 0)) end

    if is_list(queues) and Keyword.keyword?(queues) and Enum.all?(queues, valid?) do
      {:ok, Map.merge(%{default: :infinity}, Map.new(queues))}
    else
      invalid("expected :queues to be a keyword list of queue names and limits (positive integers or :infinity), got: #{inspect(queues)}")
    end
  end

  defp evict_idle_after(:never), do: {:ok, :never}
  defp evict_idle_after(ms) when is_integer(ms) and ms >= 0, do: {:ok, ms}

  defp evict_idle_after(other),
    do: invalid("expected :evict_idle_after to be a non-negative integer (milliseconds) or :never, got: #{inspect(other)}")

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
