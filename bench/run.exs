# Aion benchmark: `make bench`, or from the project root
#
#     mix run bench/run.exs
#
# (while someone else builds in the same checkout, give mix its own build
# directory: MIX_BUILD_PATH=/tmp/aion-bench-build mix run bench/run.exs).
#
# Measures, on a SQLite store in a fresh temporary directory:
#
#   1. W1 throughput: BENCH_N workflows of 3 sequential no-op activities,
#      started concurrently from a pool of BENCH_CONCURRENCY processes, then
#      awaited; workflows/s = N / (first start .. last completion).
#   2. W1 latency: the same workflow started and awaited one at a time;
#      p50/p90/p99 of start_workflow call .. await return.
#   3. Replay of a ~10,000-event history: one workflow runs no-op activities
#      until its history holds BENCH_REPLAY_EVENTS events, then waits in a
#      blocking activity. The instance is stopped and a new one started on
#      the same file; recovery respawns the workflow, whose code replays the
#      whole history, and runs the blocking activity again. Timed from the
#      new instance's start until that activity runs, BENCH_RESTARTS times.
#
# Environment:
#
#   BENCH_DURABILITY     full (default; fsync on every commit) or normal
#   BENCH_N              W1 throughput workflows (default 2000)
#   BENCH_WARMUP_N       throughput warm-up workflows, not measured (default 200)
#   BENCH_CONCURRENCY    starter/awaiter pool size (default schedulers * 4)
#   BENCH_LATENCY_N      sequential latency runs (default 300)
#   BENCH_LATENCY_WARMUP latency warm-up runs, not measured (default 30)
#   BENCH_REPLAY_EVENTS  target history length at the gate (default 10000)
#   BENCH_RESTARTS       replay restarts measured (default 5)
#   BENCH_TMPDIR         parent of the temp directory (default System.tmp_dir!())
#   BENCH_KEEP=1         keep the temp directory (SQLite files) afterwards

Code.require_file("support.exs", __DIR__)

alias Aion.Bench
alias Aion.Bench.{Long, W1}

# Aion logs warnings (none expected); keep the report readable otherwise.
Logger.configure(level: :warning)

durability = Bench.durability()
n = max(Bench.env_int("BENCH_N", 2000), 1)
warmup_n = Bench.env_int("BENCH_WARMUP_N", 200)
concurrency = max(Bench.env_int("BENCH_CONCURRENCY", System.schedulers_online() * 4), 1)
latency_n = max(Bench.env_int("BENCH_LATENCY_N", 300), 1)
latency_warmup = Bench.env_int("BENCH_LATENCY_WARMUP", 30)
replay_target = Bench.env_int("BENCH_REPLAY_EVENTS", 10_000)
restarts = max(Bench.env_int("BENCH_RESTARTS", 5), 1)

parent = System.get_env("BENCH_TMPDIR") || System.tmp_dir!()
tmp = Path.join(parent, "aion-bench-#{System.os_time(:millisecond)}-#{System.unique_integer([:positive])}")
File.mkdir_p!(tmp)

bench_started = Bench.now_us()
db = fn file -> {:sqlite, Path.join(tmp, file)} end

IO.puts("""
== Aion benchmark ==
temp dir:    #{tmp}
durability:  #{durability}#{if durability == :full, do: " (fsync on every commit)", else: " (no fsync per commit)"}
N:           #{n} (warm-up #{warmup_n}), pool #{concurrency} processes
""")

# ---------------------------------------------------------------------------
# 1. W1 throughput
# ---------------------------------------------------------------------------

# Starts `count` W1 workflows from a pool of processes, then awaits them all
# (also from a pool). Returns timings in microseconds.
run_batch = fn name, count ->
  t0 = Bench.now_us()

  ids =
    1..count//1
    |> Task.async_stream(
      fn i ->
        {:ok, id} = Aion.start_workflow(name, W1, i)
        {i, id}
      end,
      max_concurrency: concurrency,
      ordered: false,
      timeout: :infinity
    )
    |> Enum.map(fn {:ok, pair} -> pair end)

  t_started = Bench.now_us()

  failures =
    ids
    |> Task.async_stream(
      fn {i, id} ->
        case Aion.await(name, id, 300_000) do
          {:ok, ^i} -> :ok
          other -> {id, other}
        end
      end,
      max_concurrency: concurrency,
      ordered: false,
      timeout: :infinity
    )
    |> Enum.reject(&(&1 == {:ok, :ok}))

  t1 = Bench.now_us()

  unless failures == [] do
    raise "#{length(failures)} W1 workflows did not complete as expected, e.g. #{inspect(Enum.take(failures, 3))}"
  end

  %{total: t1 - t0, starts: t_started - t0, ids: ids}
end

IO.puts("-- 1. W1 throughput: #{n} workflows x 3 no-op activities, started concurrently")
tp_name = :aion_bench_throughput
tp_pid = Bench.start_instance!(name: tp_name, store: db.("throughput.db"), workflows: [W1], durability: durability)

warm = run_batch.(tp_name, warmup_n)
IO.puts("   warm-up: #{warmup_n} workflows in #{Bench.fmt_s(warm.total)} (not measured)")

cpu0 = Bench.cpu_snapshot()
tp = run_batch.(tp_name, n)
tp_cpu = Bench.cpu_report(cpu0, Bench.cpu_snapshot())
tp_wps = n / (tp.total / 1_000_000)
{_i, sample_id} = hd(tp.ids)
{:ok, w1_events} = Aion.history(tp_name, sample_id)
w1_event_count = length(w1_events)

IO.puts("""
   #{n} workflows in #{Bench.fmt_s(tp.total)} (all starts acknowledged after #{Bench.fmt_s(tp.starts)})
   throughput: #{Bench.fmt(tp_wps)} workflows/s  (#{Bench.fmt(tp_wps * 3)} activities/s, #{w1_event_count} events per workflow: #{Enum.map_join(w1_events, " ", & &1.type)})
   #{tp_cpu}
""")

Bench.stop_instance!(tp_pid)

# ---------------------------------------------------------------------------
# 2. W1 latency
# ---------------------------------------------------------------------------

IO.puts("-- 2. W1 latency: one workflow at a time, start_workflow .. await return")
lat_name = :aion_bench_latency
lat_pid = Bench.start_instance!(name: lat_name, store: db.("latency.db"), workflows: [W1], durability: durability)

one = fn i ->
  t0 = Bench.now_us()
  {:ok, id} = Aion.start_workflow(lat_name, W1, i)
  t_started = Bench.now_us()
  {:ok, ^i} = Aion.await(lat_name, id, 60_000)
  t1 = Bench.now_us()
  {t1 - t0, t_started - t0}
end

Enum.each(1..latency_warmup//1, one)
cpu0 = Bench.cpu_snapshot()
{lat_wall, samples} = Bench.timed(fn -> Enum.map(1..latency_n//1, one) end)
lat_cpu = Bench.cpu_report(cpu0, Bench.cpu_snapshot())
totals = Enum.map(samples, &elem(&1, 0))
starts = Enum.map(samples, &elem(&1, 1))
[p50, p90, p99] = Enum.map([50, 90, 99], &Bench.percentile(totals, &1))
[s50, s99] = Enum.map([50, 99], &Bench.percentile(starts, &1))
lat_mean = Enum.sum(totals) / length(totals)

IO.puts("""
   #{latency_n} runs (after #{latency_warmup} warm-up) in #{Bench.fmt_s(lat_wall)}
   end to end: p50 #{Bench.fmt_ms(p50)}  p90 #{Bench.fmt_ms(p90)}  p99 #{Bench.fmt_ms(p99)}  (min #{Bench.fmt_ms(Enum.min(totals))}, mean #{Bench.fmt_ms(lat_mean)}, max #{Bench.fmt_ms(Enum.max(totals))})
   start_workflow alone (durable start): p50 #{Bench.fmt_ms(s50)}  p99 #{Bench.fmt_ms(s99)}
   #{lat_cpu}
""")

Bench.stop_instance!(lat_pid)

# ---------------------------------------------------------------------------
# 3. Replay of a ~10,000-event history
# ---------------------------------------------------------------------------

# History at the gate: workflow_started + 2 per no-op activity + the gate's
# activity_scheduled.
activities = max(div(replay_target - 2, 2), 0)
listener = :aion_bench_listener
Process.register(self(), listener)
replay_db = db.("replay.db")
replay_name = :aion_bench_replay
replay_opts = [name: replay_name, store: replay_db, workflows: [Long], durability: durability]

IO.puts("-- 3. Replay: one workflow with #{activities} no-op activities then a blocking activity")

replay_pid = Bench.start_instance!(replay_opts)
Bench.flush_gates()
cpu0 = Bench.cpu_snapshot()
build_t0 = Bench.now_us()
{:ok, long_id} = Aion.start_workflow(replay_name, Long, %{activities: activities, listener: listener}, id: "bench-long")
{_gate, build_at} = Bench.await_gate!(600_000)
build_cpu = Bench.cpu_report(cpu0, Bench.cpu_snapshot())
build_us = System.convert_time_unit(build_at, :native, :microsecond) - build_t0

{history_us, {:ok, history}} = Bench.timed(fn -> Aion.history(replay_name, long_id) end)
event_count = length(history)
by_type = history |> Enum.frequencies_by(& &1.type) |> Enum.sort() |> Enum.map_join(", ", fn {t, c} -> "#{t} #{c}" end)
db_bytes = fn -> Enum.sum(for f <- Path.wildcard(elem(replay_db, 1) <> "*"), do: File.stat!(f).size) end

IO.puts("""
   history at the gate: #{event_count} events (#{by_type})
   first live run built it in #{Bench.fmt_s(build_us)} (#{Bench.fmt(build_us / max(activities, 1), 1)} us per activity, #{Bench.fmt(build_us / max(event_count, 1), 1)} us per event)
   #{build_cpu}
   Aion.history/2 of it: #{Bench.fmt_ms(history_us)}; store files #{Bench.fmt(db_bytes.() / 1_048_576, 2)} MiB
""")

{stop_us, :ok} = Bench.timed(fn -> Bench.stop_instance!(replay_pid) end)
IO.puts("   stopped the instance while the workflow waits (#{Bench.fmt_ms(stop_us)})")

# Each restart: start a new instance on the same file and wait for the gate
# activity to run again; then stop it for the next round (the last one is
# kept to finish the workflow).
{replays, last_pid, last_gate} =
  Enum.reduce(1..restarts//1, {[], nil, nil}, fn round, {acc, prev_pid, _} ->
    if prev_pid, do: Bench.stop_instance!(prev_pid)
    Bench.flush_gates()
    cpu0 = Bench.cpu_snapshot()
    t0 = Bench.now_us()
    pid = Bench.start_instance!(replay_opts)
    t_linked = Bench.now_us()
    {gate, at} = Bench.await_gate!(600_000)
    reached = System.convert_time_unit(at, :native, :microsecond) - t0
    cpu = Bench.cpu_delta(cpu0, Bench.cpu_snapshot())

    IO.puts(
      "   restart #{round}: gate reached again after #{Bench.fmt_ms(reached)} " <>
        "(Aion.start_link returned after #{Bench.fmt_ms(t_linked - t0)}; #{Bench.fmt(reached / max(event_count, 1), 2)} us per event)"
    )

    {[{reached, cpu} | acc], pid, gate}
  end)

{replays, replay_cpus} = replays |> Enum.reverse() |> Enum.unzip()
replay_cpu = Bench.cpu_format(Bench.cpu_sum(replay_cpus))
replay_min = Enum.min(replays)
replay_median = Bench.median(replays)

# Let the workflow finish, to check the replayed run is sound.
send(last_gate, :open)
{:ok, :done} = Aion.await(replay_name, long_id, 60_000)
{:ok, final_history} = Aion.history(replay_name, long_id)
Bench.stop_instance!(last_pid)

IO.puts("""
   replay to the gate: min #{Bench.fmt_ms(replay_min)}  median #{Bench.fmt_ms(replay_median)}  (#{restarts} restarts)
   all restarts, #{replay_cpu}
   after opening the gate the workflow completed; final history #{length(final_history)} events, last #{List.last(final_history).type}
""")

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

fs = Bench.filesystem(tmp)
total_us = Bench.now_us() - bench_started

unless System.get_env("BENCH_KEEP") == "1", do: File.rm_rf!(tmp)

machine = Enum.map_join(Bench.machine(), "\n", fn {k, v} -> "  #{String.pad_trailing(k <> ":", 19)} #{v}" end)

IO.puts("""
== Report ==
Machine
#{machine}
  temp dir fs:        #{fs} (#{tmp}#{if System.get_env("BENCH_KEEP") == "1", do: ", kept", else: ", removed"})
Settings
  store:              SQLite, one file per scenario
  durability:         #{durability}
  N:                  #{n} (warm-up #{warmup_n}), pool of #{concurrency} starter/awaiter processes
  latency runs:       #{latency_n} (warm-up #{latency_warmup})
  replay history:     #{event_count} events (#{activities} no-op activities + gate), #{restarts} restarts
Results
  W1 throughput:      #{Bench.fmt(tp_wps)} workflows/s (#{n} in #{Bench.fmt_s(tp.total)})
  W1 latency:         p50 #{Bench.fmt_ms(p50)}  p90 #{Bench.fmt_ms(p90)}  p99 #{Bench.fmt_ms(p99)}
  #{String.pad_trailing("replay #{event_count} ev:", 19)} min #{Bench.fmt_ms(replay_min)}  median #{Bench.fmt_ms(replay_median)}
  live build of it:   #{Bench.fmt_s(build_us)}
  bench wall time:    #{Bench.fmt_s(total_us)}

Ratio-friendly (one key=value per line; same units in every run)
durability=#{durability}
n=#{n}
concurrency=#{concurrency}
w1_throughput_wf_per_s=#{Bench.fmt(tp_wps, 2)}
w1_latency_p50_ms=#{Bench.fmt(Bench.ms(p50), 3)}
w1_latency_p90_ms=#{Bench.fmt(Bench.ms(p90), 3)}
w1_latency_p99_ms=#{Bench.fmt(Bench.ms(p99), 3)}
w1_start_p50_ms=#{Bench.fmt(Bench.ms(s50), 3)}
replay_events=#{event_count}
replay_min_ms=#{Bench.fmt(Bench.ms(replay_min), 3)}
replay_median_ms=#{Bench.fmt(Bench.ms(replay_median), 3)}
replay_us_per_event=#{Bench.fmt(replay_median / max(event_count, 1), 3)}
live_build_ms=#{Bench.fmt(Bench.ms(build_us), 3)}
live_build_us_per_event=#{Bench.fmt(build_us / max(event_count, 1), 3)}
""")
