defmodule Aion.Run.Reconciler do
  @moduledoc false
  # Keeps every running run in good hands while the instance is up.
  #
  # At start it runs recovery in the engine (visibility repaired, overdue
  # timers fired, pending ones armed), then sweeps; it sweeps again every
  # @sweep_every ms. A sweep pages through the running workflows that have no
  # pending timer (those that have one sleep, evicted, until it fires) and
  # gives each a process unless it has one, is blocked by non-determinism on
  # the code that runs now, or waits out a respawn backoff.
  #
  # It also takes requests: `wake/3` (a timer fired for an evicted run: spawn
  # it now) and `respawn/3` (a run's process ended without an outcome, or a
  # start could not spawn one: spawn it after a backoff that grows with
  # consecutive failures of that workflow).
  use GenServer

  require Logger

  alias Aion.{Engine, Instance, Ownership}
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Command

  @sweep_every 15_000
  @page 500
  @min_backoff 100
  @max_backoff 30_000
  # A run whose process keeps failing has its backoff reset after this long.
  @forget_after 60_000

  def start_link(config), do: GenServer.start_link(__MODULE__, config, name: Instance.via(config.name, :reconciler))

  @doc "A timer of an evicted run fired: make it resident now."
  def wake(name, workflow_id, type), do: GenServer.cast(Instance.via(name, :reconciler), {:wake, workflow_id, type})

  @doc "The history of `workflow_id` cannot be read: leave it alone until the instance restarts."
  def broken(name, workflow_id), do: GenServer.cast(Instance.via(name, :reconciler), {:broken, workflow_id})

  @doc "The run of `workflow_id` needs a process: spawn one, with backoff."
  def respawn(name, workflow_id, type),
    do: GenServer.cast(Instance.via(name, :reconciler), {:respawn, workflow_id, type})

  @impl true
  def init(config) do
    state = %{name: config.name, failures: %{}, pending: MapSet.new(), unknown: MapSet.new(), broken: MapSet.new()}
    {:ok, state, {:continue, :recover}}
  end

  @impl true
  def handle_continue(:recover, state) do
    {:ok, instance} = Instance.lookup(state.name)

    case Engine.recover(instance.engine) do
      {:ok, report} ->
        for {workflow_id, reason} <- report.broken do
          Logger.error("Aion: history of #{workflow_id} cannot be read, skipped: #{reason}")
        end

      {:error, error} ->
        Logger.error("Aion: recovery failed, will sweep again: #{error.message}")
    end

    {:noreply, sweep(state, instance, nil)}
  end

  @impl true
  def handle_cast({:wake, workflow_id, type}, state) do
    {:noreply, spawn_run(state, workflow_id, type)}
  end

  def handle_cast({:broken, workflow_id}, state) do
    {:noreply, %{state | broken: MapSet.put(state.broken, workflow_id)}}
  end

  def handle_cast({:respawn, workflow_id, type}, state), do: {:noreply, schedule_respawn(state, workflow_id, type)}

  @impl true
  def handle_info({:respawn, workflow_id, type}, state) do
    state = %{state | pending: MapSet.delete(state.pending, workflow_id)}
    {:noreply, spawn_run(state, workflow_id, type)}
  end

  def handle_info({:sweep, after_id}, state) do
    {:ok, instance} = Instance.lookup(state.name)
    {:noreply, sweep(state, instance, after_id)}
  end

  def handle_info(_other, state), do: {:noreply, state}

  # One page per message, so that wake-ups and respawns are served between
  # pages of a long sweep.
  defp sweep(state, instance, after_id) do
    case Engine.runnable(instance.engine, after_id, @page) do
      {:ok, %{runs: runs, next: next}} ->
        state = Enum.reduce(runs, state, &consider(&2, instance, &1))

        if next do
          send(self(), {:sweep, next})
          state
        else
          Process.send_after(self(), {:sweep, nil}, @sweep_every)
          forget_old_failures(state)
        end

      {:error, error} ->
        Logger.error("Aion: could not list running workflows, will try again: #{error.message}")
        Process.send_after(self(), {:sweep, nil}, @sweep_every)
        state
    end
  end

  defp consider(state, instance, {workflow_id, type, blocked}) do
    cond do
      MapSet.member?(state.pending, workflow_id) -> state
      MapSet.member?(state.broken, workflow_id) -> state
      Ownership.run_owner(state.name, workflow_id) -> state
      still_blocked?(instance, type, blocked) -> state
      true -> spawn_run(state, workflow_id, type)
    end
  end

  # A run blocked by non-determinism is tried again once its type's code
  # changed (a hot upgrade); a restarted instance tries every run again.
  defp still_blocked?(_instance, _type, nil), do: false

  defp still_blocked?(instance, type, %{code_version: version}) do
    case Instance.workflow_module(instance, type) do
      {:ok, module} -> Command.code_version(module) == version
      {:error, _} -> true
    end
  end

  defp spawn_run(state, workflow_id, type) do
    {:ok, instance} = Instance.lookup(state.name)

    with {:ok, module} <- Instance.workflow_module(instance, type),
         {:ok, _pid} <- RunProcess.resume(state.name, module, workflow_id) do
      state
    else
      {:error, :unknown_type} ->
        if MapSet.member?(state.unknown, workflow_id) do
          state
        else
          Logger.warning(
            "Aion: workflow #{workflow_id} has type #{inspect(type)}, which instance #{inspect(state.name)} " <>
              "does not run; it stays pending until an instance with that workflow starts"
          )

          %{state | unknown: MapSet.put(state.unknown, workflow_id)}
        end

      {:error, {:already_started, _pid}} ->
        state

      {:error, reason} ->
        Logger.error("Aion: could not spawn workflow #{workflow_id}, will retry: #{inspect(reason)}")
        schedule_respawn(state, workflow_id, type)
    end
  end

  # The delay doubles with each consecutive failure of the workflow.
  defp schedule_respawn(state, workflow_id, type) do
    if MapSet.member?(state.pending, workflow_id) do
      state
    else
      {failures, _at} = Map.get(state.failures, workflow_id, {0, nil})
      delay = min(@max_backoff, @min_backoff * Integer.pow(2, min(failures, 16)))
      Process.send_after(self(), {:respawn, workflow_id, type}, delay)
      now = System.monotonic_time(:millisecond)

      %{
        state
        | pending: MapSet.put(state.pending, workflow_id),
          failures: Map.put(state.failures, workflow_id, {failures + 1, now})
      }
    end
  end

  defp forget_old_failures(state) do
    now = System.monotonic_time(:millisecond)
    failures = for {id, {_, at} = entry} <- state.failures, now - at < @forget_after, into: %{}, do: {id, entry}
    %{state | failures: failures}
  end
end
