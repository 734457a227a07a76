defmodule Aion.Future do
  @moduledoc """
  Work a workflow started without waiting for it: an activity
  (`Aion.Workflow.start_activity/4`), a timer (`Aion.Workflow.start_timer/1`)
  or a child workflow (`Aion.Workflow.start_child/3`, whose future also
  holds the child's `workflow_id`). Wait for it with `Aion.Workflow.await/1`,
  `await_all/1` or `await_any/1`.
  """

  @enforce_keys [:ordinal, :kind]
  defstruct [:ordinal, :kind, :name, :workflow_id]

  @type t :: %__MODULE__{
          ordinal: non_neg_integer(),
          kind: :activity | :timer | :child,
          name: String.t() | nil,
          workflow_id: String.t() | nil
        }
end
