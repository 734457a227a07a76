defmodule Aion.Client.Await do
  @moduledoc false
  # Waiting for a workflow's end. The run's monitor tells awaiters when it
  # records an ending, and the awaiter also asks the engine now and then, so
  # that an ending is never missed (a monitor that died between the commit
  # and its message, an ending recorded by another path). That is a safety
  # net, so it backs off: 5 s, 10 s, ... up to a minute between checks. An
  # instance that stops ends the wait at once.

  alias Aion.{Engine, Instance, Payload}

  @first_check 5_000
  @max_check 60_000

  def await(name, %Instance{} = instance, workflow_id, timeout) do
    case Instance.engine_owner(name) do
      nil -> {:error, Aion.Error.new(:not_running, "no Aion instance named #{inspect(name)} is running")}
      owner -> await(name, instance, owner, workflow_id, timeout)
    end
  end

  defp await(name, instance, owner, workflow_id, timeout) do
    key = {name, workflow_id}
    {:ok, _} = Registry.register(Aion.Awaiters, key, nil)
    owner = Process.monitor(owner)
    deadline = if timeout == :infinity, do: :infinity, else: now() + timeout
    wait = %{
      name: name,
      engine: instance.engine,
      id: workflow_id,
      owner: owner,
      deadline: deadline,
      timeout: timeout,
      check_every: @first_check
    }

    try do
      check(wait)
    after
      Process.demonitor(owner, [:flush])
      Registry.unregister(Aion.Awaiters, key)
      flush_done(name, workflow_id)
    end
  end

  defp check(wait) do
    case Engine.terminal(wait.engine, wait.id) do
      {:ok, :running} -> wait_for_end(wait)
      {:ok, terminal} -> result(terminal)
      {:error, error} -> {:error, error}
    end
  end

  defp wait_for_end(%{name: name, id: id, owner: owner} = wait) do
    left = if wait.deadline == :infinity, do: :infinity, else: max(wait.deadline - now(), 0)

    receive do
      # A run terminated by a reset is followed by the reset's new run: ask
      # which run is the latest, and wait for that one.
      {:aion_done, ^name, ^id, {:terminated, _, _}} ->
        check(wait)

      {:aion_done, ^name, ^id, terminal} ->
        result(terminal)

      {:DOWN, ^owner, :process, _, _} ->
        {:error, Aion.Error.new(:not_running, "Aion instance #{inspect(name)} stopped while awaiting workflow #{id}")}
    after
      min(left, wait.check_every) ->
        if left == 0 do
          {:error, Aion.Error.new(:timeout, "workflow #{id} did not finish within #{wait.timeout} ms")}
        else
          check(%{wait | check_every: min(2 * wait.check_every, @max_check)})
        end
    end
  end

  @doc "Tells every process awaiting `workflow_id` how it ended (`terminal` as the NIF gives it)."
  def notify(name, workflow_id, terminal) do
    Registry.dispatch(Aion.Awaiters, {name, workflow_id}, fn awaiters ->
      for {pid, _} <- awaiters, do: send(pid, {:aion_done, name, workflow_id, terminal})
    end)
  end

  @doc "Drops the endings of `workflow_id` (notify/3) left in the caller's mailbox."
  def flush_done(name, workflow_id) do
    receive do
      {:aion_done, ^name, ^workflow_id, _} -> flush_done(name, workflow_id)
    after
      0 -> :ok
    end
  end

  defp result({:completed, payload, _run_id}), do: {:ok, Payload.decode(payload)}
  defp result({:failed, payload, _run_id}), do: {:error, Payload.decode(payload)}

  defp result({:terminated, payload, run_id}) do
    reason = Payload.decode(payload)
    {:error, Aion.Error.new(:terminated, "run #{run_id} was terminated (reason: #{inspect(reason)})", details: %{reason: reason})}
  end

  defp result({status, _value, run_id}) do
    {:error, Aion.Error.new(status, "run #{run_id} ended with status #{status}")}
  end

  defp now, do: System.monotonic_time(:millisecond)
end
