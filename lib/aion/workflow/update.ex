defmodule Aion.Workflow.Update do
  @moduledoc false
  # Recording an update's reply (shielded from cancellation: a reply the
  # handler produced is always recorded) and telling the callers waiting
  # for it.

  alias Aion.Workflow.Command

  def reply(context, update_id, reply) do
    Command.in_scope(&%{&1 | shielded: true}, fn ->
      case Command.resolve(context, :update_reply, update_id) do
        {:replayed, _ordinal, _recorded} ->
          :ok

        {:live, ordinal} ->
          Command.record(context, {:update_completed, ordinal, update_id, Command.encode!(reply, "the reply of update #{update_id}")})
      end
    end)

    tell_callers(context, update_id, reply)
  end

  # A query's replay only reads: the run's own process tells the callers.
  defp tell_callers(%{query: _}, _update_id, _reply), do: :ok

  defp tell_callers(context, update_id, reply) do
    Registry.dispatch(Aion.Awaiters, {context.instance, {:update, context.workflow_id, update_id}}, fn callers ->
      for {pid, _} <- callers, do: send(pid, {:aion_update, context.workflow_id, update_id, reply})
    end)
  end
end
