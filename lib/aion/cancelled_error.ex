defmodule Aion.CancelledError do
  @moduledoc """
  Raised in workflow code when cancellation of the workflow was requested
  (`Aion.cancel/3`): by the command the workflow is blocked on, or by the
  next one it issues. `:reason` is the reason given to `Aion.cancel/3`.

  Rescue it to clean up: commands after the rescue run normally. If it is
  not rescued, the run ends `cancelled`.

      try do
        activity(MyApp.Orders, :ship, [order])
      rescue
        error in Aion.CancelledError ->
          activity(MyApp.Orders, :release_stock, [order])
          reraise error, __STACKTRACE__
      end
  """

  defexception [:reason]

  @impl true
  def message(%{reason: reason}), do: "the workflow was cancelled (reason: #{inspect(reason)})"
end
