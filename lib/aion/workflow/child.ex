defmodule Aion.Workflow.Child do
  @moduledoc false
  # Workflow code talking to other workflows: child workflows
  # (Aion.Workflow.start_child/3 and friends) and signals
  # (Aion.Workflow.signal_workflow/3). The engine records first, then acts
  # (starts the child, delivers the signal); a replay that finds the command
  # recorded asks the engine to finish what a crash may have interrupted.

  alias Aion.{Engine, Instance, Payload}
  alias Aion.Client.Start
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Command

  @parent_close [:terminate, :request_cancel, :abandon]
  @max_id_bytes 255

  @doc "Starts a child workflow; returns its future."
  def start(module, input, opts) when is_list(opts) do
    context = RunProcess.context()
    type = child_type!(context, module)
    {id, parent_close, options} = options!(opts)

    case Command.resolve(context, :child_workflow, type) do
      {:replayed, ordinal, _outcome} ->
        future(ordinal, type, id || default_id(context, ordinal))

      {:pending, ordinal, {:child_workflow, child_id}} ->
        unless Map.has_key?(context, :query), do: act(context, module, type, Engine.start_child(context.run, ordinal, nil, Command.scope()))
        future(ordinal, type, child_id)

      {:live, ordinal} ->
        payload = Command.encode!(input, "the input of child workflow #{type}")
        child_id = id || default_id(context, ordinal)
        child = {child_id, type, payload, Atom.to_string(parent_close), options}
        act(context, module, type, Engine.start_child(context.run, ordinal, child, Command.scope()))
        future(ordinal, type, child_id)
    end
  end

  def start(_module, _input, opts), do: raise(ArgumentError, "start_child: expected options to be a keyword list, got: #{inspect(opts)}")

  defp act(context, module, type, answer) do
    case answer do
      {:ok, {:started, run, child_id}} -> Start.spawn_run(context.instance, module, type, child_id, run)
      {:ok, done} when done in [:running, :resolved] -> :ok
      {:interrupted, _, _} = interrupt -> Command.interrupted(context, interrupt)
      {:error, error} -> Command.engine_error(context, error)
    end
  end

  defp future(ordinal, type, child_id), do: %Aion.Future{ordinal: ordinal, kind: :child, name: type, workflow_id: child_id}

  @doc "Asks a child to cancel (its ending reaches the parent's future)."
  def cancel(%Aion.Future{kind: :child, ordinal: ordinal}) do
    context = RunProcess.context()

    case Engine.cancel_child(context.run, ordinal) do
      :ok -> :ok
      {:error, error} -> Command.engine_error(context, error)
    end
  end

  def cancel(other), do: raise(ArgumentError, "cancel_child/1 expects the future of a child workflow, got: #{inspect(other)}")

  @doc "Sends a signal to another workflow: :ok or {:error, %Aion.Error{reason: :not_found | :not_running}}."
  def signal(target, name, payload) do
    context = RunProcess.context()
    check_id!(target, "signal_workflow")

    case Command.resolve(context, :signal_send, name) do
      {:replayed, ordinal, {:recorded, _payload}} ->
        sent(context, target, Engine.signal_workflow(context.run, ordinal, nil, Command.scope()))

      {:replayed, _ordinal, {:aion_error, reason, _value}} ->
        {:error, not_delivered(reason, target)}

      {:live, ordinal} ->
        encoded = Command.encode!(payload, "the payload of signal #{name}")
        sent(context, target, Engine.signal_workflow(context.run, ordinal, {target, name, encoded}, Command.scope()))
    end
  end

  defp sent(context, target, answer) do
    case answer do
      {:ok, :sent} -> :ok
      {:ok, {:failed, reason}} -> {:error, not_delivered(reason, target)}
      {:interrupted, _, _} = interrupt -> Command.interrupted(context, interrupt)
      {:error, error} -> Command.engine_error(context, error)
    end
  end

  defp not_delivered(reason, target) do
    why = if reason == "not_found", do: "there is no workflow #{target}", else: "workflow #{target} is not running"
    Aion.Error.new(String.to_existing_atom(reason), "signal_workflow: the signal was not delivered: #{why}", details: %{workflow_id: target})
  end

  @doc "How a child command ended, as `await/1` returns it."
  def result({:completed, payload}, _future), do: {:ok, Payload.decode(payload)}
  def result({:failed, payload}, _future), do: {:error, Payload.decode(payload)}
  def result(:cancelled, future), do: {:error, Aion.Error.new(:cancelled, "child workflow #{future.workflow_id} was cancelled", details: %{workflow_id: future.workflow_id})}

  def result({:aion_error, reason, payload}, future) do
    value = Payload.decode(payload)
    id = future.workflow_id

    {message, details} =
      case reason do
        "terminated" -> {"child workflow #{id} was terminated: #{inspect(value)}", %{workflow_id: id, reason: value}}
        "timed_out" -> {"child workflow #{id} timed out", %{workflow_id: id}}
        "already_started" -> {"child workflow #{id} was not started: the workflow id is taken", %{workflow_id: id}}
        other -> {"child workflow #{id} was not started: #{other}", %{workflow_id: id}}
      end

    {:error, Aion.Error.new(String.to_existing_atom(reason), message, details: details)}
  end

  # The type of a child module the instance runs; else raises before anything is recorded.
  defp child_type!(context, module) do
    {:ok, instance} = Instance.lookup(context.instance)

    case Start.workflow_type(instance, module, "start_child") do
      {:ok, type} -> type
      {:error, error} -> raise ArgumentError, error.message
    end
  end

  @options [:id, :parent_close, :execution_timeout, :run_timeout, :id_reuse, :search_attributes]

  defp options!(opts) do
    case Keyword.keys(opts) -- @options do
      [] -> :ok
      unknown -> raise ArgumentError, "start_child: unknown options #{inspect(unknown)} (known: #{inspect(@options)})"
    end

    id =
      case Start.id_option(opts, "start_child") do
        {:ok, id} -> id
        {:error, error} -> raise ArgumentError, error.message
      end

    if id, do: check_id!(id, "start_child")
    parent_close = Keyword.get(opts, :parent_close, :terminate)

    unless parent_close in @parent_close do
      raise ArgumentError, "start_child: expected :parent_close to be one of #{inspect(@parent_close)}, got: #{inspect(parent_close)}"
    end

    case Start.engine_options(opts, "start_child") do
      {:ok, options} -> {id, parent_close, options}
      {:error, error} -> raise ArgumentError, error.message
    end
  end

  defp check_id!(id, entry) do
    cond do
      not is_binary(id) or id == "" or not String.valid?(id) ->
        raise ArgumentError, "#{entry}: expected a workflow id (a non-empty UTF-8 string), got: #{inspect(id)}"

      byte_size(id) > @max_id_bytes ->
        raise ArgumentError, "#{entry}: a workflow id is at most #{@max_id_bytes} bytes, got #{byte_size(id)}"

      String.match?(id, ~r/[[:cntrl:]]/u) ->
        raise ArgumentError, "#{entry}: a workflow id must not contain control characters, got: #{inspect(id)}"

      true ->
        :ok
    end
  end

  # Deterministic: the parent's id, its run and the command (the run's id
  # keeps the children of successive runs apart); the run and the command
  # alone when the parent's id is too long for both.
  defp default_id(context, ordinal) do
    id = "#{context.workflow_id}/#{context.run_id}/#{ordinal}"
    if byte_size(id) <= @max_id_bytes, do: id, else: "#{context.run_id}/#{ordinal}"
  end
end
