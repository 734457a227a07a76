defmodule Aion.Future do
  @moduledoc """
  Work a workflow started without waiting for it: an activity
  (`Aion.Workflow.start_activity/4`) or a timer (`Aion.Workflow.start_timer/1`).
  Wait for it with `Aion.Workflow.await/1`, `await_all/1` or `await_any/1`.
  """

  @enforce_keys [:ordinal, :kind]
  defstruct [:ordinal, :kind, :name]

  @type t :: %__MODULE__{ordinal: non_neg_integer(), kind: :activity | :timer, name: String.t() | nil}
end
