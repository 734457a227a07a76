# The soak's last life (see soak/run.exs): recovers the store without new
# load, finishes what the killed lives left (updates and cancellations are
# sent again: both are idempotent), waits for every workflow and checks it.
#   elixir -pa <aion ebin> soak/verify.exs DB
[db] = System.argv()
Code.require_file("workflows.ex", __DIR__)

alias Aion.Soak.{Cancellable, Chain, Collector, Leaf, Pinger, Tree, Updatable, Waiter}

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :soak, store: {:sqlite, db}, workflows: Aion.Soak.workflows())

defmodule Verify do
  def all(type), do: page(type, nil, [])

  defp page(type, cursor, acc) do
    {:ok, %{workflows: rows, cursor: next}} = Aion.list(:soak, [type: type], limit: 1000, cursor: cursor)
    acc = acc ++ rows
    if next, do: page(type, next, acc), else: acc
  end

  def history(id) do
    {:ok, events} = Aion.history(:soak, id)
    events
  end

  def input(events), do: hd(for %{type: :workflow_started, input: input} <- events, do: input)

  # Outcome events per command of the latest run: each command has at most one.
  def duplicate_outcomes(events) do
    run = latest_run(events)

    run
    |> Enum.filter(&(&1.type in [:activity_completed, :activity_failed, :child_workflow_completed, :child_workflow_failed, :child_workflow_cancelled, :timer_fired]))
    |> Enum.frequencies_by(&{&1.type, &1.command})
    |> Enum.filter(fn {_, n} -> n > 1 end)
  end

  def latest_run(events) do
    starts = for {%{type: :workflow_started}, i} <- Enum.with_index(events), do: i
    Enum.drop(events, List.last(starts))
  end
end

anomalies = :counters.new(1, [])
report = fn message -> :counters.add(anomalies, 1, 1) && IO.puts("ANOMALY #{message}") end

# Finish what the killed lives left.
for %{workflow_id: id} <- Verify.all(Updatable), do: Aion.Soak.drive_updates(:soak, id, 4)
for %{workflow_id: id, status: :running} <- Verify.all(Cancellable), do: Aion.cancel(:soak, id, :soak)

# A life killed between a collector's start and its pinger's left the
# pinger unstarted: start it, as a client retrying would (once).
for %{workflow_id: "collector-" <> n = id} <- Verify.all(Collector) do
  Aion.start_workflow(:soak, Pinger, %{target: id, k: 5}, id: "pinger-#{n}", id_reuse: :reject_duplicate)
end

roots = [Tree, Chain, Collector, Pinger, Updatable]
deadline = System.monotonic_time(:millisecond) + 300_000

verified =
  for type <- roots, %{workflow_id: id} <- Verify.all(type), reduce: 0 do
    count ->
      # Children of a Tree are listed too: only roots (no parent) are checked against their input.
      events = Verify.history(id)
      root? = not Map.has_key?(hd(events), :parent_workflow_id)
      left = max(deadline - System.monotonic_time(:millisecond), 1)

      case Aion.await(:soak, id, left) do
        {:ok, value} ->
          events = Verify.history(id)
          # A chain's first run holds the input the chain was started with.
          expected = if root?, do: type.expected(Verify.input(events)), else: value
          if value != expected, do: report.("#{id}: result #{inspect(value)}, expected #{inspect(expected)}")

          for dup <- Verify.duplicate_outcomes(events), do: report.("#{id}: outcome recorded twice: #{inspect(dup)}")

          if type == Collector do
            received = for %{type: :signal_received} = e <- Verify.latest_run(events), do: e
            consumed = for %{type: :signal_consumed} = e <- Verify.latest_run(events), do: e
            if length(received) != 5 or length(consumed) != 5, do: report.("#{id}: #{length(received)} signals received, #{length(consumed)} consumed (5 sent)")
            if length(Enum.uniq_by(received, & &1.sent_by)) != length(received), do: report.("#{id}: a signal was delivered twice")
          end

          if type == Updatable do
            accepted = for %{type: :update_accepted} = e <- Verify.latest_run(events), do: e.update_id
            if Enum.sort(accepted) != ~w(u-1 u-2 u-3 u-4), do: report.("#{id}: updates accepted #{inspect(accepted)}")
          end

          count + 1

        other ->
          received = Enum.count(Verify.history(id), &(&1.type == :signal_received))
          report.("#{id}: did not complete: #{inspect(other)} (#{received} signals received)")
          count + 1
      end
  end

# Cancelled parents left no running child; no child runs without its parent.
cancelled =
  for %{workflow_id: id} <- Verify.all(Cancellable), reduce: 0 do
    count ->
      case Aion.await(:soak, id, max(deadline - System.monotonic_time(:millisecond), 1)) do
        {:error, %Aion.Error{reason: :cancelled}} -> :ok
        other -> report.("#{id}: expected cancelled, got #{inspect(other)}")
      end

      count + 1
  end

Process.sleep(2_000)

for %{workflow_id: id, status: :running} <- Verify.all(Waiter) do
  [%{parent_workflow_id: parent} | _] = Verify.history(id)
  report.("#{id}: still running, its parent #{parent} has ended (orphan)")
end

for %{workflow_id: id, status: status} <- Verify.all(Leaf) ++ Verify.all(Tree), status != :completed do
  report.("#{id}: a child ended #{status}")
end

IO.puts("VERIFIED #{verified + cancelled}")
IO.puts("ANOMALIES #{:counters.get(anomalies, 1)}")
