defmodule Aion.Test.ChildVM do
  @moduledoc false
  # Runs an Elixir script in a separate OS process (a separate BEAM) with this
  # project's compiled code, reads its output line by line, and kills it with
  # SIGKILL: the real thing a crash test needs.

  defstruct [:port, :os_pid]

  @doc "Starts `script` with `args`; `env` is a list of {name, value}."
  def start(script, args, env \\ []) do
    elixir = System.find_executable("elixir") || raise "elixir not found on PATH"
    ebin = :code.lib_dir(:aion) |> Path.join("ebin")

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        {:line, 4096},
        args: ["-pa", ebin, script | args],
        env: Enum.map(env, fn {k, v} -> {String.to_charlist(k), String.to_charlist(v)} end)
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    %__MODULE__{port: port, os_pid: os_pid}
  end

  @doc """
  Waits until `count` lines starting with `prefix` have been printed; returns
  them. Fails if the process exits first.
  """
  def await_lines(vm, prefix, count, timeout \\ 60_000), do: collect(vm, prefix, count, timeout, [])

  defp collect(_vm, _prefix, 0, _timeout, acc), do: Enum.reverse(acc)

  defp collect(%{port: port} = vm, prefix, count, timeout, acc) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        if String.starts_with?(line, prefix),
          do: collect(vm, prefix, count - 1, timeout, [line | acc]),
          else: collect(vm, prefix, count, timeout, acc)

      {^port, {:data, {:noeol, _}}} ->
        collect(vm, prefix, count, timeout, acc)

      {^port, {:exit_status, status}} ->
        raise "child VM exited with status #{status} while waiting for #{count} more #{inspect(prefix)} lines"
    after
      timeout -> raise "timed out waiting for #{count} more #{inspect(prefix)} lines"
    end
  end

  @doc """
  Waits for a line starting with `prefix`; returns every line printed up to
  and including it. Fails if the process exits first.
  """
  def read_until(vm, prefix, timeout \\ 60_000), do: read_lines(vm, prefix, timeout, [])

  defp read_lines(%{port: port} = vm, prefix, timeout, acc) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        if String.starts_with?(line, prefix),
          do: Enum.reverse([line | acc]),
          else: read_lines(vm, prefix, timeout, [line | acc])

      {^port, {:data, {:noeol, _}}} ->
        read_lines(vm, prefix, timeout, acc)

      {^port, {:exit_status, status}} ->
        raise "child VM exited with status #{status} while waiting for a #{inspect(prefix)} line; it printed:\n" <>
                Enum.join(Enum.reverse(acc), "\n")
    after
      timeout -> raise "timed out waiting for a #{inspect(prefix)} line"
    end
  end

  @doc "Waits for the process to exit; returns its exit status and every line it printed meanwhile."
  def await_exit(%{port: port}, timeout \\ 120_000), do: drain(port, timeout, [])

  defp drain(port, timeout, lines) do
    receive do
      {^port, {:data, {:eol, line}}} -> drain(port, timeout, [line | lines])
      {^port, {:data, {:noeol, _}}} -> drain(port, timeout, lines)
      {^port, {:exit_status, status}} -> {status, Enum.reverse(lines)}
    after
      timeout -> raise "child VM did not exit within #{timeout} ms"
    end
  end

  @doc """
  SIGKILLs the process and waits for it to be gone; returns its exit status
  (128 + 9 when the kill did it, something else if it had exited already).
  """
  def kill(vm) do
    {status, _lines} = kill_collecting(vm)
    status
  end

  @doc """
  As `kill/1`, but returns `{status, lines}`: also the lines the process
  printed that were not read yet.
  """
  def kill_collecting(%{os_pid: os_pid} = vm) do
    # The shell's builtin kill: no dependency on a kill binary.
    System.cmd("sh", ["-c", "kill -KILL #{os_pid} 2>/dev/null"])
    await_exit(vm)
  end
end
