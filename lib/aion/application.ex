defmodule Aion.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    # Partitioned: every run process and activity execution registers, and
    # a partition process cleans up after each one that exits.
    partitions = System.schedulers_online()

    children = [
      # {instance, role} -> process: engines, monitors, supervisors, runs.
      {Registry, keys: :unique, name: Aion.Registry, partitions: partitions},
      # {instance, workflow_id} -> processes awaiting that workflow.
      {Registry, keys: :duplicate, name: Aion.Awaiters, partitions: partitions},
      # {instance, workflow_id} -> activity executions of that workflow's runs.
      {Registry, keys: :duplicate, name: Aion.Activities, partitions: partitions}
    ]

    Aion.Ownership.init()
    Supervisor.start_link(children, strategy: :one_for_one, name: Aion.Application.Supervisor)
  end
end
