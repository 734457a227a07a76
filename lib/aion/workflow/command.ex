defmodule Aion.Workflow.Command do
  @moduledoc false
  # Resolving and recording commands for workflow code, and what happens when
  # the engine refuses: non-determinism suspends the run (or fails it, with
  # `on_nondeterminism: :fail`); any other engine error stops the process so
  # that the run is respawned and replayed.

  require Logger

  alias Aion.{Engine, Payload}
  alias Aion.Run.Process, as: RunProcess

  @scope :"$aion_scope"

  @doc """
  Resolves the next command: {:replayed, n, outcome} | {:pending, n, work} |
  {:live, n}. An interrupt of the current scope raises (or throws, for a
  with_timeout) instead.
  """
  def resolve(context, kind, name) do
    case Engine.resolve(context.run, kind, name, scope()) do
      {:error, error} -> engine_error(context, error)
      {:interrupted, _, _} = interrupt -> interrupted(context, interrupt)
      resolution -> resolution
    end
  end

  @doc "Records a command's opening; returns once it is durable (or raises on an interrupt)."
  def record(context, command) do
    case Engine.record(context.run, command, scope()) do
      :ok -> :ok
      {:interrupted, _, _} = interrupt -> interrupted(context, interrupt)
      {:error, error} -> engine_error(context, error)
    end
  end

  @doc "Records an outcome (never interrupted); returns once it is durable."
  def record_outcome(context, command) do
    case Engine.record(context.run, command, nil) do
      :ok -> :ok
      {:error, error} -> engine_error(context, error)
    end
  end

  @doc "The interrupts the code runs under: enclosing with_timeout timers, and whether it is shielded from cancellation."
  def scope, do: Process.get(@scope, %{timers: [], shielded: false})

  @doc "Runs `fun` with `scope` changed by `change`."
  def in_scope(change, fun) do
    previous = scope()
    Process.put(@scope, change.(previous))

    try do
      fun.()
    after
      Process.put(@scope, previous)
    end
  end

  @doc """
  An interrupt reached the code: a cancellation raises Aion.CancelledError
  (after cancelling the run's pending work); the timer of a with_timeout
  throws to that with_timeout.
  """
  def interrupted(context, {:interrupted, :cancelled, reason}) do
    cancel_pending(context, 0, nil)
    raise Aion.CancelledError, reason: Payload.decode(reason)
  end

  def interrupted(_context, {:interrupted, :timed_out, ordinal}), do: throw({:"$aion_timed_out", ordinal})

  @doc "Cancels the pending commands from..to (exclusive; nil: all after), stopping their activities."
  def cancel_pending(context, from, to) do
    case Engine.cancel_pending(context.run, from, to) do
      {:ok, activities} -> Aion.Activity.Runner.cancel(context, activities)
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
  # A query's replay (it has a :query) stops at the first command its read-only run refuses.
  def engine_error(%{query: _} = context, error), do: Aion.Workflow.Query.Replay.stopped(context, error)

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
