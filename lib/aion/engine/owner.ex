defmodule Aion.Engine.Owner do
  @moduledoc false
  # Owns the NIF engine resource of one instance: opens the store on start,
  # publishes the instance in Aion.Registry, logs the engine's background
  # warnings, hands wake-ups of evicted runs to the reconciler, tells
  # awaiters of runs ended from outside their code, stops (so
  # that the instance restarts) when the engine reports a fatal failure, and
  # closes the store on shutdown.
  use GenServer

  require Logger

  alias Aion.{Instance, Native}
  alias Aion.Client.Await
  alias Aion.Run.Reconciler

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: Instance.via(config.name, :engine_process))

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    case Native.engine_open(%{store: config.store, durability: config.durability}, self()) do
      {:ok, engine} ->
        instance = %Instance{engine: engine, config: config, partitions: System.schedulers_online()}
        :ok = Instance.register(config.name, instance)
        {:ok, %{engine: engine, name: config.name}}

      {:error, error} ->
        {:stop, open_error(Aion.Error.from_native(error), config.store)}
    end
  end

  @impl true
  def handle_info({:aion_warning, message}, state) do
    Logger.warning("Aion: " <> message)
    {:noreply, state}
  end

  def handle_info({:aion_wake, workflow_id, type}, state) do
    Reconciler.wake(state.name, workflow_id, type)
    {:noreply, state}
  end

  # A run ended from outside its code (terminated, timed out); its process
  # was told to stop.
  def handle_info({:aion_ended, workflow_id, terminal}, state) do
    Await.notify(state.name, workflow_id, terminal)
    {:noreply, state}
  end

  def handle_info({:aion_fatal, message}, state) do
    Logger.error("Aion: instance #{inspect(state.name)} restarts: " <> message)
    {:stop, {:shutdown, :engine_failed}, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    Native.engine_close(state.engine)
  end

  defp open_error(error, {:sqlite, path}) do
    %{error | message: "cannot start Aion on the SQLite store #{path}: " <> error.message}
  end

  defp open_error(error, _store), do: error
end
