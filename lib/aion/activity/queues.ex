defmodule Aion.Activity.Queues do
  @moduledoc false
  # Limits how many activity executions of each queue run at once on an
  # instance (its :queues option). An execution of a limited queue asks for a
  # slot before it runs (checkout/3 blocks until it gets one, first come
  # first served) and holds it until its process ends: the slot is released
  # on the process's :DOWN, so an execution that is killed, crashes or
  # finishes frees it alike, and one killed while it waits leaves the line.
  # Executions of unlimited queues never come here.
  use GenServer

  alias Aion.Instance

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: Instance.via(config.name, :queues))

  @doc "Waits for a slot of `queue` for the calling process; it holds it until it exits."
  def checkout(name, queue), do: GenServer.call(Instance.via(name, :queues), {:checkout, queue}, :infinity)

  @impl true
  def init(config) do
    queues = for {queue, limit} <- config.queues, is_integer(limit), into: %{}, do: {queue, %{limit: limit, running: 0, waiting: :queue.new()}}
    {:ok, %{queues: queues, holders: %{}}}
  end

  @impl true
  def handle_call({:checkout, queue}, {pid, _} = from, state) do
    case state.queues do
      %{^queue => %{running: running, limit: limit} = q} when running < limit ->
        {:reply, :ok, grant(state, queue, q, pid)}

      %{^queue => q} ->
        monitor = Process.monitor(pid)
        state = put_in(state.holders[monitor], {:waiting, queue})
        {:noreply, put_in(state.queues[queue], %{q | waiting: :queue.in({from, monitor}, q.waiting)})}

      %{} ->
        {:reply, :ok, state}
    end
  end

  @impl true
  def handle_info({:DOWN, monitor, :process, _pid, _reason}, state) do
    case Map.pop(state.holders, monitor) do
      {{:running, queue}, holders} ->
        q = state.queues[queue]
        {:noreply, next(%{state | holders: holders}, queue, %{q | running: q.running - 1})}

      {{:waiting, queue}, holders} ->
        q = state.queues[queue]
        waiting = :queue.filter(fn {_from, waiting} -> waiting != monitor end, q.waiting)
        {:noreply, put_in(%{state | holders: holders}.queues[queue], %{q | waiting: waiting})}

      {nil, _} ->
        {:noreply, state}
    end
  end

  defp grant(state, queue, q, pid) do
    monitor = Process.monitor(pid)
    state = put_in(state.holders[monitor], {:running, queue})
    put_in(state.queues[queue], %{q | running: q.running + 1})
  end

  # A slot came free: the first in line takes it.
  defp next(state, queue, q) do
    case :queue.out(q.waiting) do
      {{:value, {from, monitor}}, waiting} ->
        GenServer.reply(from, :ok)
        state = put_in(state.holders[monitor], {:running, queue})
        put_in(state.queues[queue], %{q | running: q.running + 1, waiting: waiting})

      {:empty, _} ->
        put_in(state.queues[queue], q)
    end
  end
end
