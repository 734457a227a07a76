defmodule Aion.Client.Query do
  @moduledoc false
  # Asking a workflow a query (Aion.query/5).
  #
  # A run with a process on this node answers itself: the query is a message
  # to that process, answered where it waits (Aion.Workflow.Wait). A workflow
  # without one (evicted, finished, not resumed yet), or whose process ends
  # before answering (it was evicted or finished meanwhile), is answered by a
  # replay of its code that records nothing (Aion.Workflow.Query.Replay).
  # Either way the answer comes to an alias of the caller, dropped by the VM
  # once the caller stops waiting, so a late answer never litters its mailbox.
  # `timeout` bounds the whole query, both ways included.

  alias Aion.{Instance, Ownership}
  alias Aion.Workflow.Query
  alias Aion.Workflow.Query.Replay

  @doc "The query name as handlers are registered under (strings; atoms become their string)."
  def name(query_name, entry) do
    case Query.name(query_name) do
      {:ok, name} ->
        {:ok, name}

      :error ->
        {:error,
         Aion.Error.new(:invalid_query_name, "#{entry}: expected the query name to be #{Query.names()}, got: #{inspect(query_name)}")}
    end
  end

  @doc "The query's options: `{:ok, timeout, run_id}` (`run_id` nil for the latest run)."
  def options(opts, entry) do
    with :ok <- keyword(opts, entry),
         :ok <- known(opts, entry),
         {:ok, run_id} <- Aion.Client.Runs.run_id_option(opts, entry) do
      case Keyword.get(opts, :timeout, 5_000) do
        timeout when timeout == :infinity or (is_integer(timeout) and timeout >= 0) ->
          {:ok, timeout, run_id}

        other ->
          invalid("#{entry}: expected :timeout to be a non-negative integer (milliseconds) or :infinity, got: #{inspect(other)}")
      end
    end
  end

  defp keyword(opts, entry) do
    if Keyword.keyword?(opts), do: :ok, else: invalid("#{entry}: expected the options to be a keyword list, got: #{inspect(opts)}")
  end

  defp known(opts, entry) do
    case Keyword.keys(opts) -- [:timeout, :run_id] do
      [] -> :ok
      [unknown | _] -> invalid("#{entry}: unknown option #{inspect(unknown)} (known options: :timeout, :run_id)")
    end
  end

  defp invalid(message), do: {:error, Aion.Error.new(:invalid_option, message)}

  @doc """
  Asks `workflow_id` the query `query_name` (a string) with `args`: its
  latest run, or run `run_id`, which is answered by a replay of that run
  (a workflow's process runs its latest run only).
  """
  def query(name, %Instance{} = instance, workflow_id, query_name, args, timeout, run_id \\ nil) do
    ask = %{
      workflow_id: workflow_id,
      run_id: run_id,
      name: query_name,
      args: args,
      timeout: timeout,
      deadline: if(timeout == :infinity, do: :infinity, else: now() + timeout)
    }

    case run_id == nil && Ownership.run_owner(name, workflow_id) do
      owner when owner in [nil, false] ->
        replay(instance, ask)

      pid ->
        case ask_process(pid, ask) do
          # It ended before answering: replay answers, in the time left.
          {:gone, _reason} -> replay(instance, ask)
          result -> result
        end
    end
  end

  defp ask_process(pid, ask) do
    exchange(fn reply_to ->
      monitor = Process.monitor(pid)
      send(pid, {:aion_query, reply_to, ask.name, ask.args})
      {pid, monitor}
    end, ask, fn _pid, _monitor -> :ok end)
  end

  defp replay(instance, ask) do
    result =
      exchange(fn reply_to -> Replay.start(instance, ask.workflow_id, ask.run_id, reply_to, ask.name, ask.args) end, ask, &stop/2)

    case result do
      {:gone, reason} ->
        {:error,
         Aion.Error.new(
           :query_failed,
           "the replay answering query #{inspect(ask.name)} of workflow #{ask.workflow_id} ended without an answer: " <>
             Exception.format_exit(reason)
         )}

      result ->
        result
    end
  end

  # A replay that outlasted the timeout is over when the query returns.
  defp stop(pid, monitor) do
    Process.exit(pid, :kill)

    receive do
      {:DOWN, ^monitor, :process, ^pid, _reason} -> :ok
    end
  end

  # Sends the query (`send_query` gets the reply alias and returns the
  # answerer's {pid, monitor}) and waits for the answer, {:gone, reason} if the
  # answerer ended without one, or the deadline (then `give_up` is called
  # with the answerer's pid and monitor).
  defp exchange(send_query, ask, give_up) do
    reply_to = :erlang.alias()
    {pid, monitor} = send_query.(reply_to)

    try do
      receive do
        {^reply_to, result} ->
          result

        {:DOWN, ^monitor, :process, _pid, reason} ->
          {:gone, reason}
      after
        left(ask.deadline) ->
          give_up.(pid, monitor)

          {:error,
           Aion.Error.new(:timeout, "workflow #{ask.workflow_id} did not answer query #{inspect(ask.name)} within #{ask.timeout} ms")}
      end
    after
      :erlang.unalias(reply_to)
      Process.demonitor(monitor, [:flush])

      receive do
        {^reply_to, _late} -> :ok
      after
        0 -> :ok
      end
    end
  end

  defp left(:infinity), do: :infinity
  defp left(deadline), do: max(deadline - now(), 0)

  defp now, do: System.monotonic_time(:millisecond)
end
