defmodule Aion.Case do
  @moduledoc false
  # Each test gets its own instance (name: a fresh ref) and, with @tag :tmp_dir
  # or @moduletag :tmp_dir, its own directory for SQLite files.
  use ExUnit.CaseTemplate

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

  @doc "The event types of a workflow's history."
  def event_types(name, workflow_id) do
    {:ok, events} = Aion.history(name, workflow_id)
    Enum.map(events, & &1.type)
  end
end
