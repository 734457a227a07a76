defmodule Aion.Workflow.ContinueAsNew do
  @moduledoc false
  # continue_as_new/2 and history_size/0; the documented face is in
  # Aion.Workflow.
  #
  # Continuing as new is a run's ending, like returning: the input is checked
  # (it must be storable) and the successor's module too, the code must have
  # issued every command history holds, and then the process exits with
  # {:shutdown, {:aion_continued, type, input}}. Its monitor has the engine
  # record the ending and the successor's start in one append, and gives the
  # successor a process (Aion.Run.Monitor). Nothing is recorded here: a
  # raise before the exit leaves no trace, and a crash between the exit and
  # the append leaves the run running, so it is respawned, replays, and
  # continues as new again.

  alias Aion.{Engine, Instance}
  alias Aion.Run.Process, as: RunProcess
  alias Aion.Workflow.Command

  @entry "continue_as_new/2"

  def continue_as_new(input, opts) do
    context = RunProcess.context()
    module = successor(context, opts)
    payload = Command.encode!(input, "the input of #{@entry}")

    case context do
      # A query's replay of a run that continued as new: its code is over.
      %{query: _} ->
        Aion.Workflow.Query.Replay.returned(context)

      _ ->
        case Engine.finish(context.run) do
          :ok -> RunProcess.stop({:aion_continued, Aion.Workflow.type(module), payload})
          {:error, error} -> Command.engine_error(context, error)
        end
    end
  end

  def history_size do
    context = RunProcess.context()

    case Engine.history_size(context.run) do
      %{events: _, bytes: _} = size -> size
      {:error, error} -> Command.engine_error(context, error)
    end
  end

  defp successor(context, opts) do
    unless Keyword.keyword?(opts) do
      raise ArgumentError, "#{@entry}: expected the options to be a keyword list, got: #{inspect(opts)}"
    end

    case Keyword.keys(opts) -- [:module] do
      [] -> :ok
      [unknown | _] -> raise ArgumentError, "#{@entry}: unknown option #{inspect(unknown)} (known options: :module)"
    end

    module = Keyword.get(opts, :module, context.module)

    unless Aion.Workflow.workflow?(module) do
      raise ArgumentError, "#{@entry}: expected :module to be a workflow module (use Aion.Workflow), got: #{inspect(module)}"
    end

    # A successor of a type the instance does not run would wait for an
    # instance that does: refused here, while the code can still handle it.
    with {:ok, instance} <- Instance.lookup(context.instance),
         false <- module in instance.config.workflows do
      raise ArgumentError,
            "#{@entry}: #{inspect(module)} is not a workflow of instance #{inspect(context.instance)} " <>
              "(its :workflows are #{inspect(instance.config.workflows)})"
    end

    module
  end
end
