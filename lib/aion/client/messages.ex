defmodule Aion.Client.Messages do
  @moduledoc false
  # Signals, updates, cancellation requests and terminations from clients: argument checks,
  # encoding, and the wait of an update's caller for its reply.

  alias Aion.{Engine, Instance, Payload}

  import Aion.Client.Start, only: [check_id: 2]

  @first_check 1_000
  @max_check 10_000

  def signal(name, workflow_id, signal_name, payload) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.signal"),
         {:ok, signal_name} <- message_name(signal_name, "Aion.signal"),
         {:ok, payload} <- Payload.encode(payload, "Aion.signal: the payload") do
      Engine.signal(instance.engine, workflow_id, signal_name, payload)
    end
  end

  def signal_with_start(name, module, input, signal_name, payload, opts) do
    with {:ok, instance} <- Instance.lookup(name),
         {:ok, id} <- Aion.Client.Start.id_option(opts, "Aion.signal_with_start"),
         {:ok, options} <- Aion.Client.Start.engine_options(opts, "Aion.signal_with_start"),
         {:ok, type} <- Aion.Client.Start.workflow_type(instance, module, "Aion.signal_with_start"),
         {:ok, signal_name} <- message_name(signal_name, "Aion.signal_with_start"),
         {:ok, input} <- Payload.encode(input, "Aion.signal_with_start: the input"),
         {:ok, payload} <- Payload.encode(payload, "Aion.signal_with_start: the signal's payload"),
         {:ok, workflow_id, run} <- Engine.signal_with_start(instance.engine, {id, type, input, options}, {signal_name, payload}) do
      if run, do: Aion.Client.Start.spawn_run(name, module, type, workflow_id, run)
      {:ok, workflow_id}
    end
  end

  def cancel(name, workflow_id, reason) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.cancel"),
         {:ok, reason} <- Payload.encode(reason, "Aion.cancel: the reason") do
      Engine.cancel(instance.engine, workflow_id, reason)
    end
  end

  def terminate(name, workflow_id, reason) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.terminate"),
         {:ok, reason} <- Payload.encode(reason, "Aion.terminate: the reason"),
         {:ok, _terminal} <- Engine.terminate(instance.engine, workflow_id, reason) do
      :ok
    end
  end

  def update(name, workflow_id, update_name, args, opts) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, "Aion.update"),
         {:ok, update_name} <- message_name(update_name, "Aion.update"),
         {:ok, update_id} <- update_id(opts),
         {:ok, timeout} <- timeout(opts, 30_000, "Aion.update"),
         {:ok, args} <- Payload.encode(args, "Aion.update: the arguments") do
      # The reply, or the workflow's end (whoever records it tells its awaiters).
      keys = [{name, {:update, workflow_id, update_id}}, {name, workflow_id}]
      for key <- keys, do: {:ok, _} = Registry.register(Aion.Awaiters, key, nil)

      try do
        case Engine.update(instance.engine, workflow_id, {update_name, args, update_id}) do
          {:ok, {:replied, reply}} -> Payload.decode(reply)
          {:ok, :accepted} -> wait_reply(instance, workflow_id, update_id, deadline(timeout), timeout, @first_check)
          {:error, error} -> {:error, error}
        end
      after
        for key <- keys, do: Registry.unregister(Aion.Awaiters, key)
        Aion.Client.Await.flush_done(name, workflow_id)
      end
    end
  end

  defp wait_reply(instance, workflow_id, update_id, deadline, timeout, check_every) do
    left = if deadline == :infinity, do: :infinity, else: max(deadline - now(), 0)

    receive do
      {:aion_update, ^workflow_id, ^update_id, reply} ->
        reply

      # Its reply may have been recorded just before the end: ask once more.
      {:aion_done, _name, ^workflow_id, _terminal} ->
        wait_reply(instance, workflow_id, update_id, deadline, timeout, 0)
    after
      min(left, check_every) ->
        case Engine.update_result(instance.engine, workflow_id, update_id) do
          {:ok, {:replied, reply}} ->
            Payload.decode(reply)

          {:ok, :accepted} ->
            cond do
              left == 0 ->
                {:error, Aion.Error.new(:timeout, "update #{update_id} of workflow #{workflow_id} got no reply within #{timeout} ms")}

              ended?(instance, workflow_id) ->
                {:error, Aion.Error.new(:not_running, "workflow #{workflow_id} ended before it answered update #{update_id}")}

              true ->
                wait_reply(instance, workflow_id, update_id, deadline, timeout, check_every |> Kernel.*(2) |> max(@first_check) |> min(@max_check))
            end

          {:error, error} ->
            {:error, error}
        end
    end
  end

  defp ended?(instance, workflow_id), do: match?({:ok, {_, _, _}}, Engine.terminal(instance.engine, workflow_id))

  defp update_id(opts) do
    case Keyword.get(opts, :update_id) do
      nil -> {:ok, Aion.Workflow.Marker.uuid4()}
      id when is_binary(id) and id != "" -> {:ok, id}
      other -> {:error, Aion.Error.new(:invalid_option, "Aion.update: expected :update_id to be a non-empty string, got: #{inspect(other)}")}
    end
  end

  @doc false
  def timeout(opts, default, entry) do
    case Keyword.get(opts, :timeout, default) do
      :infinity -> {:ok, :infinity}
      ms when is_integer(ms) and ms >= 0 -> {:ok, ms}
      other -> {:error, Aion.Error.new(:invalid_option, "#{entry}: expected :timeout to be a non-negative integer or :infinity, got: #{inspect(other)}")}
    end
  end

  defp deadline(:infinity), do: :infinity
  defp deadline(timeout), do: now() + timeout

  @doc false
  def message_name(name, _entry) when is_atom(name) and not is_nil(name) and not is_boolean(name), do: {:ok, Atom.to_string(name)}
  def message_name(name, _entry) when is_binary(name) and name != "", do: {:ok, name}

  def message_name(name, entry) do
    {:error, Aion.Error.new(:invalid_option, "#{entry}: expected a name (an atom or a non-empty string), got: #{inspect(name)}")}
  end

  defp now, do: System.monotonic_time(:millisecond)
end
