defmodule Aion.Engine do
  @moduledoc false
  # Owns the NIF engine resource of one instance: opens the store on start,
  # publishes the instance in Aion.Registry, logs the engine's background
  # warnings, and closes the store on shutdown.
  use GenServer

  require Logger

  alias Aion.{Instance, Native}

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: Instance.via(config.name, :engine_process))

  @impl true
  def init(config) do
    Process.flag(:trap_exit, true)

    case Native.engine_open(%{store: config.store, durability: config.durability}, self()) do
      {:ok, engine} ->
        instance = %Instance{engine: engine, config: config, partitions: System.schedulers_online()}
        :ok = Instance.register(config.name, instance)
        {:ok, engine}

      {:error, error} ->
        {:stop, open_error(Aion.Error.from_native(error), config.store)}
    end
  end

  @impl true
  def handle_info({:aion_warning, message}, engine) do
    Logger.warning("Aion: " <> message)
    {:noreply, engine}
  end

  def handle_info(_other, engine), do: {:noreply, engine}

  @impl true
  def terminate(_reason, engine) do
    Native.engine_close(engine)
  end

  defp open_error(error, {:sqlite, path}) do
    %{error | message: "cannot start Aion on the SQLite store #{path}: " <> error.message}
  end

  defp open_error(error, _store), do: error
end
