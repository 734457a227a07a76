defmodule Aion.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      # {instance, role} -> process: engines, trackers, supervisors, workflows.
      {Registry, keys: :unique, name: Aion.Registry},
      # {instance, workflow_id} -> processes awaiting that workflow.
      {Registry, keys: :duplicate, name: Aion.Awaiters},
      # {instance, workflow_id} -> activity executions of that workflow's runs.
      {Registry, keys: :duplicate, name: Aion.Activities}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: Aion.Application.Supervisor)
  end
end
