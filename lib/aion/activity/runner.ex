defmodule Aion.Activity.Runner do
  @moduledoc false
  # Runs the activities of a run process: their attempts, retries, timeouts
  # and heartbeats, and records their ends.
  #
  # Executions belong to their run (Aion.Ownership): an earlier execution of
  # the same command still running on this node (left by a process of the
  # run that died) is stopped before a new one starts; an execution whose
  # run process died before it began does not run; the run's monitor stops
  # whatever is left when the process ends. Answers are messages tagged with
  # the run's activation and the attempt's own ref, so a late answer of an
  # abandoned attempt is dropped. The run process keeps its activities in
  # flight in its dictionary, and handles their messages whatever its code
  # is waiting for (Aion.Workflow.Wait).
  #
  # A failed attempt that may be retried records nothing in history: its
  # retry state (attempt, when the next one may start, last failure, latest
  # heartbeat) is saved beside it, durably, before the backoff starts, so a
  # process that resumes the run waits out only what is left of it. The
  # final event carries the attempt count and the last failure.

  alias Aion.{Engine, Ownership, Payload}
  alias Aion.Activity.Options
  alias Aion.Workflow.Command

  @activities :"$aion_activities"
  # Heartbeat details are saved at most this often (ms) while an attempt
  # runs; a failed attempt's latest details are saved with its failure.
  @heartbeat_save_every 10_000

  @doc """
  Starts activity `{module, function, args}` as command `ordinal` with
  `options` (Aion.Activity.Options) in queue slot `{queue, limit}`.
  `dispatch` is `:first` for a command this process just recorded (nothing
  can have run it yet) or `{:again, scheduled_at_us}` for one recorded by an
  earlier process of the run, whose retry state is read back.
  """
  def start(context, ordinal, {_module, _function, _args} = mfa, options, slot, dispatch) do
    now = System.os_time(:microsecond)

    {scheduled_at, state} =
      case dispatch do
        :first ->
          {now, %{attempt: 1, retry_at: nil, last_failure: nil, heartbeat: nil}}

        {:again, scheduled_at} ->
          Ownership.stop_activities(context.instance, context.workflow_id, {context.run_id, ordinal})
          {scheduled_at, saved_state(context, ordinal)}
      end

    activity = %{
      id: make_ref(),
      mfa: mfa,
      options: options,
      slot: slot,
      attempt: state.attempt,
      ref: nil,
      pid: nil,
      monitor: nil,
      timers: [],
      deadline: deadline(scheduled_at, options.schedule_to_close),
      last_failure: state.last_failure,
      heartbeat: state.heartbeat,
      heartbeated: false,
      saved_at: nil
    }

    activity = arm_deadline(context, ordinal, activity, now)

    cond do
      # Its schedule_to_close passed while no process ran it: it ends at
      # once (the deadline's message is on its way), no attempt starts.
      activity.deadline != nil and activity.deadline <= now ->
        put(ordinal, activity)

      is_integer(state.retry_at) and state.retry_at > now ->
        put(ordinal, wait_retry(context, ordinal, activity, div(state.retry_at - now, 1000)))

      true ->
        put(ordinal, launch(context, ordinal, activity))
    end

    :ok
  end

  # The saved retry state of command `ordinal`: the attempt to run next.
  defp saved_state(context, ordinal) do
    case Engine.activity_attempt(context.run, ordinal) do
      {:ok, nil} ->
        %{attempt: 1, retry_at: nil, last_failure: nil, heartbeat: nil}

      # A backoff was under way: the next attempt, once it is over.
      {:ok, {attempt, retry_at, failure, heartbeat}} when is_integer(retry_at) ->
        %{attempt: attempt + 1, retry_at: retry_at, last_failure: failure, heartbeat: decode(heartbeat)}

      # The attempt was running when its process ended: it runs again.
      {:ok, {attempt, nil, failure, heartbeat}} ->
        %{attempt: attempt, retry_at: nil, last_failure: failure, heartbeat: decode(heartbeat)}

      {:error, error} ->
        Command.engine_error(context, error)
    end
  end

  defp decode(nil), do: nil
  defp decode(bytes), do: Payload.decode(bytes)

  defp deadline(_scheduled_at, :infinity), do: nil
  defp deadline(scheduled_at, ms), do: scheduled_at + ms * 1000

  defp arm_deadline(_context, _ordinal, %{deadline: nil} = activity, _now), do: activity

  defp arm_deadline(context, ordinal, activity, now) do
    in_ms = max(div(activity.deadline - now, 1000), 0)
    timer = Process.send_after(self(), {:aion, context.tag, {:activity_deadline, ordinal, activity.id}}, in_ms)
    %{activity | timers: [timer | activity.timers]}
  end

  defp wait_retry(context, ordinal, activity, in_ms) do
    timer = Process.send_after(self(), {:aion, context.tag, {:activity_retry, ordinal, activity.id}}, max(in_ms, 0))
    %{activity | ref: nil, pid: nil, monitor: nil, timers: [timer | activity.timers]}
  end

  # Starts attempt `activity.attempt` in its own process.
  defp launch(context, ordinal, activity) do
    %{instance: instance, workflow_id: workflow_id, run_id: run_id, tag: tag} = context
    {queue, limit} = activity.slot
    owner = self()
    ref = make_ref()
    queued? = limit != :infinity

    info = %{
      owner: owner,
      tag: tag,
      ref: ref,
      ordinal: ordinal,
      instance: instance,
      workflow_id: workflow_id,
      run_id: run_id,
      activity: type(activity.mfa),
      attempt: activity.attempt,
      heartbeat_timeout: activity.options.heartbeat_timeout,
      start_to_close: activity.options.start_to_close,
      schedule_deadline: activity.deadline,
      last_heartbeat: activity.heartbeat
    }

    {:ok, pid} =
      Task.Supervisor.start_child(context.activities, fn ->
        with :ok <- Ownership.claim_activity(instance, workflow_id, run_id, ordinal, owner) do
          if queued? do
            :ok = Aion.Activity.Queues.checkout(instance, queue)
            send(owner, {:aion, tag, {:activity_running, ordinal, ref}})
          end

          Aion.Activity.Context.enter(info)
          result = invoke(activity.mfa)
          send(owner, {:aion, tag, {:activity, ordinal, ref, result, Aion.Activity.Context.unsent_heartbeat()}})
        end
      end)

    activity = %{activity | ref: ref, pid: pid, monitor: Process.monitor(pid), heartbeated: false}
    if queued?, do: activity, else: arm_attempt(context, ordinal, activity)
  end

  # The attempt's own timeouts, from when it runs.
  defp arm_attempt(context, ordinal, activity) do
    timers =
      for {kind, ms} <- [start_to_close: activity.options.start_to_close, heartbeat: activity.options.heartbeat_timeout], ms != :infinity do
        {kind, Process.send_after(self(), {:aion, context.tag, {:activity_timeout, ordinal, activity.ref, kind}}, ms)}
      end

    %{activity | timers: timers ++ activity.timers}
  end

  @doc "Whether an activity of this process is in flight (running or waiting to retry)."
  def in_flight?, do: activities() != %{}

  @doc """
  Handles a message about an activity (`event` of `{:aion, tag, event}`).
  Returns `:notice` when an outcome may have been recorded, else `:stale`.
  """
  def handle(context, {:activity, ordinal, ref, result, heartbeat}) do
    with {:ok, activity} <- attempt(ordinal, ref) do
      activity = heartbeat_details(activity, heartbeat)

      case result do
        {:ok, _value} -> record(context, ordinal, activity, result)
        {:error, error} -> failed(context, ordinal, activity, error)
      end
    end
  end

  def handle(context, {:activity_running, ordinal, ref}) do
    with {:ok, activity} <- attempt(ordinal, ref) do
      put(ordinal, arm_attempt(context, ordinal, activity))
    end

    :stale
  end

  def handle(context, {:activity_timeout, ordinal, ref, kind}) do
    with {:ok, activity} <- attempt(ordinal, ref) do
      stop_attempt(context, ordinal, activity)
      ms = if kind == :heartbeat, do: activity.options.heartbeat_timeout, else: activity.options.start_to_close

      what =
        if kind == :heartbeat,
          do: "sent no heartbeat for #{ms} ms",
          else: "did not finish within #{ms} ms (start_to_close)"

      error = Aion.Error.new(:activity_timeout, "activity #{name(activity.mfa)} #{what}", details: %{timeout: kind, attempt: activity.attempt})
      failed(context, ordinal, activity, error)
    end
  end

  def handle(context, {:activity_deadline, ordinal, id}) do
    with {:ok, activity} <- execution(ordinal, id) do
      stop_attempt(context, ordinal, activity)
      # Between attempts (no process), the attempt number is the next one's.
      activity = if activity.pid, do: activity, else: %{activity | attempt: max(activity.attempt - 1, 1)}

      error =
        Aion.Error.new(
          :activity_timeout,
          "activity #{name(activity.mfa)} did not finish within #{activity.options.schedule_to_close} ms of being scheduled (schedule_to_close)",
          details: %{timeout: :schedule_to_close, attempt: activity.attempt}
        )

      record(context, ordinal, activity, {:error, error})
    end
  end

  def handle(context, {:activity_retry, ordinal, id}) do
    with {:ok, activity} <- execution(ordinal, id) do
      put(ordinal, launch(context, ordinal, activity))
    end

    :stale
  end

  def handle(context, {:activity_heartbeat, ordinal, ref, details}) do
    with {:ok, activity} <- attempt(ordinal, ref) do
      activity = %{activity | heartbeat: details, heartbeated: true}
      activity = rearm_heartbeat(context, ordinal, activity)
      put(ordinal, maybe_save_heartbeat(context, ordinal, activity))
    end

    :stale
  end

  @doc "A monitored process went down: if it is an attempt, it failed. Returns whether it was one."
  def down(context, monitor, reason) do
    case Enum.find(activities(), fn {_ordinal, activity} -> activity.monitor == monitor end) do
      nil ->
        false

      {ordinal, activity} ->
        error = Aion.Error.new(:activity_exited, "activity #{name(activity.mfa)} exited: #{inspect(reason)}")
        failed(context, ordinal, %{activity | monitor: nil}, error)
        true
    end
  end

  @doc """
  Stops the activities of commands `ordinals` (their cancellation is
  recorded). An attempt that has heartbeated is told first: its next
  `Aion.Activity.heartbeat/1` raises Aion.CancelledError, and it is killed
  after its `:cancel_grace`. Others are killed at once.
  """
  def cancel(context, ordinals) do
    for ordinal <- ordinals, activity = activities()[ordinal] do
      forget(ordinal, activity)

      if activity.heartbeated and activity.pid do
        send(activity.pid, {:"$aion_activity_cancelled", activity.ref})
        Ownership.stop_after_grace(activity.pid, activity.options.cancel_grace)
      else
        stop_attempt(context, ordinal, activity)
      end
    end

    :ok
  end

  # A failed attempt: retried after its backoff, or the activity's end.
  defp failed(context, ordinal, activity, error) do
    options = activity.options
    backoff = Options.backoff(options, activity.attempt)
    retry_at = System.os_time(:microsecond) + backoff * 1000

    if Options.retry?(options, activity.attempt, error) and (activity.deadline == nil or retry_at < activity.deadline) do
      if activity.monitor, do: Process.demonitor(activity.monitor, [:flush])
      activity = cancel_attempt_timers(activity)
      failure = encode_failure(error, activity)
      state = {activity.attempt, retry_at, failure, encode_heartbeat(activity.heartbeat)}

      case Engine.save_activity_attempt(context.run, ordinal, state) do
        :ok -> :ok
        {:error, engine_error} -> Command.engine_error(context, engine_error)
      end

      next = %{activity | attempt: activity.attempt + 1, last_failure: failure, saved_at: System.monotonic_time(:millisecond)}
      put(ordinal, wait_retry(context, ordinal, next, backoff))
      :stale
    else
      record(context, ordinal, activity, {:error, error})
    end
  end

  defp record(context, ordinal, activity, result) do
    forget(ordinal, activity)
    what = "the result of activity #{name(activity.mfa)}"

    command =
      case result do
        {:ok, value} ->
          case Payload.encode(value, what) do
            {:ok, payload} -> {:activity_completed, ordinal, payload, activity.attempt, activity.last_failure}
            {:error, error} -> {:activity_failed, ordinal, Payload.encode!(error), activity.attempt}
          end

        {:error, reason} ->
          case Payload.encode(reason, what) do
            {:ok, payload} -> {:activity_failed, ordinal, payload, activity.attempt}
            {:error, error} -> {:activity_failed, ordinal, Payload.encode!(error), activity.attempt}
          end
      end

    Command.record_outcome(context, command)
    :notice
  end

  defp encode_failure(error, activity) do
    case Payload.encode(error, "the failure of activity #{name(activity.mfa)}") do
      {:ok, payload} -> payload
      {:error, encode_error} -> Payload.encode!(encode_error)
    end
  end

  defp encode_heartbeat(nil), do: nil

  defp encode_heartbeat(details) do
    case Payload.encode(details, "heartbeat details") do
      {:ok, payload} -> payload
      {:error, _} -> nil
    end
  end

  defp heartbeat_details(activity, :none), do: activity
  defp heartbeat_details(activity, {:details, details}), do: %{activity | heartbeat: details, heartbeated: true}

  defp rearm_heartbeat(context, ordinal, activity) do
    case List.keytake(activity.timers, :heartbeat, 0) do
      {{:heartbeat, timer}, timers} ->
        Process.cancel_timer(timer)
        ms = activity.options.heartbeat_timeout
        timer = Process.send_after(self(), {:aion, context.tag, {:activity_timeout, ordinal, activity.ref, :heartbeat}}, ms)
        %{activity | timers: [{:heartbeat, timer} | timers]}

      nil ->
        activity
    end
  end

  # Heartbeat details are durable at most every @heartbeat_save_every.
  defp maybe_save_heartbeat(context, ordinal, activity) do
    now = System.monotonic_time(:millisecond)

    if activity.saved_at == nil or now - activity.saved_at >= @heartbeat_save_every do
      state = {activity.attempt, nil, activity.last_failure, encode_heartbeat(activity.heartbeat)}

      case Engine.save_activity_attempt(context.run, ordinal, state) do
        :ok -> %{activity | saved_at: now}
        {:error, error} -> Command.engine_error(context, error)
      end
    else
      activity
    end
  end

  # Kills the attempt by its pid (it may not have registered yet, if its
  # timeout fired that early) and any registered execution of the command.
  defp stop_attempt(context, ordinal, activity) do
    if activity.pid, do: Ownership.kill(activity.pid)
    Ownership.stop_activities(context.instance, context.workflow_id, {context.run_id, ordinal})
  end

  # The current attempt of command `ordinal`, if `ref` is it.
  defp attempt(ordinal, ref) do
    case activities() do
      %{^ordinal => %{ref: ^ref} = activity} when ref != nil -> {:ok, activity}
      _ -> :stale
    end
  end

  # The activity of command `ordinal`, if `id` is its dispatch.
  defp execution(ordinal, id) do
    case activities() do
      %{^ordinal => %{id: ^id} = activity} -> {:ok, activity}
      _ -> :stale
    end
  end

  defp cancel_attempt_timers(activity) do
    {attempt_timers, others} = Enum.split_with(activity.timers, &is_tuple/1)
    for {_kind, timer} <- attempt_timers, do: Process.cancel_timer(timer)
    %{activity | timers: others}
  end

  defp forget(ordinal, activity) do
    if activity.monitor, do: Process.demonitor(activity.monitor, [:flush])

    for timer <- activity.timers do
      case timer do
        {_kind, ref} -> Process.cancel_timer(ref)
        ref -> Process.cancel_timer(ref)
      end
    end

    Process.put(@activities, Map.delete(activities(), ordinal))
  end

  defp put(ordinal, activity), do: Process.put(@activities, Map.put(activities(), ordinal, activity))
  defp activities, do: Process.get(@activities, %{})

  defp name({module, function, args}), do: "#{inspect(module)}.#{function}/#{length(args)}"
  defp type({module, function, _args}), do: "#{inspect(module)}.#{function}"

  defp invoke({module, function, args}) do
    case apply(module, function, args) do
      {:ok, value} -> {:ok, value}
      {:error, reason} -> {:error, reason}
      :ok -> {:ok, :ok}
      value -> {:ok, value}
    end
  rescue
    exception -> {:error, Aion.Error.from_crash(:activity_raised, :error, exception, __STACKTRACE__)}
  catch
    :exit, reason -> {:error, Aion.Error.from_crash(:activity_exited, :exit, reason, __STACKTRACE__)}
    kind, value -> {:error, Aion.Error.from_crash(:activity_raised, kind, value, __STACKTRACE__)}
  end
end
