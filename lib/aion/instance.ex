defmodule Aion.Instance do
  @moduledoc false
  # Naming and lookup of the processes of one Aion instance, all registered
  # in Aion.Registry under {instance_name, role}, and the one place a
  # workflow type is resolved to its code.

  defstruct [:engine, :config, :partitions]

  def via(name, role), do: {:via, Registry, {Aion.Registry, {name, role}}}

  @doc false
  # The engine owner registers the instance under {name, :engine}.
  def register(name, instance) do
    {:ok, _} = Registry.register(Aion.Registry, {name, :engine}, instance)
    :ok
  end

  def lookup(name) do
    case Registry.lookup(Aion.Registry, {name, :engine}) do
      [{_pid, instance}] -> {:ok, instance}
      [] -> {:error, Aion.Error.new(:not_running, "no Aion instance named #{inspect(name)} is running")}
    end
  end

  @doc false
  # The engine owner's pid: it lives exactly as long as the instance's engine.
  def engine_owner(name) do
    case Registry.lookup(Aion.Registry, {name, :engine}) do
      [{pid, _instance}] -> pid
      [] -> nil
    end
  end

  def monitor(%__MODULE__{config: config, partitions: partitions}, workflow_id) do
    via(config.name, {:monitor, :erlang.phash2(workflow_id, partitions)})
  end

  def workflows_supervisor(name, type), do: via(name, {:workflows, type})

  @doc false
  # The code of a workflow type. Deployable packages will pick the module by
  # `version` here; today an instance runs the modules of its :workflows.
  def workflow_module(%__MODULE__{config: config}, type, _version \\ nil) do
    case config.types do
      %{^type => module} -> {:ok, module}
      _ -> {:error, :unknown_type}
    end
  end
end
