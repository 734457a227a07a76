defmodule Aion.Workflow.Query.Replay do
  @moduledoc false
  # Answering a query of a workflow that has no process on this node
  # (evicted while it sleeps, finished, or not respawned yet after a
  # restart): its code runs once more, in a temporary process, against its
  # latest run loaded read-only (`Engine.load_readonly/2`: no ownership is
  # taken, nothing is installed in the engine, a resident or respawned
  # process of the run is not disturbed).
  #
  # Commands that history resolves replay as usual. The first one that
  # would record or wait (the live edge, or a command still waiting for its
  # outcome) is refused by the read-only run, which lands in
  # `Aion.Workflow.Command.engine_error/2` and then in stopped/2 here: the
  # query is answered with the handlers registered so far and the process
  # ends. A workflow whose code returns (or raises) before that is answered
  # at its return. So nothing is recorded, no activity is dispatched, no
  # timer is armed. Code that does not replay its history (non-determinism)
  # fails the query with that error.

  alias Aion.{Engine, Instance, Payload}
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Query

  @doc """
  Starts the replay of run `run_id` (the latest when nil) answering `name`
  with `args` to `reply_to`; returns
  `{pid, monitor}`. The caller kills it if it gives up waiting.
  """
  def start(%Instance{} = instance, workflow_id, run_id, reply_to, name, args) do
    spawn_monitor(fn -> replay(instance, workflow_id, run_id, {reply_to, name, args}) end)
  end

  defp replay(instance, workflow_id, run_id, {reply_to, _name, _args} = query) do
    with {:ok, run, info, _status} <- Engine.load_readonly(instance.engine, workflow_id, run_id),
         {:ok, module} <- module(instance, info) do
      RunProcess.put_context(%{
        instance: instance.config.name,
        engine: instance.engine,
        run: run,
        tag: nil,
        workflow_id: workflow_id,
        run_id: info.run_id,
        module: module,
        parent: nil,
        activities: nil,
        evict_idle_after: :never,
        queues: instance.config.queues,
        query: query
      })

      run_code(module, Payload.decode(info.input))

      # The code returned: it must have issued every recorded command (else
      # it is not the code that wrote this history).
      case Engine.finish(run) do
        :ok -> answer(query)
        {:error, error} -> Query.reply(reply_to, {:error, error})
      end
    else
      {:error, error} -> Query.reply(reply_to, {:error, error})
    end
  end

  defp module(instance, %{workflow_type: type}) do
    case Instance.workflow_module(instance, type) do
      {:ok, module} ->
        {:ok, module}

      {:error, :unknown_type} ->
        {:error,
         Aion.Error.new(
           :unknown_workflow,
           "cannot answer a query by replay: workflow type #{inspect(type)} is not among the :workflows of " <>
             "instance #{inspect(instance.config.name)}"
         )}
    end
  end

  # The code returned, or failed: the query is answered with what it registered.
  defp run_code(module, input) do
    module.run(input)
  catch
    _kind, _value -> :ok
  end

  @doc false
  # Called by `Aion.Workflow.Command.engine_error/2` when the read-only run
  # refuses a command (the replay has gone as far as history goes), or
  # replay fails (non-determinism: the query fails with it). Never returns.
  def stopped(%{query: query}, %Aion.Error{reason: :read_only}) do
    answer(query)
    RunProcess.exit_now(:normal)
  end

  def stopped(%{query: {reply_to, _name, _args}}, error) do
    Query.reply(reply_to, {:error, error})
    RunProcess.exit_now(:normal)
  end

  @doc false
  # Called when the replayed code continues as new: it is over, as if it
  # returned. Never returns.
  def returned(%{query: query, run: run}) do
    case Engine.finish(run) do
      :ok -> answer(query)
      {:error, error} -> Query.reply(elem(query, 0), {:error, error})
    end

    RunProcess.exit_now(:normal)
  end

  defp answer({reply_to, name, args}), do: Query.reply(reply_to, Query.handle(name, args))
end
