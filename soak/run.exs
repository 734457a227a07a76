# make soak: a mixed load (children and grandchildren, continue-as-new
# chains, signals between workflows, updates, timers, retried activities,
# cancellations) on one SQLite store while the engine's OS process is
# SIGKILLed at random intervals; then a last life finishes every workflow
# and checks it against what an uninterrupted run gives: results,
# completions recorded once, each signal consumed once, no orphan child.
#
#   SOAK_MINUTES   how long the killing goes on (default 10)
#   SOAK_SEED      random seed of the kill intervals (default: time)
#   SOAK_KEEP=1    keep the store afterwards
minutes = String.to_integer(System.get_env("SOAK_MINUTES", "10"))
seed = String.to_integer(System.get_env("SOAK_SEED", "#{System.os_time(:second)}"))
:rand.seed(:exsss, {seed, seed, seed})

elixir = System.find_executable("elixir") || raise "elixir not found"
dir = Path.join(System.tmp_dir!(), "aion-soak-#{System.os_time(:millisecond)}")
File.mkdir_p!(dir)
# The engine's lives run a copy of the compiled code (ebin and the NIF), so
# that a build during a long soak does not change it under them.
{_, 0} = System.cmd("cp", ["-rL", to_string(:code.lib_dir(:aion)), Path.join(dir, "aion")])
ebin = Path.join([dir, "aion", "ebin"])
db = Path.join(dir, "soak.db")
here = Path.dirname(__ENV__.file)

start = fn script, args ->
  Port.open({:spawn_executable, elixir}, [:binary, :exit_status, :stderr_to_stdout, {:line, 8192}, args: ["-pa", ebin, Path.join(here, script) | args]])
end

# Lines of `port` until `until` (ms, monotonic) or its exit: {lines, exit_status | nil}.
collect = fn port, until ->
  Stream.repeatedly(fn ->
    left = until - System.monotonic_time(:millisecond)

    receive do
      {^port, {:data, {:eol, line}}} -> {:line, line}
      {^port, {:data, {:noeol, _}}} -> :partial
      {^port, {:exit_status, status}} -> {:exit, status}
    after
      max(left, 0) -> :time
    end
  end)
  |> Enum.reduce_while([], fn
    {:line, line}, acc -> {:cont, [line | acc]}
    :partial, acc -> {:cont, acc}
    {:exit, status}, acc -> {:halt, {Enum.reverse(acc), status}}
    :time, acc -> {:halt, {Enum.reverse(acc), nil}}
  end)
end

IO.puts("soak: #{minutes} min, seed #{seed}, store #{db}")
stop_at = System.monotonic_time(:millisecond) + minutes * 60_000

{kills, started} =
  Stream.iterate(0, &(&1 + 1))
  |> Enum.reduce_while({0, 0}, fn life, {kills, started} ->
    if System.monotonic_time(:millisecond) >= stop_at do
      {:halt, {kills, started}}
    else
      port = start.("engine.exs", [db, "#{life * 100_000}"])
      {:os_pid, os_pid} = Port.info(port, :os_pid)
      # Up for 1 to 8 s (recovery included), then SIGKILL.
      {lines, status} = collect.(port, System.monotonic_time(:millisecond) + 1_000 + :rand.uniform(7_000))

      if status != nil do
        IO.puts(Enum.join(lines, "\n"))
        raise "soak: the engine exited by itself (status #{status})"
      end

      System.cmd("kill", ["-9", "#{os_pid}"])
      {_, _} = collect.(port, System.monotonic_time(:millisecond) + 30_000)
      new = Enum.count(lines, &String.starts_with?(&1, "STARTED"))
      if rem(life, 10) == 0, do: IO.puts("soak: life #{life}: #{new} scenarios started, killed")
      {:cont, {kills + 1, started + new}}
    end
  end)

IO.puts("soak: #{kills} kills, #{started} scenarios started; verifying")
port = start.("verify.exs", [db])
{lines, status} = collect.(port, System.monotonic_time(:millisecond) + 900_000)
for line <- lines, String.starts_with?(line, "ANOMALY"), do: IO.puts(line)
verified = Enum.find_value(lines, "?", fn "VERIFIED " <> n -> n; _ -> nil end)
anomalies = Enum.find_value(lines, "?", fn "ANOMALIES " <> n -> n; _ -> nil end)

IO.puts("""
== Soak ==
  minutes:            #{minutes} (seed #{seed})
  kills survived:     #{kills}
  scenarios started:  #{started}
  workflows verified: #{verified}
  anomalies:          #{anomalies}
""")

unless System.get_env("SOAK_KEEP") == "1", do: File.rm_rf!(dir)
if status != 0 or anomalies != "0", do: System.halt(1)
