defmodule Aion.Recovery do
  @moduledoc false
  # Runs recovery when the instance starts (after the engine, trackers and
  # workflow supervisors are up): the engine fires overdue timers, re-arms
  # pending ones and reconciles visibility; then every unfinished workflow is
  # respawned, and replays to its live handoff. A workflow that cannot be
  # respawned (unknown type, broken history) is logged and skipped; it stays
  # recorded as running and is tried again at the next start.
  use GenServer

  require Logger

  alias Aion.{Instance, Native, WorkflowProcess}

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: Instance.via(config.name, :recovery))

  @impl true
  def init(config), do: {:ok, config, {:continue, :recover}}

  @impl true
  def handle_continue(:recover, config) do
    {:ok, instance} = Instance.lookup(config.name)

    case Native.call(&Native.recover(instance.engine, &1)) do
      {:ok, report} ->
        for {workflow_id, reason} <- report.broken do
          Logger.error("Aion: history of #{workflow_id} cannot be read, skipped: #{reason}")
        end

        Enum.each(report.active, &resume(config, &1))

      {:error, error} ->
        Logger.error("Aion: recovery failed: #{error.message}")
    end

    {:noreply, config}
  end

  defp resume(config, {workflow_id, type}) do
    case config.types do
      %{^type => module} ->
        case WorkflowProcess.resume(config.name, module, workflow_id) do
          {:ok, _pid} -> :ok
          {:error, {:already_started, _pid}} -> :ok
          {:error, reason} -> Logger.error("Aion: cannot resume workflow #{workflow_id}: #{inspect(reason)}")
        end

      _ ->
        Logger.warning(
          "Aion: workflow #{workflow_id} has type #{inspect(type)}, which instance #{inspect(config.name)} " <>
            "does not run; it stays pending until an instance with that workflow starts"
        )
    end
  end
end
