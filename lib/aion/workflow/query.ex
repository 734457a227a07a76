defmodule Aion.Workflow.Query do
  @moduledoc false
  # Queries, on the workflow's side: the handlers `Aion.Workflow.on_query/2`
  # registers, and answering a query with them, either in the run's process
  # while it waits at a command (`Aion.Workflow.Wait` hands the message here)
  # or in a query's replay (`Aion.Workflow.Query.Replay`).
  #
  # Handlers live in the process dictionary: they are closures over the
  # code's state, registered again by every replay, since the code runs from
  # the top. Names are strings: an atom name is its string (`:status` and
  # "status" are one query).
  #
  # A query is the message {:aion_query, reply_to, name, args}; the answer,
  # {reply_to, {:ok, value} | {:error, %Aion.Error{}}}, goes to reply_to, an
  # alias of the asker, so that an answer arriving after the asker gave up
  # is dropped by the VM. Nothing is recorded or encoded: a query is a
  # message between two processes of one VM.

  alias Aion.Run.Process, as: RunProcess

  @handlers :"$aion_query_handlers"

  @doc "Registers (or replaces) the handler of query `name`; see `Aion.Workflow.on_query/2`."
  def register(name, fun) do
    key =
      case name(name) do
        {:ok, key} -> key
        :error -> raise ArgumentError, "on_query/2: expected the query name to be #{names()}, got: #{inspect(name)}"
      end

    unless is_function(fun, 1) do
      raise ArgumentError, "on_query/2: expected the handler to be a function of one argument, got: #{inspect(fun)}"
    end

    # Only workflow code may register (not a query handler, not another process).
    _context = RunProcess.context()
    Process.put(@handlers, Map.put(handlers(), key, fun))
    :ok
  end

  @doc "A query name as handlers are registered under: {:ok, string} or :error."
  def name(name) when is_binary(name), do: {:ok, name}
  def name(name) when is_atom(name) and name not in [nil, true, false], do: {:ok, Atom.to_string(name)}
  def name(_other), do: :error

  @doc false
  def names, do: "a string or an atom (other than nil, true and false)"

  @doc "Answers a query message with this process's handlers. Returns :query."
  def answer({:aion_query, reply_to, name, args}) do
    reply(reply_to, handle(name, args))
    :query
  end

  @doc "Sends `result` to the asker."
  def reply(reply_to, result) do
    send(reply_to, {reply_to, result})
    :ok
  end

  @doc "Runs the handler of query `name`: {:ok, value} or {:error, %Aion.Error{}}."
  def handle(name, args) do
    workflow_id = RunProcess.context().workflow_id

    case Map.fetch(handlers(), name) do
      {:ok, handler} -> run_handler(workflow_id, name, handler, args)
      :error -> {:error, unknown(workflow_id, name)}
    end
  end

  defp run_handler(workflow_id, name, handler, args) do
    refused =
      "query handler #{inspect(name)} of workflow #{workflow_id} cannot issue commands or call workflow " <>
        "functions (activity, sleep, now, side_effect, on_query, ...): a query only reads the workflow's state"

    {:ok, RunProcess.refusing_commands(refused, fn -> handler.(args) end)}
  catch
    kind, value ->
      error = Aion.Error.from_crash(:query_failed, kind, value, __STACKTRACE__)
      {:error, %{error | message: "query #{inspect(name)} of workflow #{workflow_id} failed: #{error.message}"}}
  end

  defp unknown(workflow_id, name) do
    known = handlers() |> Map.keys() |> Enum.sort()

    listed =
      case known do
        [] -> "it has registered no query handler"
        known -> "its queries are " <> Enum.map_join(known, ", ", &inspect/1)
      end

    Aion.Error.new(:unknown_query, "workflow #{workflow_id} has no handler for query #{inspect(name)}: #{listed}",
      details: %{query: name, known: known}
    )
  end

  defp handlers, do: Process.get(@handlers, %{})
end
