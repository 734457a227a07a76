defmodule Aion.Client.Start do
  @moduledoc false
  # Starting workflows: option checks, and giving a just-started run its process.

  alias Aion.Instance
  alias Aion.Run.{Process, Reconciler}

  @doc "The `:id` option: nil (a UUID is generated) or a non-empty UTF-8 string."
  def id_option(opts, entry) do
    case Keyword.fetch(opts, :id) do
      :error ->
        {:ok, nil}

      {:ok, id} when is_binary(id) and id != "" ->
        with :ok <- check_id(id, entry), do: {:ok, id}

      {:ok, other} ->
        {:error, Aion.Error.new(:invalid_option, "#{entry}: expected :id to be a non-empty string, got: #{inspect(other)}")}
    end
  end

  @id_reuse [:allow_duplicate, :allow_duplicate_failed_only, :reject_duplicate]

  @doc """
  The start options the engine takes, as the NIF takes them:
  `{execution_ms | nil, run_ms | nil, id_reuse, search_attributes}` from
  `:execution_timeout` and `:run_timeout` (positive integers, milliseconds),
  `:id_reuse` and `:search_attributes` (a map; see Aion.SearchAttributes).
  """
  def engine_options(opts, entry) do
    with {:ok, execution} <- positive(opts, :execution_timeout, entry),
         {:ok, run} <- positive(opts, :run_timeout, entry),
         {:ok, id_reuse} <- one_of(opts, :id_reuse, @id_reuse, entry),
         {:ok, attributes} <- search_attributes(opts, entry) do
      {:ok, {execution, run, Atom.to_string(id_reuse), attributes}}
    end
  end

  defp search_attributes(opts, entry) do
    case Keyword.get(opts, :search_attributes, %{}) do
      attributes when is_map(attributes) ->
        case Aion.SearchAttributes.encode(attributes) do
          {:ok, tagged} -> {:ok, tagged}
          {:error, message} -> {:error, Aion.Error.new(:invalid_search_attribute, "#{entry}: #{message}")}
        end

      other ->
        {:error, Aion.Error.new(:invalid_option, "#{entry}: expected :search_attributes to be a map, got: #{inspect(other)}")}
    end
  end

  @doc """
  Applies the `:if_running` option to a start's answer: with `:use_existing`,
  a workflow already running under the id is the answer (`{:ok, id}`), so
  that a retried start is idempotent.
  """
  def if_running(%Instance{} = instance, opts, entry, start) do
    with {:ok, if_running} <- one_of(opts, :if_running, [:error, :use_existing], entry) do
      case {start.(), if_running, Keyword.get(opts, :id)} do
        # Refused because it runs (not because an id reuse policy refused a finished one).
        {{:error, %Aion.Error{reason: :already_started}} = refused, :use_existing, id} when is_binary(id) ->
          case Aion.Engine.terminal(instance.engine, id) do
            {:ok, :running} -> {:ok, id}
            _ -> refused
          end

        {answer, _, _} ->
          answer
      end
    end
  end

  defp one_of(opts, key, [default | _] = allowed, entry) do
    case Keyword.get(opts, key, default) do
      value when is_atom(value) and value != nil ->
        if value in allowed, do: {:ok, value}, else: bad_choice(key, allowed, value, entry)

      value ->
        bad_choice(key, allowed, value, entry)
    end
  end

  defp bad_choice(key, allowed, value, entry) do
    {:error, Aion.Error.new(:invalid_option, "#{entry}: expected #{inspect(key)} to be one of #{inspect(allowed)}, got: #{inspect(value)}")}
  end

  defp positive(opts, key, entry) do
    case Keyword.get(opts, key) do
      nil -> {:ok, nil}
      ms when is_integer(ms) and ms > 0 -> {:ok, ms}
      other -> {:error, Aion.Error.new(:invalid_option, "#{entry}: expected #{inspect(key)} to be a positive integer (milliseconds), got: #{inspect(other)}")}
    end
  end

  @doc "`:ok` for a workflow id (a UTF-8 string), else an :invalid_workflow_id error naming `entry`."
  def check_id(id, entry) do
    if is_binary(id) and String.valid?(id) do
      :ok
    else
      {:error, Aion.Error.new(:invalid_workflow_id, "#{entry}: expected a workflow id (a UTF-8 string), got: #{inspect(id)}")}
    end
  end

  @doc "The type of `module`, if it is a workflow of the instance."
  def workflow_type(%Instance{config: config}, module, entry) do
    if module in config.workflows do
      {:ok, Aion.Workflow.type(module)}
    else
      {:error,
       Aion.Error.new(
         :unknown_workflow,
         "#{entry}: #{inspect(module)} is not a workflow of instance #{inspect(config.name)} " <>
           "(its :workflows are #{inspect(config.workflows)})"
       )}
    end
  end

  @doc "Gives the run just started (its handle `run`) its process."
  def spawn_run(name, module, type, workflow_id, run) do
    case Process.start_fresh(name, module, workflow_id, run) do
      {:ok, _pid} ->
        :ok

      # The reconciler saw the new run first and gave it a process.
      {:error, {:already_started, _pid}} ->
        :ok

      # The start is durable: the run gets its process from the reconciler
      # (at once, or from its first sweep if the instance is starting).
      {:error, _reason} ->
        Reconciler.respawn(name, workflow_id, type)
    end
  end
end
