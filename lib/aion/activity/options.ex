defmodule Aion.Activity.Options do
  @moduledoc false
  # The options of one activity call (Aion.Workflow.activity/4), merged over
  # its workflow's `activity_defaults` and checked: a bad option raises
  # ArgumentError at the call, before anything is recorded.

  @retry_defaults [max_attempts: 3, initial_interval: 1_000, backoff: 2.0, max_interval: 60_000, non_retryable: []]
  @known [:timeout, :start_to_close, :schedule_to_close, :heartbeat_timeout, :retry, :queue, :cancel_grace]

  defstruct start_to_close: :infinity,
            schedule_to_close: :infinity,
            heartbeat_timeout: :infinity,
            retry: %{max_attempts: 1, initial_interval: 1_000, backoff: 2.0, max_interval: 60_000, non_retryable: []},
            queue: :default,
            cancel_grace: 5_000

  @doc "The retry options a `retry:` keyword list starts from."
  def retry_defaults, do: @retry_defaults

  @doc "Checks `activity_defaults` (at compile time of a workflow); returns them."
  def check_defaults!(defaults, entry) do
    _ = build!(defaults, entry)
    defaults
  end

  @doc "The options of a call: `opts` over the workflow's `defaults`."
  def new!(opts, defaults, entry), do: build!(merge(defaults, opts), entry)

  defp merge(defaults, opts) do
    # `retry: true` is the defaults: merged like an empty list.
    opts = if Keyword.get(opts, :retry) == true, do: Keyword.put(opts, :retry, []), else: opts

    Keyword.merge(defaults, opts, fn
      :retry, default, retry when is_list(default) and is_list(retry) -> Keyword.merge(default, retry)
      _key, _default, value -> value
    end)
  end

  defp build!(opts, entry) do
    unless Keyword.keyword?(opts), do: raise(ArgumentError, "#{entry}: expected options to be a keyword list, got: #{inspect(opts)}")

    case Keyword.keys(opts) -- @known do
      [] -> :ok
      unknown -> raise ArgumentError, "#{entry}: unknown options #{inspect(unknown)} (known: #{inspect(@known)})"
    end

    # :timeout is the older name of :start_to_close.
    start_to_close_key = if Keyword.has_key?(opts, :start_to_close), do: :start_to_close, else: :timeout

    %__MODULE__{
      start_to_close: duration!(Keyword.get(opts, start_to_close_key, :infinity), start_to_close_key, entry),
      schedule_to_close: duration!(Keyword.get(opts, :schedule_to_close, :infinity), :schedule_to_close, entry),
      heartbeat_timeout: duration!(Keyword.get(opts, :heartbeat_timeout, :infinity), :heartbeat_timeout, entry),
      retry: retry!(Keyword.get(opts, :retry, false), entry),
      queue: queue!(Keyword.get(opts, :queue, :default), entry),
      cancel_grace: grace!(Keyword.get(opts, :cancel_grace, 5_000), entry)
    }
  end

  defp duration!(:infinity, _key, _entry), do: :infinity
  defp duration!(ms, _key, _entry) when is_integer(ms) and ms > 0, do: ms

  defp duration!(other, key, entry),
    do: raise(ArgumentError, "#{entry}: expected #{inspect(key)} to be a positive integer or :infinity, got: #{inspect(other)}")

  defp queue!(queue, _entry) when is_atom(queue) and not is_nil(queue) and not is_boolean(queue), do: queue
  defp queue!(other, entry), do: raise(ArgumentError, "#{entry}: expected :queue to be an atom, got: #{inspect(other)}")

  defp grace!(ms, _entry) when is_integer(ms) and ms >= 0, do: ms
  defp grace!(other, entry), do: raise(ArgumentError, "#{entry}: expected :cancel_grace to be a non-negative integer (ms), got: #{inspect(other)}")

  defp retry!(false, _entry), do: %__MODULE__{}.retry
  defp retry!(true, entry), do: retry!([], entry)

  defp retry!(retry, entry) when is_list(retry) do
    unless Keyword.keyword?(retry), do: raise(ArgumentError, "#{entry}: expected :retry to be a keyword list or false, got: #{inspect(retry)}")

    case Keyword.keys(retry) -- Keyword.keys(@retry_defaults) do
      [] -> :ok
      unknown -> raise ArgumentError, "#{entry}: unknown :retry options #{inspect(unknown)} (known: #{inspect(Keyword.keys(@retry_defaults))})"
    end

    retry = Keyword.merge(@retry_defaults, retry)
    bad = fn key, expected -> raise ArgumentError, "#{entry}: expected :retry option #{inspect(key)} to be #{expected}, got: #{inspect(retry[key])}" end

    max_attempts = retry[:max_attempts]
    unless max_attempts == :infinity or (is_integer(max_attempts) and max_attempts >= 1), do: bad.(:max_attempts, "a positive integer or :infinity")
    unless is_integer(retry[:initial_interval]) and retry[:initial_interval] >= 0, do: bad.(:initial_interval, "a non-negative integer (ms)")
    unless is_number(retry[:backoff]) and retry[:backoff] >= 1, do: bad.(:backoff, "a number of at least 1")
    unless is_integer(retry[:max_interval]) and retry[:max_interval] >= 0, do: bad.(:max_interval, "a non-negative integer (ms)")
    unless is_list(retry[:non_retryable]), do: bad.(:non_retryable, "a list of reasons and exception modules")

    Map.new(retry)
  end

  defp retry!(other, entry), do: raise(ArgumentError, "#{entry}: expected :retry to be a keyword list, true (the defaults) or false, got: #{inspect(other)}")

  @doc "The wait before attempt `attempt + 1`, after attempt `attempt` failed (ms)."
  def backoff(%{retry: retry}, attempt) do
    %{initial_interval: initial, backoff: factor, max_interval: cap} = retry

    # Grows until it reaches the cap, never computing a power that could
    # overflow (retries may go on forever).
    if initial == 0 or factor == 1 or (attempt - 1) * :math.log(factor) < :math.log(max(cap, 1) / initial) do
      min(round(initial * :math.pow(factor, attempt - 1)), cap)
    else
      cap
    end
  end

  @doc "Whether another attempt may follow attempt `attempt`, which failed with `error`."
  def retry?(%{retry: retry}, attempt, error) do
    (retry.max_attempts == :infinity or attempt < retry.max_attempts) and not non_retryable?(retry.non_retryable, error)
  end

  # `{:error, reason}` matches a listed reason, or a tuple whose first
  # element is listed; a raise matches its exception module.
  defp non_retryable?(list, %Aion.Error{reason: :activity_raised, details: %{exception: module}}) when not is_nil(module),
    do: module in list

  defp non_retryable?(list, %Aion.Error{reason: reason}) when reason in [:activity_exited, :activity_timeout, :activity_raised],
    do: reason in list

  defp non_retryable?(list, reason) when is_tuple(reason) and tuple_size(reason) > 0, do: reason in list or elem(reason, 0) in list
  defp non_retryable?(list, reason), do: reason in list
end
