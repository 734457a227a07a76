defmodule Demo.Warehouse do
  @moduledoc false
  # The demo's activities. Each prints what it does, so the demo shows which
  # ones run in which engine process.

  def reserve(order_id, items) do
    say("reserving #{length(items)} items for #{order_id}")
    {:ok, "hold-#{order_id}"}
  end

  def charge(order_id, amount_cents) do
    say("charging #{format_money(amount_cents)} for #{order_id}")
    {:ok, "payment-#{order_id}"}
  end

  def ship(order_id, hold) do
    say("shipping #{order_id} (#{hold})")
    {:ok, "tracking-#{:erlang.phash2(order_id, 100_000)}"}
  end

  defp say(message), do: IO.puts("  [activity, engine pid #{System.pid()}] #{message}")

  defp format_money(cents), do: "$#{div(cents, 100)}.#{String.pad_leading("#{rem(cents, 100)}", 2, "0")}"
end

defmodule Demo.Order do
  @moduledoc false
  use Aion.Workflow

  alias Demo.Warehouse

  @impl true
  def run(%{order_id: id, items: items, amount_cents: amount, cooling_off_ms: cooling_off}) do
    {:ok, hold} = activity(Warehouse, :reserve, [id, items])
    {:ok, payment} = activity(Warehouse, :charge, [id, amount])
    # A durable sleep: the wake-up time is in the store, not in this process.
    :ok = sleep(cooling_off)
    {:ok, tracking} = activity(Warehouse, :ship, [id, hold])
    {:ok, %{order_id: id, payment: payment, tracking: tracking, shipped_at: now()}}
  end
end
