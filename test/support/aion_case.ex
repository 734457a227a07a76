defmodule Aion.Case do
  @moduledoc false
  # Each test gets its own instance (name: a fresh ref) and, with @tag :tmp_dir
  # or @moduletag :tmp_dir, its own directory for SQLite files.
  use ExUnit.CaseTemplate

  require Logger

  using do
    quote do
      import Aion.Case
    end
  end

  @doc "Starts a supervised instance; returns its name."
  def start_instance(opts) do
    name = Keyword.get_lazy(opts, :name, &make_ref/0)
    ExUnit.Callbacks.start_supervised!({Aion, Keyword.put(opts, :name, name)}, id: name)
    name
  end

  @doc "Stops a supervised instance, as abruptly as a crash for its workflows."
  def stop_instance(name), do: ExUnit.Callbacks.stop_supervised!(name)

  @doc "Registers the test process under a fresh name activities can send to."
  def listen do
    name = :"aion_test_listener_#{System.unique_integer([:positive])}"
    Process.register(self(), name)
    name
  end

  @doc """
  Waits until the instance's recovery has run (the reconciler runs it right after start):
  a call to the recovery process is answered only after it is done.
  """
  def await_recovery(name) do
    reconciler = GenServer.whereis(Aion.Instance.via(name, :reconciler))
    _ = :sys.get_state(reconciler)
    # Timers that recovery fired wake their runs through the engine owner.
    _ = :sys.get_state(GenServer.whereis(Aion.Instance.via(name, :engine_process)))
    _ = :sys.get_state(reconciler)
    :ok
  end

  @doc "Waits until the process of workflow `id`, if any, has exited; flushes the log."
  def await_workflow_exit(name, id) do
    case Registry.lookup(Aion.Registry, {name, {:workflow, id}}) do
      [{pid, _}] ->
        ref = Process.monitor(pid)

        receive do
          {:DOWN, ^ref, :process, ^pid, _} -> :ok
        after
          5_000 -> raise "the process of workflow #{id} did not exit"
        end

      [] ->
        :ok
    end

    Logger.flush()
  end

  @doc """
  Calls `check` until it returns a truthy value (at most ~5 s), and returns
  that value: for state that changes asynchronously and sends no message.
  """
  def eventually(check, attempts \\ 1_000) do
    case check.() do
      falsy when falsy in [nil, false] ->
        if attempts == 0, do: ExUnit.Assertions.flunk("condition never held")
        Process.sleep(5)
        eventually(check, attempts - 1)

      value ->
        value
    end
  end

  @doc "The event types of a workflow's history."
  def event_types(name, workflow_id) do
    {:ok, events} = Aion.history(name, workflow_id)
    Enum.map(events, & &1.type)
  end
end
