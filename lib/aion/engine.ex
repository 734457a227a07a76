defmodule Aion.Engine do
  @moduledoc false
  # The only way into the NIF (Aion.Native). Asynchronous NIFs answer with a
  # message; `call/2` waits for it, with a timeout, so that no caller waits
  # forever on an engine that is gone. Native errors become %Aion.Error{}.

  alias Aion.Native

  # Longer than any store operation should take: a store this slow is broken.
  @timeout 60_000

  def recover(engine), do: call(&Native.recover(engine, &1))
  def runnable(engine, after_id, limit), do: call(&Native.runnable(engine, after_id, limit, &1))
  # `options` is {execution_timeout_ms | nil, run_timeout_ms | nil, id_reuse, search_attributes} (Aion.Client.Start.engine_options/2).
  def start_workflow(engine, id, type, input, options), do: call(&Native.start_workflow(engine, id, type, input, options, &1))
  def load_run(engine, id, tag), do: call(&Native.load_run(engine, id, tag, &1))
  # {:ok, run, info, status}: run `run_id` (the latest when nil), read-only (to answer a query).
  def load_readonly(engine, id, run_id \\ nil), do: call(&Native.load_readonly(engine, id, run_id, &1))
  def record(run, command, scope \\ nil), do: call(&Native.record(run, command, scope, &1))
  def take_message(run, inbox, name, scope), do: call(&Native.take_message(run, inbox, name, scope, &1))
  # `child` is {id, type, input, parent_close, options} to start it, or nil to
  # bring a replayed pending child to where history says it is.
  def start_child(run, ordinal, child, scope), do: call(&Native.start_child(run, ordinal, child, scope, &1))
  # `send` is {target_id, name, payload} to send it, or nil to deliver a replayed one again if lost.
  def signal_workflow(run, ordinal, send, scope), do: call(&Native.signal_workflow(run, ordinal, send, scope, &1))
  def cancel_child(run, ordinal), do: call(&Native.cancel_child(run, ordinal, &1))
  def cancel_pending(run, from, to), do: call(&Native.cancel_pending(run, from, to, &1))
  def activity_attempt(run, ordinal), do: call(&Native.activity_attempt(run, ordinal, &1))
  def save_activity_attempt(run, ordinal, attempt), do: call(&Native.save_activity_attempt(run, ordinal, attempt, &1))
  def signal(engine, id, name, payload), do: call(&Native.signal(engine, id, name, payload, &1))
  def signal_with_start(engine, start, signal), do: call(&Native.signal_with_start(engine, start, signal, &1))
  def update(engine, id, update), do: call(&Native.send_update(engine, id, update, &1))
  def update_result(engine, id, update_id), do: call(&Native.update_result(engine, id, update_id, &1))
  def cancel(engine, id, reason), do: call(&Native.cancel(engine, id, reason, &1))
  def terminate(engine, id, reason), do: call(&Native.terminate(engine, id, reason, &1))
  # `run_id` nil (the latest run) or the run to reset; `to` is :start,
  # :last_completed_activity or {:seq, n}: {:ok, new_run_id, workflow_type}.
  def reset(engine, id, run_id, to, terminate_running), do: call(&Native.reset(engine, id, run_id, to, terminate_running, &1))
  def terminal(engine, id), do: call(&Native.terminal(engine, id, &1))
  def history(engine, id), do: call(&Native.history(engine, id, &1))
  # Run `run_id` of the workflow, the latest when nil.
  def describe(engine, id, run_id \\ nil), do: call(&Native.describe(engine, id, run_id, &1))
  # {:ok, [run]}, oldest first, from the runs index.
  def runs(engine, id), do: call(&Native.runs(engine, id, &1))
  # `filter` as Aion.Client.List builds it; `after` nil or {started_at_micros, workflow_id}.
  def list(engine, filter, after_cursor, limit), do: call(&Native.list(engine, filter, after_cursor, limit, &1))
  def count(engine, filter), do: call(&Native.count(engine, filter, &1))

  # Answered later as {ref, result} to the caller (a GenServer's handle_info).
  def complete_run_async(engine, id, run_id, outcome, ref), do: Native.complete_run(engine, id, run_id, outcome, ref)
  # Answered {ref, {:ok, {:started, run, new_run_id} | {:already, new_run_id, type} | {:ended, terminal}}}.
  def continue_as_new_async(engine, id, run_id, type, input, ref), do: Native.continue_as_new(engine, id, run_id, type, input, ref)

  def run_info(run), do: Native.run_info(run)
  def attach(run, tag), do: sync(Native.attach(run, tag))
  def resolve(run, kind, name, scope), do: sync(Native.resolve(run, kind, name, scope))
  def settle(run, ordinals, scope), do: sync(Native.settle(run, ordinals, scope))
  def cancel_delivered(run), do: sync(Native.cancel_delivered(run))
  def evict(run, ordinals, scope, message?), do: sync(Native.evict(run, ordinals, scope, message?))
  def resolve_patch(run, change_id), do: sync(Native.resolve_patch(run, change_id))
  def timer_fired(run, ordinal), do: sync(Native.timer_fired(run, ordinal))
  def finish(run), do: sync(Native.finish(run))
  # %{events: n, bytes: b}, as the run's code has seen it.
  def history_size(run), do: sync(Native.history_size(run))
  def block(engine, id, blocked), do: sync(Native.block(engine, id, blocked))
  def release_run(engine, id, generation), do: Native.release_run(engine, id, generation)

  defp sync({:error, error}), do: {:error, Aion.Error.from_native(error)}
  defp sync(reply), do: reply

  defp call(fun, timeout \\ @timeout) do
    ref = make_ref()
    :ok = fun.(ref)

    receive do
      {^ref, reply} -> sync(reply)
    after
      timeout ->
        {:error, Aion.Error.new(:engine_timeout, "the Aion engine did not answer within #{timeout} ms")}
    end
  end
end
