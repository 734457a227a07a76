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
