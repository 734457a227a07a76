defmodule Aion.Workflow.Command do
  @moduledoc false
  # Resolving and recording commands for workflow code, and what happens when
  # the engine refuses: non-determinism suspends the run (or fails it, with
  # `on_nondeterminism: :fail`); any other engine error stops the process so
  # that the run is respawned and replayed.

  require Logger

  alias Aion.{Engine, Payload}
  alias Aion.Run.Process, as: RunProcess

  @doc "Resolves the next command: {:replayed, n, outcome} | {:pending, n, work} | {:live, n}."
  def resolve(context, kind, name) do
    case Engine.resolve(context.run, kind, name) do
      {:error, error} -> engine_error(context, error)
      resolution -> resolution
    end
  end

  @doc "Records `command`; returns once it is durable."
  def record(context, command) do
    case Engine.record(context.run, command) do
      :ok -> :ok
      {:error, error} -> engine_error(context, error)
    end
  end

  @doc "Encodes a value workflow code hands to a command, raising ArgumentError if it cannot be stored."
  def encode!(term, what) do
    case Payload.encode(term, what) do
      {:ok, payload} -> payload
      {:error, error} -> raise ArgumentError, error.message
    end
  end

  @doc false
  # Never returns: the process stops.
  def engine_error(context, %Aion.Error{reason: :nondeterminism} = error) do
    case Aion.Workflow.on_nondeterminism(context.module) do
      :fail ->
        {:shutdown, failed} = RunProcess.failed(context.workflow_id, error)
        RunProcess.stop(failed)

      :suspend ->
        Logger.error(
          "Aion: workflow #{context.workflow_id} is suspended (it stays running, nothing is recorded) " <>
            "until code that replays its history runs: #{error.message}"
        )

        blocked = %{run_id: context.run_id, code: error.code || "", message: error.message, code_version: code_version(context.module)}
        _ = Engine.block(context.engine, context.workflow_id, blocked)
        RunProcess.stop(:aion_blocked)
    end
  end

  def engine_error(_context, %Aion.Error{reason: :superseded}), do: RunProcess.stop(:aion_superseded)
  def engine_error(_context, error), do: RunProcess.stop({:aion_retry, error})

  @doc false
  # Identifies the code that ran: a blocked run is tried again once it changes.
  def code_version(module), do: Base.encode16(module.module_info(:md5), case: :lower)
end
