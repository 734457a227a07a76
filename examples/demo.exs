# The Aion demo: an order workflow (reserve, charge, durable sleep, ship) on
# embedded SQLite. Its engine runs in a separate OS process, which the demo
# kills with SIGKILL while the workflow sleeps; a new engine process then
# recovers the workflow, which resumes where it was and finishes.
#
#   mix run examples/demo.exs
dir = Path.join(System.tmp_dir!(), "aion-demo-#{System.os_time(:millisecond)}")
File.mkdir_p!(dir)
db = Path.join(dir, "orders.db")

defmodule Demo.Engine do
  @moduledoc false
  # Starts examples/order_engine.exs in its own BEAM and relays its output.

  def start(db, mode) do
    elixir = System.find_executable("elixir") || raise "elixir not found"
    script = Path.expand("order_engine.exs", __DIR__)
    ebin = Path.join(:code.lib_dir(:aion), "ebin")

    Port.open({:spawn_executable, elixir}, [
      :binary,
      :exit_status,
      :stderr_to_stdout,
      {:line, 4096},
      args: ["-pa", ebin, script, db, mode]
    ])
  end

  # Prints the engine's lines until one starts with `marker` (returned) or it exits.
  def relay(port, marker \\ nil) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        if marker && String.starts_with?(line, marker) do
          line
        else
          IO.puts(line)
          relay(port, marker)
        end

      {^port, {:data, {:noeol, part}}} ->
        IO.write(part)
        relay(port, marker)

      {^port, {:exit_status, status}} ->
        {:exited, status}
    after
      120_000 -> raise "the demo engine stopped answering"
    end
  end
end

IO.puts("""
== Aion demo: an order workflow that survives kill -9 ==
Store: #{db}

1. Start an engine process and the workflow order-1001:
""")

engine = Demo.Engine.start(db, "start")
{:os_pid, os_pid} = Port.info(engine, :os_pid)
"SLEEPING until " <> wake_at = Demo.Engine.relay(engine, "SLEEPING")

IO.puts("""
  [demo] the workflow is in its durable sleep until #{wake_at}

2. kill -9 #{os_pid}: the engine dies mid-run, nothing gets to clean up.
""")

{_, 0} = System.cmd("sh", ["-c", "kill -KILL #{os_pid}"])
{:exited, status} = Demo.Engine.relay(engine)
IO.puts("  [demo] engine process #{os_pid} is gone (exit status #{status})\n")

IO.puts("3. Start a new engine process on the same file. Reserve and charge are not run again:\n")
{:exited, 0} = Demo.Engine.start(db, "resume") |> Demo.Engine.relay()

File.rm_rf!(dir)
IO.puts("\n== Done: the workflow finished exactly once, across a SIGKILL. ==")
