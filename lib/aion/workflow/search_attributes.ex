defmodule Aion.Workflow.SearchAttributes do
  @moduledoc false
  # upsert_search_attributes/1: a command like a marker (kind
  # :search_attributes, named by its attribute names), recorded once as
  # search_attributes_updated and replayed without recording anything. The
  # documented face is in Aion.Workflow.

  alias Aion.Engine
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Command

  def upsert(attributes) do
    tagged =
      case Aion.SearchAttributes.encode(attributes) do
        {:ok, tagged} -> tagged
        {:error, message} -> raise ArgumentError, "upsert_search_attributes/1: " <> message
      end

    if tagged != [], do: record(RunProcess.context(), tagged)
    :ok
  end

  defp record(context, tagged) do
    case Command.resolve(context, :search_attributes, Aion.SearchAttributes.spec_name(tagged)) do
      {:replayed, _ordinal, :applied} ->
        :ok

      {:live, ordinal} ->
        case Engine.record(context.run, {:search_attributes, ordinal, tagged}, Command.scope()) do
          :ok ->
            :ok

          {:interrupted, _, _} = interrupt ->
            Command.interrupted(context, interrupt)

          # The store refused a kind: nothing was recorded, the code may rescue.
          {:error, %Aion.Error{reason: :invalid_search_attribute, message: message}} ->
            raise ArgumentError, "upsert_search_attributes/1: " <> message

          {:error, error} ->
            Command.engine_error(context, error)
        end
    end
  end
end
