defmodule Aion.Instance do
  @moduledoc false
  # Naming and lookup of the processes of one Aion instance, all registered
  # in Aion.Registry under {instance_name, role}.

  defstruct [:engine, :config, :partitions]

  def via(name, role), do: {:via, Registry, {Aion.Registry, {name, role}}}

  @doc false
  # The engine process registers the instance under {name, :engine}.
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

  def tracker(%__MODULE__{config: config, partitions: partitions}, workflow_id) do
    via(config.name, {:tracker, :erlang.phash2(workflow_id, partitions)})
  end

  def workflows_supervisor(name, type), do: via(name, {:workflows, type})
end
