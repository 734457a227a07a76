defmodule Aion.Native do
  @moduledoc false
  # The NIF (native/aion_nif). Only Aion.Engine calls it. Functions that touch
  # the store return :ok at once and answer later with the message
  # {ref, result}.

  @on_load :load_nif

  def load_nif do
    path = :filename.join(:code.priv_dir(:aion), ~c"native/libaion_nif")
    :erlang.load_nif(path, 0)
  end

  def engine_open(_config, _listener), do: :erlang.nif_error(:nif_not_loaded)
  def engine_close(_engine), do: :erlang.nif_error(:nif_not_loaded)
  def recover(_engine, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def runnable(_engine, _after, _limit, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def start_workflow(_engine, _id, _type, _input, _options, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def terminate(_engine, _id, _reason, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def reset(_engine, _id, _run_id, _to, _terminate_running, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def load_run(_engine, _id, _tag, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def load_readonly(_engine, _id, _run_id, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def run_info(_run), do: :erlang.nif_error(:nif_not_loaded)
  def attach(_run, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def resolve(_run, _kind, _name, _scope), do: :erlang.nif_error(:nif_not_loaded)
  def record(_run, _command, _scope, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def settle(_run, _ordinals, _scope), do: :erlang.nif_error(:nif_not_loaded)
  def start_child(_run, _ordinal, _child, _scope, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def signal_workflow(_run, _ordinal, _send, _scope, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def cancel_child(_run, _ordinal, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def take_message(_run, _inbox, _name, _scope, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def cancel_pending(_run, _from, _to, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def activity_attempt(_run, _ordinal, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def save_activity_attempt(_run, _ordinal, _attempt, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def cancel_delivered(_run), do: :erlang.nif_error(:nif_not_loaded)
  def signal(_engine, _id, _name, _payload, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def signal_with_start(_engine, _start, _signal, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def send_update(_engine, _id, _update, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def update_result(_engine, _id, _update_id, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def cancel(_engine, _id, _reason, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def evict(_run, _ordinals, _scope, _message), do: :erlang.nif_error(:nif_not_loaded)
  def resolve_patch(_run, _change_id), do: :erlang.nif_error(:nif_not_loaded)
  def timer_fired(_run, _ordinal), do: :erlang.nif_error(:nif_not_loaded)
  def finish(_run), do: :erlang.nif_error(:nif_not_loaded)
  def block(_engine, _id, _blocked), do: :erlang.nif_error(:nif_not_loaded)
  def complete_run(_engine, _id, _run_id, _outcome, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def release_run(_engine, _id, _generation), do: :erlang.nif_error(:nif_not_loaded)
  def terminal(_engine, _id, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def history(_engine, _id, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def describe(_engine, _id, _run_id, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def runs(_engine, _id, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def continue_as_new(_engine, _id, _run_id, _type, _input, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def history_size(_run), do: :erlang.nif_error(:nif_not_loaded)
  def list(_engine, _filter, _after, _limit, _ref), do: :erlang.nif_error(:nif_not_loaded)
  def count(_engine, _filter, _ref), do: :erlang.nif_error(:nif_not_loaded)
end
