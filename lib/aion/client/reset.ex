defmodule Aion.Client.Reset do
  @moduledoc false
  # Aion.reset/3: option checks, the engine's reset (one append: the old
  # run's ending if it runs, the new run's start and the copied history),
  # then the new run's process.

  alias Aion.{Engine, Instance, Ownership}
  alias Aion.Run.{Process, Reconciler}

  import Aion.Client.Start, only: [check_id: 2]

  @entry "Aion.reset"
  @known [:to, :terminate_running, :run_id]
  # How long the old run's process may take to stop before the new run is
  # left to the reconciler.
  @stop_wait 5_000

  def reset(name, workflow_id, opts) do
    with {:ok, instance} <- Instance.lookup(name),
         :ok <- check_id(workflow_id, @entry),
         {:ok, source, to, terminate_running} <- options(opts),
         old_owner = Ownership.run_owner(name, workflow_id),
         {:ok, run_id, type} <- Engine.reset(instance.engine, workflow_id, source, to, terminate_running) do
      spawn_new_run(name, instance, workflow_id, type, old_owner)
      {:ok, run_id}
    end
  end

  defp options(opts) do
    cond do
      not Keyword.keyword?(opts) ->
        invalid("expected the options to be a keyword list, got: #{inspect(opts)}")

      (unknown = Keyword.keys(opts) -- @known) != [] ->
        invalid("unknown option #{inspect(hd(unknown))} (known options: :to, :terminate_running, :run_id)")

      true ->
        with {:ok, to} <- to(Keyword.fetch(opts, :to)),
             {:ok, terminate} <- terminate_running(Keyword.get(opts, :terminate_running, false)),
             {:ok, source} <- run_id(Keyword.get(opts, :run_id)) do
          {:ok, source, to, terminate}
        end
    end
  end

  defp to({:ok, point}) when point in [:start, :last_completed_activity], do: {:ok, point}
  defp to({:ok, seq}) when is_integer(seq) and seq > 0, do: {:ok, {:seq, seq}}
  defp to(:error), do: invalid("the :to option is required (:start, :last_completed_activity or an event seq of the run)")
  defp to({:ok, other}), do: invalid("expected :to to be :start, :last_completed_activity or a positive integer (an event seq of the run), got: #{inspect(other)}")

  defp terminate_running(flag) when is_boolean(flag), do: {:ok, flag}
  defp terminate_running(other), do: invalid("expected :terminate_running to be a boolean, got: #{inspect(other)}")

  defp run_id(nil), do: {:ok, nil}

  defp run_id(run_id) when is_binary(run_id) do
    if String.match?(run_id, ~r/\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\z/),
      do: {:ok, String.downcase(run_id)},
      else: run_id(:bad, run_id)
  end

  defp run_id(other), do: run_id(:bad, other)
  defp run_id(:bad, value), do: invalid("expected :run_id to be a run id (a UUID string), got: #{inspect(value)}")

  defp invalid(message), do: {:error, Aion.Error.new(:invalid_option, "#{@entry}: #{message}")}

  # The old run's process (told by the engine that its run ended) still
  # holds the workflow's name until it stops: the new run's process can
  # claim it only then. Either way the new run gets a process: from here,
  # or from the reconciler.
  defp spawn_new_run(name, instance, workflow_id, type, old_owner) do
    stopped = old_owner == nil or await_stop(old_owner)

    with true <- stopped,
         {:ok, module} <- Instance.workflow_module(instance, type),
         {:ok, _pid} <- Process.resume(name, module, workflow_id) do
      :ok
    else
      _ -> Reconciler.respawn(name, workflow_id, type)
    end
  end

  defp await_stop(pid) do
    ref = Elixir.Process.monitor(pid)

    receive do
      {:DOWN, ^ref, :process, ^pid, _} -> true
    after
      @stop_wait ->
        Elixir.Process.demonitor(ref, [:flush])
        false
    end
  end
end
