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
#   1b. W1 retry: the same, with the middle activity failing its first
#      attempt and retried at once (retry overhead: the durable retry
#      state); same N, same pool, ratio to 1.
#   2. W1 latency: the same workflow started and awaited one at a time;
#      p50/p90/p99 of start_workflow call .. await return.
#   2b. Messages, one at a time to one resident workflow: signal round trip
#      (Aion.signal/4 until the workflow has taken the signal and recorded
#      its next command), query latency (Aion.query/5 answered by the waiting
#      process), update round trip (Aion.update/5 until the recorded reply
#      comes back); p50/p99 of BENCH_MESSAGES_N each. Targets: query p50
#      <= 0.2 ms, signal and update p50 <= 3 ms with fsync on.
#   3. Replay of a ~10,000-event history: one workflow runs no-op activities
#      until its history holds BENCH_REPLAY_EVENTS events, then waits in a
#      blocking activity. The instance is stopped and a new one started on
#      the same file; recovery respawns the workflow, whose code replays the
#      whole history, and runs the blocking activity again. Timed from the
#      new instance's start until that activity runs, BENCH_RESTARTS times.
#   4. Sleepers: BENCH_SLEEPERS workflows sleeping 1 hour on a durable timer,
#      twice: evicted as they go (evict_idle_after: 0), then all resident
#      (:never) and evicted by a restart. Start rate, memory per sleeper
#      (RSS and the BEAM's share; target <= 2 KB RSS per evicted sleeper),
#      recovery time, idle CPU, and how long NIF calls hold a normal
#      scheduler (each call timed by tracing, and the VM's long_schedule
#      reports; target <= 1 ms). Takes a few minutes at 100,000 on 2 cores.
#   5. Listing: BENCH_LIST workflows of three types, completed, failed or
#      sleeping, each with search attributes, on their own store (seeded
#      with durability :normal, concurrently: only the reads are measured);
#      then p50/p99 of Aion.list/3 (a page of 100: type + status + a range
#      on one search attribute) and of Aion.count/2 (the same filter), over
#      BENCH_LIST_QUERIES calls each, filters varying. Target: p50 <= 20 ms.
#   6. Continue-as-new: one workflow continues as new BENCH_CHAIN times in a
#      row (each run carries a counter in its input); time per
#      continue-as-new, and the time to load the latest run (Aion.describe/3,
#      and Aion.query/5 with run_id:, which replays it read-only from the
#      store) when the chain has 1 run and when it has BENCH_CHAIN + 1: it
#      must not grow with the chain (only the run's own events are read).
#      Also Aion.runs/2 of the whole chain.
#   7. Children: a parent starts BENCH_CHILDREN child workflows and awaits
#      them all; time from its start to its result, 3 times.
#
# Environment:
#
#   BENCH_DURABILITY     full (default; fsync on every commit) or normal
#   BENCH_N              W1 throughput workflows (default 2000)
#   BENCH_WARMUP_N       throughput warm-up workflows, not measured (default 200)
#   BENCH_CONCURRENCY    starter/awaiter pool size (default schedulers * 4)
#   BENCH_LATENCY_N      sequential latency runs (default 300)
#   BENCH_LATENCY_WARMUP latency warm-up runs, not measured (default 30)
#   BENCH_MESSAGES_N     signals, queries and updates measured in 2b. (default 300)
#   BENCH_REPLAY_EVENTS  target history length at the gate (default 10000)
#   BENCH_RESTARTS       replay restarts measured (default 5)
#   BENCH_SLEEPERS       sleeping workflows per population (default 100000; 0 skips 4.)
#   BENCH_SLEEPERS_DESCRIBE  sleepers described to check eviction (default 4000)
#   BENCH_TRACE_NIFS     1 (default): time every NIF call in 4. by call tracing; 0: don't
#   BENCH_LIST           workflows listed in 5. (default 100000; 0 skips 5.)
#   BENCH_LIST_QUERIES   list and count calls measured in 5. (default 200 each)
#   BENCH_CHAIN          continue-as-new runs in 6. (default 10000; 0 skips 6.)
#   BENCH_CHILDREN       children of the parent in 7. (default 1000; 0 skips 7.)
#   BENCH_TMPDIR         parent of the temp directory (default System.tmp_dir!())
#   BENCH_KEEP=1         keep the temp directory (SQLite files) afterwards

Code.require_file("support.exs", __DIR__)

alias Aion.Bench
alias Aion.Bench.{Chain, Chatty, LongSchedules, Long, NifTimes, Sleeper, W1, W1Retry}

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
messages_n = max(Bench.env_int("BENCH_MESSAGES_N", 300), 1)

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
run_batch = fn name, count, workflow ->
  t0 = Bench.now_us()

  ids =
    1..count//1
    |> Task.async_stream(
      fn i ->
        {:ok, id} = Aion.start_workflow(name, workflow, i)
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

warm = run_batch.(tp_name, warmup_n, W1)
IO.puts("   warm-up: #{warmup_n} workflows in #{Bench.fmt_s(warm.total)} (not measured)")

cpu0 = Bench.cpu_snapshot()
tp = run_batch.(tp_name, n, W1)
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

IO.puts("-- 1b. W1 retry: #{n} workflows whose middle activity fails once and is retried at once")
rt_name = :aion_bench_retry
rt_pid = Bench.start_instance!(name: rt_name, store: db.("retry.db"), workflows: [W1Retry], durability: durability)
_ = run_batch.(rt_name, warmup_n, W1Retry)
rt = run_batch.(rt_name, n, W1Retry)
rt_wps = n / (rt.total / 1_000_000)
{_i, rt_sample} = hd(rt.ids)
{:ok, rt_events} = Aion.history(rt_name, rt_sample)

IO.puts("""
   #{n} workflows in #{Bench.fmt_s(rt.total)}: #{Bench.fmt(rt_wps)} workflows/s, #{Bench.fmt(rt_wps / tp_wps * 100)}% of W1
   (#{length(rt_events)} events per workflow, the retried activity's: #{inspect(Enum.find(rt_events, &Map.has_key?(&1, :attempts)) |> Map.take([:type, :attempts, :last_failure]))})
""")

Bench.stop_instance!(rt_pid)

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
# 2b. Messages: signal round trip, query latency, update round trip
# ---------------------------------------------------------------------------

IO.puts("-- 2b. Messages to one resident workflow, one at a time (#{messages_n} each after 30 warm-up)")
msg_name = :aion_bench_messages
msg_listener = :aion_bench_msg_listener
Process.register(self(), msg_listener)
msg_pid = Bench.start_instance!(name: msg_name, store: db.("messages.db"), workflows: [Chatty], durability: durability)
{:ok, chatty} = Aion.start_workflow(msg_name, Chatty, %{signals: messages_n + 30, updates: messages_n + 30, listener: msg_listener})

ping = fn n ->
  t0 = Bench.now_us()
  :ok = Aion.signal(msg_name, chatty, :ping, n)

  receive do
    {:pong, ^n} -> Bench.now_us() - t0
  after
    30_000 -> raise "signal #{n} got no answer"
  end
end

Enum.each(1..30, ping)
signal_samples = Enum.map(31..(messages_n + 30)//1, ping)
# Every signal is taken by now: the workflow waits for updates, and answers queries meanwhile.
query_samples =
  for _ <- 1..(messages_n + 30)//1 do
    t0 = Bench.now_us()
    {:ok, count} = Aion.query(msg_name, chatty, :count)
    t1 = Bench.now_us()
    ^count = messages_n + 30
    t1 - t0
  end
  |> Enum.drop(30)

update_samples =
  for n <- 1..(messages_n + 30)//1 do
    t0 = Bench.now_us()
    {:ok, ^n} = Aion.update(msg_name, chatty, :bump, n)
    Bench.now_us() - t0
  end
  |> Enum.drop(30)

{:ok, :done} = Aion.await(msg_name, chatty, 60_000)
Process.unregister(msg_listener)
Bench.stop_instance!(msg_pid)

msg_stats = fn samples -> Enum.map([50, 99], &Bench.percentile(samples, &1)) end
[sig50, sig99] = msg_stats.(signal_samples)
[q50, q99] = msg_stats.(query_samples)
[up50, up99] = msg_stats.(update_samples)

IO.puts("""
   signal round trip: p50 #{Bench.fmt_ms(sig50)}  p99 #{Bench.fmt_ms(sig99)}  (target p50 <= 3 ms)
   query (resident):  p50 #{Bench.fmt_ms(q50)}  p99 #{Bench.fmt_ms(q99)}  (target p50 <= 0.2 ms)
   update round trip: p50 #{Bench.fmt_ms(up50)}  p99 #{Bench.fmt_ms(up99)}  (target p50 <= 3 ms)
""")

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
# 4. Sleepers: many workflows blocked on a 1-hour durable timer
# ---------------------------------------------------------------------------

# Two populations of BENCH_SLEEPERS workflows, each on its own SQLite store:
#
#   a. evicted as they go (evict_idle_after: 0): each run process ends as
#      soon as its timer is recorded, so there are never more than a few
#      hundred processes; the memory left is what evicted sleepers cost.
#      This comes first, while the VM has not yet grown for (b).
#   b. all resident (evict_idle_after: :never), then
#   c. evicted by a restart on the same file with evict_idle_after: 0
#      (recovery arms every timer and spawns no process for a sleeping run).
#      Memory here includes what the allocators kept from (b)'s peak.
#
# Memory is read after a garbage collection of every process (Bench.memory/0):
# the BEAM's own accounting (:erlang.memory), the carriers its allocators
# hold from the OS, and the OS resident set (VmRSS), which also holds the
# Rust side. Figures per workflow are deltas from an idle instance with no
# workflows, divided by the number of sleepers.
#
# "Every timer recorded": a sleeper's process enters Aion.Workflow.Wait.next/3
# (the one receive of a workflow process) only after its sleep's
# timer_started is durable (Command.record returns after the commit), and
# this workflow has no other wait. So with evict_idle_after: :never, counting
# the run processes parked in Wait.next/3 counts durably recorded timers,
# exactly. Evicted runs are checked from the store: Aion.describe/2 of a
# sample must show each running, not resident, with one pending timer.
#
# Under this load it also measures how long NIF calls keep a normal
# scheduler: every call of Aion.Native is timed by call tracing
# (Aion.Bench.NifTimes), and the VM's long_schedule reports over 1 ms are
# collected (Aion.Bench.LongSchedules), by phase.

sleepers = Bench.env_int("BENCH_SLEEPERS", 100_000)
sleep_ms = 3_600_000
target_per_evicted = 2048

sleepers_result =
  if sleepers > 0 do
    IO.puts("-- 4. Sleepers: #{sleepers} workflows sleeping 1 hour (own stores, durability #{durability})")

    sleep_type = Aion.Workflow.type(Sleeper)
    describe_n = min(sleepers, Bench.env_int("BENCH_SLEEPERS_DESCRIBE", 4000))
    # Keep only a sample of the ids (every `stride`-th) and the last one: a
    # list of every id would weigh on the BEAM memory being measured.
    stride = max(div(sleepers, describe_n), 1)
    tenth = max(div(sleepers, 10), 1)

    collector = LongSchedules.start(1)
    tracer = if System.get_env("BENCH_TRACE_NIFS", "1") == "1", do: NifTimes.start()

    phase = fn phase ->
      LongSchedules.phase(collector, phase)
      if tracer, do: NifTimes.phase(tracer, phase)
    end

    # Starts `sleepers` workflows from a pool of `concurrency` processes.
    # Notes the time at every tenth of the starts, to show whether the rate
    # holds as the store and the number of sleepers grow.
    start_all = fn name ->
      t0 = Bench.now_us()

      {sample, _done, checkpoints} =
        1..sleepers//1
        |> Task.async_stream(
          fn i ->
            {:ok, id} = Aion.start_workflow(name, Sleeper, sleep_ms)
            if rem(i, stride) == 0 or i == sleepers, do: {i, id}, else: nil
          end,
          max_concurrency: concurrency,
          ordered: false,
          timeout: :infinity
        )
        |> Enum.reduce({[], 0, []}, fn {:ok, kept}, {sample, done, checkpoints} ->
          done = done + 1
          sample = if kept, do: [kept | sample], else: sample
          checkpoints = if rem(done, tenth) == 0, do: [Bench.now_us() | checkpoints], else: checkpoints
          {sample, done, checkpoints}
        end)

      rates =
        [t0 | Enum.reverse(checkpoints)]
        |> Enum.chunk_every(2, 1, :discard)
        |> Enum.map_join(" ", fn [a, b] -> Bench.fmt(tenth / ((b - a) / 1_000_000), 0) end)

      {_, last_id} = Enum.max_by(sample, &elem(&1, 0))

      %{
        t0: t0,
        started: Bench.now_us(),
        ids: sample |> Enum.map(&elem(&1, 1)) |> Enum.take(describe_n),
        last_id: last_id,
        rates: rates
      }
    end

    # Describes each sampled id; each must be running, not resident, with one
    # pending timer. The reconciler may have respawned a run a moment ago
    # (its sweep can list a run just before the run records its timer): such
    # a run replays and is evicted again at once, so a resident one is asked
    # about again, a few times. Returns the describe latencies.
    describe_one = fn describe_one, name, id, tries ->
      t = Bench.now_us()
      {:ok, d} = Aion.describe(name, id)
      us = Bench.now_us() - t
      ok = d.status == :running and match?([%{kind: :timer}], d.pending)

      if ok and d.resident and tries > 0 do
        Process.sleep(50)
        {_, ok} = describe_one.(describe_one, name, id, tries - 1)
        {us, ok}
      else
        {us, ok and not d.resident}
      end
    end

    describe_evicted = fn name, ids ->
      described = Enum.map(ids, &describe_one.(describe_one, name, &1, 20))

      bad = Enum.count(described, &(not elem(&1, 1)))
      if bad > 0, do: raise("#{bad} of #{length(described)} sampled sleepers are not evicted with a pending timer")
      times = Enum.map(described, &elem(&1, 0))

      "#{length(times)} Aion.describe of sampled sleepers (each running, evicted, timer pending): " <>
        "p50 #{Bench.fmt_ms(Bench.percentile(times, 50))}  p99 #{Bench.fmt_ms(Bench.percentile(times, 99))}  max #{Bench.fmt_ms(Enum.max(times))}"
    end

    idle_cpu = fn ->
      cpu0 = Bench.cpu_snapshot()
      Process.sleep(10_000)
      Bench.cpu_report(cpu0, Bench.cpu_snapshot())
    end

    per_line = fn label, mem, base ->
      "per #{label}: RSS #{Bench.fmt_bytes(Bench.per(mem, base, :rss, sleepers))}, " <>
        "BEAM allocated #{Bench.fmt_bytes(Bench.per(mem, base, :total, sleepers))} " <>
        "(processes #{Bench.fmt_bytes(Bench.per(mem, base, :processes, sleepers))}, ets #{Bench.fmt_bytes(Bench.per(mem, base, :ets, sleepers))}), " <>
        "BEAM carriers #{Bench.fmt_bytes(Bench.per(mem, base, :carriers, sleepers))}, " <>
        "outside the BEAM (RSS - carriers) #{Bench.fmt_bytes(Bench.per(mem, base, :outside, sleepers))}"
    end

    # RSS moves by a few MiB on its own (allocator caches, the SQLite page
    # cache): with fewer sleepers than this, that noise outweighs them.
    preemptions = fn
      nil, _us ->
        "scheduler threads preempted by the OS: n/a (no /proc)"

      before, us ->
        count = Bench.scheduler_preemptions() - before

        "normal scheduler threads preempted by the OS #{count} times (involuntary context switches, " <>
          "#{Bench.fmt(count / max(us / 1_000_000, 0.001), 0)}/s): each lengthens the NIF call or time slice it interrupts"
    end

    verdict = fn
      _ when sleepers < 20_000 -> "too few sleepers to judge the target of <= #{target_per_evicted} B (RSS noise is MiBs)"
      nil -> "n/a"
      bytes when bytes <= target_per_evicted -> "meets the target of <= #{target_per_evicted} B"
      _ -> "does NOT meet the target of <= #{target_per_evicted} B"
    end

    # a. Evicted as they go.
    phase.(:idle)
    ev_name = :aion_bench_sleepers_evicted
    ev_opts = [name: ev_name, store: db.("sleepers-evicted.db"), workflows: [Sleeper], durability: durability]
    ev_pid = Bench.start_instance!(ev_opts ++ [evict_idle_after: 0])
    ev_sup = Aion.Instance.workflows_supervisor(ev_name, sleep_type)
    :sys.get_state(Aion.Instance.via(ev_name, :reconciler))
    idle_mem = Bench.memory()
    IO.puts("   idle instance, no workflows: #{Bench.memory_line(idle_mem)}")

    phase.(:start_evicting)
    cpu0 = Bench.cpu_snapshot()
    preempted0 = Bench.scheduler_preemptions()
    ev = start_all.(ev_name)

    wait_evicted = fn wait, deadline ->
      case DynamicSupervisor.count_children(ev_sup) do
        %{active: 0} ->
          :ok

        %{active: n} ->
          if Bench.now_us() > deadline,
            do: raise("#{n} sleepers still resident"),
            else: Process.sleep(50) && wait.(wait, deadline)
      end
    end

    wait_evicted.(wait_evicted, Bench.now_us() + 600_000_000)
    ev_done = Bench.now_us()
    ev_cpu = Bench.cpu_report(cpu0, Bench.cpu_snapshot())
    ev_preempted = preemptions.(preempted0, ev_done - ev.t0)
    phase.(:describe)
    ev_describe = describe_evicted.(ev_name, ev.ids)
    phase.(:evicted_idle)
    ev_idle_cpu = idle_cpu.()
    phase.(:measure)
    ev_mem = Bench.memory()
    per_evicted = Bench.per(ev_mem, idle_mem, :rss, sleepers)
    ev_rate = sleepers / ((ev_done - ev.t0) / 1_000_000)

    IO.puts("""
       a. evict_idle_after: 0, each evicted once its timer is recorded
       started #{sleepers} in #{Bench.fmt_s(ev.started - ev.t0)} (start_workflow calls, pool of #{concurrency}); all evicted after #{Bench.fmt_s(ev_done - ev.t0)} (#{Bench.fmt(ev_rate)} sleepers/s)
       start_workflow rate per tenth of the starts (workflows/s): #{ev.rates}
       #{ev_cpu}
       #{ev_preempted}
       #{ev_describe}
       all evicted: #{Bench.memory_line(ev_mem)}
       #{per_line.("evicted sleeper", ev_mem, idle_mem)}
       => #{Bench.fmt_bytes(per_evicted)} RSS per evicted sleeper: #{verdict.(per_evicted)}
       idle for 10 s with #{sleepers} evicted sleepers: #{ev_idle_cpu}
    """)

    phase.(:stop)
    Bench.stop_instance!(ev_pid)
    stopped_mem = Bench.memory()

    IO.puts("""
       after stopping that instance (engine closed, store kept): #{Bench.memory_line(stopped_mem)}
       => its engine gave back #{Bench.fmt_bytes(Bench.per(ev_mem, stopped_mem, :rss, sleepers))} RSS per evicted sleeper on closing; the other #{Bench.fmt_bytes(Bench.per(stopped_mem, idle_mem, :rss, sleepers))} stay with the allocators
    """)

    # b. All resident.
    phase.(:idle)
    s_name = :aion_bench_sleepers
    s_opts = [name: s_name, store: db.("sleepers.db"), workflows: [Sleeper], durability: durability]
    s_sup = Aion.Instance.workflows_supervisor(s_name, sleep_type)
    s_pid = Bench.start_instance!(s_opts ++ [evict_idle_after: :never])
    :sys.get_state(Aion.Instance.via(s_name, :reconciler))
    idle2_mem = Bench.memory()

    IO.puts(
      "   b. evict_idle_after: :never, on another store; idle instance, no workflows (the base for b and c): #{Bench.memory_line(idle2_mem)}"
    )

    phase.(:start_resident)
    cpu0 = Bench.cpu_snapshot()
    preempted0 = Bench.scheduler_preemptions()
    res = start_all.(s_name)

    parked = fn ->
      s_sup
      |> DynamicSupervisor.which_children()
      |> Enum.count(fn {_, pid, _, _} ->
        is_pid(pid) and match?({:current_function, {Aion.Workflow.Wait, :next, _}}, Process.info(pid, :current_function))
      end)
    end

    wait_parked = fn wait, deadline ->
      count = parked.()

      cond do
        count >= sleepers -> count
        Bench.now_us() > deadline -> raise "only #{count} of #{sleepers} sleepers recorded their timer in time"
        true -> Process.sleep(100) && wait.(wait, deadline)
      end
    end

    wait_parked.(wait_parked, Bench.now_us() + 600_000_000)
    res_done = Bench.now_us()
    res_cpu = Bench.cpu_report(cpu0, Bench.cpu_snapshot())
    res_preempted = preemptions.(preempted0, res_done - res.t0)
    {:ok, last} = Aion.describe(s_name, res.last_id)
    true = last.resident and match?([%{kind: :timer}], last.pending)
    phase.(:resident_idle)
    res_idle_cpu = idle_cpu.()
    phase.(:measure)
    res_mem = Bench.memory()
    res_rate = sleepers / ((res_done - res.t0) / 1_000_000)

    IO.puts("""
       started #{sleepers} in #{Bench.fmt_s(res.started - res.t0)}; every timer recorded after #{Bench.fmt_s(res_done - res.t0)} (#{Bench.fmt(res_rate)} sleepers/s)
       start_workflow rate per tenth of the starts (workflows/s): #{res.rates}
       #{res_cpu}
       #{res_preempted}
       all resident: #{Bench.memory_line(res_mem)}
       #{per_line.("resident sleeper", res_mem, idle2_mem)}
       idle for 10 s with #{sleepers} resident sleepers: #{res_idle_cpu}
    """)

    # c. Evicted by a restart.
    phase.(:stop_resident)
    {stop_us, stopped} = Bench.timed(fn -> Bench.stop_instance_with_runs!(s_pid, s_name, [sleep_type]) end)
    phase.(:restart)
    cpu0 = Bench.cpu_snapshot()
    rt0 = Bench.now_us()
    s_pid = Bench.start_instance!(s_opts ++ [evict_idle_after: 0])
    t_linked = Bench.now_us()
    # The reconciler recovers in handle_continue: it answers once recovery
    # (every timer armed) and its first sweep page are done.
    :sys.get_state(Aion.Instance.via(s_name, :reconciler), 600_000)
    t_recovered = Bench.now_us()
    restart_cpu = Bench.cpu_report(cpu0, Bench.cpu_snapshot())
    %{active: active_after} = DynamicSupervisor.count_children(s_sup)
    phase.(:describe)
    rs_describe = describe_evicted.(s_name, res.ids)
    phase.(:measure)
    rs_mem = Bench.memory()

    IO.puts("""
       c. stopped that instance with #{stopped} resident in #{Bench.fmt_s(stop_us)} (see Bench.stop_instance_with_runs!/3), restarted it with evict_idle_after: 0
       Aion.start_link returned after #{Bench.fmt_ms(t_linked - rt0)}; recovery (every timer armed) done after #{Bench.fmt_s(t_recovered - rt0)}; #{active_after} run processes
       #{restart_cpu}
       #{rs_describe}
       all evicted after the restart: #{Bench.memory_line(rs_mem)}
       #{per_line.("sleeper evicted by the restart (with what the allocators kept from b)", rs_mem, idle2_mem)}
    """)

    phase.(:stop)
    Bench.stop_instance!(s_pid)
    reports = LongSchedules.stop(collector)
    nif_stats = if tracer, do: NifTimes.stop(tracer), else: %{}

    # NIF calls, slowest first by their longest call. The NIFs marked
    # schedule = "DirtyIo" in native/aion_nif/src/lib.rs run on a dirty I/O
    # scheduler, not a normal one: they are shown apart.
    dirty = [engine_open: 2, engine_close: 1]
    {dirty_stats, normal_stats} = Enum.split_with(nif_stats, fn {fun, _} -> fun in dirty end)

    nif_lines =
      (Enum.sort_by(normal_stats, fn {_, s} -> -elem(hd(s.top), 0) end) ++ dirty_stats)
      |> Enum.map(fn {{f, a} = fun, s} ->
        {max_ns, max_phase} = hd(s.top)

        "     #{String.pad_trailing("#{f}/#{a}#{if fun in dirty, do: " (dirty io)"}", 24)} #{String.pad_leading(Integer.to_string(s.count), 7)} calls, " <>
          "mean #{Bench.fmt(s.total_ns / s.count / 1000, 1)} us, p99 #{NifTimes.percentile_us(s, 99)}, " <>
          "p99.9 #{NifTimes.percentile_us(s, 99.9)}, max #{Bench.fmt(max_ns / 1_000_000, 2)} ms (#{max_phase}); " <>
          "over 1 ms: #{Enum.sum(for {b, c} <- s.hist, b >= 6, do: c)}"
      end)

    # load_run is how a run with no process is made resident again (respawn
    # and replay). No timer fires here, so every one is a respawn by the
    # reconciler: in (a), a run its sweep listed as having no pending timer
    # just before the run recorded one and was evicted.
    loads =
      case nif_stats do
        %{{:load_run, 4} => s} -> Enum.map_join(Enum.sort(s.phases), ", ", fn {phase, count} -> "#{phase} #{count}" end)
        _ -> "none"
      end

    longest_nif =
      normal_stats
      |> Enum.map(fn {{f, a}, s} -> {elem(hd(s.top), 0), "#{f}/#{a}", elem(hd(s.top), 1)} end)
      |> Enum.max(fn -> nil end)

    # Long schedules: the longest of each phase, and of those scheduled in
    # or out at a NIF call site.
    me = self()
    label = fn r -> if r.who == me, do: "bench process", else: r.name end
    describe_report = fn r -> "#{r.ms} ms #{label.(r)} (in #{LongSchedules.mfa(r.in)}, out #{LongSchedules.mfa(r.out)})" end
    native = Enum.filter(reports, &LongSchedules.native?/1)
    longest_native = Enum.max_by(native, & &1.ms, fn -> nil end)

    by_phase =
      reports
      |> Enum.group_by(& &1.phase)
      |> Enum.map(fn {phase, rs} -> {phase, length(rs), Enum.max_by(rs, & &1.ms)} end)

    phase_lines =
      for phase <- [
            :idle,
            :start_evicting,
            :describe,
            :evicted_idle,
            :measure,
            :stop,
            :start_resident,
            :resident_idle,
            :stop_resident,
            :restart
          ],
          {^phase, count, top} <- by_phase do
        "     #{String.pad_trailing(Atom.to_string(phase) <> ":", 16)}#{String.pad_leading(Integer.to_string(count), 4)} over 1 ms, longest #{describe_report.(top)}"
      end

    IO.puts("""
       NIF calls (Aion.Native), each timed by call tracing, slowest first (the phase of the longest in brackets):
    #{if tracer, do: Enum.join(nif_lines, "\n"), else: "     not traced (BENCH_TRACE_NIFS=0)"}
       runs made resident again (load_run) by phase: #{if tracer, do: loads, else: "not traced"}
       longest NIF call on a normal scheduler: #{case longest_nif do
      nil -> "n/a"
      {ns, fun, ph} -> "#{Bench.fmt(ns / 1_000_000, 2)} ms, #{fun} (#{ph}); target <= 1 ms: #{if ns <= 1_000_000, do: "met", else: "NOT met"}"
    end}
       long schedules (> 1 ms on a normal scheduler): #{length(reports)}, #{length(native)} scheduled in or out at a NIF call site (Aion.Native, Aion.Engine)
    #{Enum.join(phase_lines, "\n")}
       longest at a NIF call site: #{if longest_native, do: describe_report.(longest_native), else: "none over 1 ms"}
       (a long schedule is wall time: on a busy machine it includes the OS running another thread on that core;
        "measure" is this bench forcing a GC of every process, "stop_resident" shutting down #{sleepers} run processes)
    """)

    %{
      n: sleepers,
      evicted_rate: ev_rate,
      resident_rate: res_rate,
      idle: idle_mem,
      evicted: ev_mem,
      per_evicted: per_evicted,
      per_resident: Bench.per(res_mem, idle2_mem, :rss, sleepers),
      per_evicted_restart: Bench.per(rs_mem, idle2_mem, :rss, sleepers),
      recovery_us: t_recovered - rt0,
      longest_nif: longest_nif,
      longest_schedule: Enum.max_by(reports, & &1.ms, fn -> nil end)
    }
  else
    nil
  end

# ---------------------------------------------------------------------------
# 5. Listing and counting workflows (visibility)
# ---------------------------------------------------------------------------

# BENCH_LIST workflows on their own store: type A, B or C by i rem 3; 4 in
# 7 complete, 2 fail, 1 sleeps (evicted at once); search attributes
# "tier" (text, 5 values), "amount" (int 0..999), "vip" (bool) and "due"
# (a time). Seeded as fast as the public API allows (durability :normal,
# many starters); then each measured call is one query in the store.

list_n = Bench.env_int("BENCH_LIST", 100_000)
list_queries = max(Bench.env_int("BENCH_LIST_QUERIES", 200), 1)

list_result =
  if list_n > 0 do
    IO.puts("-- 5. Listing: #{list_n} workflows (own store, seeded with durability normal)")
    list_types = [Aion.Bench.Listed.A, Aion.Bench.Listed.B, Aion.Bench.Listed.C]
    list_name = :bench_list
    base = ~U[2030-01-01 00:00:00Z]

    list_pid =
      Bench.start_instance!(
        name: list_name,
        store: db.("list.db"),
        durability: :normal,
        evict_idle_after: 0,
        workflows: list_types
      )

    seed_t0 = Bench.now_us()

    1..list_n//1
    |> Task.async_stream(
      fn i ->
        outcome =
          case rem(i, 7) do
            r when r < 4 -> :complete
            r when r < 6 -> :fail
            _ -> :sleep
          end

        attributes = %{
          "tier" => Enum.at(~w(gold silver bronze iron wood), rem(i, 5)),
          "amount" => rem(i * 37, 1000),
          "vip" => rem(i, 4) == 0,
          "due" => DateTime.add(base, i, :second)
        }

        {:ok, _} = Aion.start_workflow(list_name, Enum.at(list_types, rem(i, 3)), outcome, search_attributes: attributes)
      end,
      max_concurrency: max(concurrency, 32),
      ordered: false,
      timeout: :infinity
    )
    |> Stream.run()

    # Every run has ended (or sleeps) once no non-sleeper is running.
    expected_running = Enum.count(1..list_n//1, &(rem(&1, 7) == 6))

    Stream.repeatedly(fn -> Process.sleep(100) && Aion.count(list_name, status: :running) end)
    |> Enum.find(&(&1 == {:ok, expected_running}))

    seed_us = Bench.now_us() - seed_t0
    IO.puts("   seeded #{list_n} in #{Bench.fmt_s(seed_us)} (#{Bench.fmt(list_n / (seed_us / 1_000_000), 0)}/s)")

    # Filters vary from call to call (type, status, threshold).
    filter_for = fn k ->
      [
        type: Enum.at(list_types, rem(k, 3)),
        status: Enum.at([:completed, :failed, :running], rem(k, 3)),
        search: %{"amount" => {:>=, 500 + rem(k * 53, 450)}}
      ]
    end

    sample = fn fun ->
      for k <- 1..list_queries//1 do
        {us, _} = Bench.timed(fn -> fun.(k) end)
        us
      end
    end

    # Warm-up: the first calls read the indexes from disk.
    for k <- 1..20, do: {:ok, _} = Aion.list(list_name, filter_for.(k), limit: 100)

    page_us =
      sample.(fn k ->
        {:ok, %{workflows: rows}} = Aion.list(list_name, filter_for.(k), limit: 100)
        true = rows != []
      end)

    count_us = sample.(fn k -> {:ok, _} = Aion.count(list_name, filter_for.(k)) end)
    all_count_us = sample.(fn _ -> {:ok, ^list_n} = Aion.count(list_name) end)

    {:ok, %{cursor: cursor}} = Aion.list(list_name, [], limit: 100)
    next_page_us = sample.(fn _ -> {:ok, %{workflows: [_ | _]}} = Aion.list(list_name, [], limit: 100, cursor: cursor) end)
    {:ok, matched} = Aion.count(list_name, filter_for.(1))

    stats = fn us -> {Bench.percentile(us, 50), Bench.percentile(us, 99)} end
    {page50, page99} = stats.(page_us)
    {count50, count99} = stats.(count_us)
    {all50, all99} = stats.(all_count_us)
    {next50, next99} = stats.(next_page_us)
    verdict = fn p50 -> if p50 <= 20_000, do: "met", else: "NOT met" end

    IO.puts("""
       filtered page (type + status + amount >= x, limit 100; e.g. #{matched} match): p50 #{Bench.fmt_ms(page50)}  p99 #{Bench.fmt_ms(page99)}  (target p50 <= 20 ms: #{verdict.(page50)})
       count of that filter:                 p50 #{Bench.fmt_ms(count50)}  p99 #{Bench.fmt_ms(count99)}  (target p50 <= 20 ms: #{verdict.(count50)})
       count of all #{list_n}:                p50 #{Bench.fmt_ms(all50)}  p99 #{Bench.fmt_ms(all99)}
       second page, no filter (cursor):      p50 #{Bench.fmt_ms(next50)}  p99 #{Bench.fmt_ms(next99)}
    """)

    Bench.stop_instance!(list_pid)

    %{
      n: list_n,
      seed_us: seed_us,
      page: {page50, page99},
      count: {count50, count99},
      all_count: {all50, all99},
      next_page: {next50, next99}
    }
  end

# ---------------------------------------------------------------------------
# 6. Continue-as-new: a chain of BENCH_CHAIN runs
# ---------------------------------------------------------------------------

chain_n = Bench.env_int("BENCH_CHAIN", 10_000)

chain_result =
  if chain_n > 0 do
    IO.puts("-- 6. Continue-as-new: one workflow continuing as new #{chain_n} times")
    chain_name = :bench_chain
    chain_pid = Bench.start_instance!(name: chain_name, store: db.("chain.db"), workflows: [Chain], durability: durability)
    loads = 50

    # p50 of describe (latest run) and of a query answered by a read-only
    # replay of the latest run, `loads` calls each after 5 warm-up calls.
    measure_loads = fn ->
      {:ok, runs} = Aion.runs(chain_name, "bench-chain")
      latest = List.last(runs).run_id

      timed = fn fun ->
        for _ <- 1..5, do: fun.()
        us = for _ <- 1..loads, do: elem(Bench.timed(fun), 0)
        Bench.percentile(us, 50)
      end

      describe = timed.(fn -> {:ok, %{status: :running}} = Aion.describe(chain_name, "bench-chain") end)
      query = timed.(fn -> {:ok, %{left: _}} = Aion.query(chain_name, "bench-chain", :state, nil, run_id: latest) end)
      {:ok, %{history_size: size}} = Aion.describe(chain_name, "bench-chain")
      %{describe: describe, query: query, runs: length(runs), size: size}
    end

    {:ok, _} = Aion.start_workflow(chain_name, Chain, %{left: chain_n, count: 0, listener: listener, first: true}, id: "bench-chain")
    Bench.wait_until(fn -> match?({:ok, %{pending: [], history_size: %{events: 1}}}, Aion.describe(chain_name, "bench-chain")) end)
    at_start = measure_loads.()

    cpu0 = Bench.cpu_snapshot()
    t0 = Bench.now_us()
    :ok = Aion.signal(chain_name, "bench-chain", :go, :go)

    receive do
      {:chain_end, _pid} -> :ok
    after
      1_800_000 -> raise "the chain did not reach its last run in 30 minutes"
    end

    chain_us = Bench.now_us() - t0
    chain_cpu = Bench.cpu_report(cpu0, Bench.cpu_snapshot())
    at_end = measure_loads.()
    {runs_us, {:ok, runs}} = Bench.timed(fn -> Aion.runs(chain_name, "bench-chain") end)
    :ok = Aion.signal(chain_name, "bench-chain", :finish, :now)
    {:ok, ^chain_n} = Aion.await(chain_name, "bench-chain", 60_000)
    Bench.stop_instance!(chain_pid)
    per_us = chain_us / chain_n

    IO.puts("""
       #{chain_n} continue-as-new in #{Bench.fmt_s(chain_us)}: #{Bench.fmt_ms(per_us)} each (#{Bench.fmt(1_000_000 / per_us, 0)}/s)
       #{chain_cpu}
       load the latest run at #{at_start.runs} run(s):   describe p50 #{Bench.fmt_ms(at_start.describe)}  query by replay p50 #{Bench.fmt_ms(at_start.query)}  (run: #{at_start.size.events} events)
       load the latest run at #{at_end.runs} runs: describe p50 #{Bench.fmt_ms(at_end.describe)}  query by replay p50 #{Bench.fmt_ms(at_end.query)}  (run: #{at_end.size.events} events)
       end/start: describe #{Bench.fmt(at_end.describe / max(at_start.describe, 1), 2)}x  query #{Bench.fmt(at_end.query / max(at_start.query, 1), 2)}x  (flat: does not grow with the chain)
       Aion.runs/2 of #{length(runs)} runs: #{Bench.fmt_ms(runs_us)}
    """)

    %{n: chain_n, per_us: per_us, start: at_start, end: at_end, runs_us: runs_us}
  end

# ---------------------------------------------------------------------------
# 7. Children: a parent fanning out and awaiting all
# ---------------------------------------------------------------------------

children_n = Bench.env_int("BENCH_CHILDREN", 1000)

children_result =
  if children_n > 0 do
    IO.puts("-- 7. Children: a parent fans out #{children_n} children and awaits them all (3 runs)")
    children_pid = Bench.start_instance!(name: :bench_children, store: db.("children.db"), durability: durability, workflows: [Aion.Bench.FanOut, Aion.Bench.FanOut.Child])

    runs_us =
      for run <- 1..3 do
        {us, {:ok, ^children_n}} =
          Bench.timed(fn ->
            {:ok, id} = Aion.start_workflow(:bench_children, Aion.Bench.FanOut, children_n, id: "fan-#{run}")
            Aion.await(:bench_children, id, :infinity)
          end)

        IO.puts("   run #{run}: #{Bench.fmt_s(us)} (#{Bench.fmt(children_n / (us / 1_000_000), 0)} children/s)")
        us
      end

    Bench.stop_instance!(children_pid)
    %{n: children_n, median_us: Enum.at(Enum.sort(runs_us), 1)}
  end

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

fs = Bench.filesystem(tmp)
total_us = Bench.now_us() - bench_started

unless System.get_env("BENCH_KEEP") == "1", do: File.rm_rf!(tmp)

opt = fn
  nil, _decimals -> "n/a"
  value, decimals -> Bench.fmt(value, decimals)
end

{sleepers_report, sleepers_keys} =
  case sleepers_result do
    nil ->
      {"", ""}

    r ->
      longest_nif =
        case r.longest_nif do
          nil -> "n/a"
          {ns, fun, phase} -> "#{Bench.fmt(ns / 1_000_000, 2)} ms (#{fun}, #{phase})"
        end

      longest_schedule =
        case r.longest_schedule do
          nil -> "none over 1 ms"
          ls -> "#{ls.ms} ms (#{ls.phase})"
        end

      {"""
         sleepers:           #{r.n} sleeping 1 h; started at #{Bench.fmt(r.evicted_rate, 0)}/s evicting, #{Bench.fmt(r.resident_rate, 0)}/s resident
         per evicted:        #{Bench.fmt_bytes(r.per_evicted)} RSS (target <= 2048 B); after a restart #{Bench.fmt_bytes(r.per_evicted_restart)}
         per resident:       #{Bench.fmt_bytes(r.per_resident)} RSS
         recovery of them:   #{Bench.fmt_s(r.recovery_us)}
         longest NIF:        #{longest_nif} on a normal scheduler; longest schedule #{longest_schedule}
       """,
       """
       sleepers=#{r.n}
       sleepers_evicting_per_s=#{Bench.fmt(r.evicted_rate, 1)}
       sleepers_resident_per_s=#{Bench.fmt(r.resident_rate, 1)}
       sleeper_evicted_rss_bytes=#{opt.(r.per_evicted, 0)}
       sleeper_evicted_after_restart_rss_bytes=#{opt.(r.per_evicted_restart, 0)}
       sleeper_resident_rss_bytes=#{opt.(r.per_resident, 0)}
       sleepers_recovery_ms=#{Bench.fmt(Bench.ms(r.recovery_us), 1)}
       longest_nif_ms=#{case r.longest_nif do
         nil -> "n/a"
         {ns, _, _} -> Bench.fmt(ns / 1_000_000, 3)
       end}
       """}
  end

{list_report, list_keys} =
  case list_result do
    nil ->
      {"", ""}

    r ->
      {p50, p99} = r.page
      {c50, c99} = r.count
      {a50, a99} = r.all_count

      {"""
         list page:          p50 #{Bench.fmt_ms(p50)}  p99 #{Bench.fmt_ms(p99)} (#{r.n} workflows; type + status + attribute range, limit 100)
         count:              p50 #{Bench.fmt_ms(c50)}  p99 #{Bench.fmt_ms(c99)} (same filters); all: p50 #{Bench.fmt_ms(a50)}  p99 #{Bench.fmt_ms(a99)}
       """,
       """
       list_workflows=#{r.n}
       list_page_p50_ms=#{Bench.fmt(Bench.ms(p50), 3)}
       list_page_p99_ms=#{Bench.fmt(Bench.ms(p99), 3)}
       list_count_p50_ms=#{Bench.fmt(Bench.ms(c50), 3)}
       list_count_p99_ms=#{Bench.fmt(Bench.ms(c99), 3)}
       list_count_all_p50_ms=#{Bench.fmt(Bench.ms(a50), 3)}
       """}
  end

{chain_report, chain_keys} =
  case chain_result do
    nil ->
      {"", ""}

    r ->
      {"""
         continue-as-new:    #{Bench.fmt_ms(r.per_us)} each (#{r.n} in a row)
         load latest run:    describe p50 #{Bench.fmt_ms(r.start.describe)} at 1 run, #{Bench.fmt_ms(r.end.describe)} at #{r.end.runs}; query replay #{Bench.fmt_ms(r.start.query)} / #{Bench.fmt_ms(r.end.query)}
       """,
       """
       chain_runs=#{r.n}
       continue_as_new_ms=#{Bench.fmt(Bench.ms(r.per_us), 3)}
       chain_describe_start_p50_ms=#{Bench.fmt(Bench.ms(r.start.describe), 3)}
       chain_describe_end_p50_ms=#{Bench.fmt(Bench.ms(r.end.describe), 3)}
       chain_query_start_p50_ms=#{Bench.fmt(Bench.ms(r.start.query), 3)}
       chain_query_end_p50_ms=#{Bench.fmt(Bench.ms(r.end.query), 3)}
       chain_runs_list_ms=#{Bench.fmt(Bench.ms(r.runs_us), 3)}
       """}
  end

{children_report, children_keys} =
  case children_result do
    nil ->
      {"", ""}

    r ->
      {"    #{String.pad_trailing("fan-out #{r.n}:", 19)} median #{Bench.fmt_s(r.median_us)} to all complete (#{Bench.fmt(r.n / (r.median_us / 1_000_000), 0)} children/s)\n",
       """
       children_fan_out=#{r.n}
       children_fan_out_ms=#{Bench.fmt(Bench.ms(r.median_us), 3)}
       """}
  end

machine = Enum.map_join(Bench.machine(), "\n", fn {k, v} -> "  #{String.pad_trailing(k <> ":", 19)} #{v}" end)

IO.write(
  """
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
    sleepers:           #{if sleepers > 0, do: "#{sleepers} per population (BENCH_SLEEPERS)", else: "skipped (BENCH_SLEEPERS=0)"}
    listing:            #{if list_n > 0, do: "#{list_n} workflows (BENCH_LIST)", else: "skipped (BENCH_LIST=0)"}
    continue-as-new:    #{if chain_n > 0, do: "a chain of #{chain_n} runs (BENCH_CHAIN)", else: "skipped (BENCH_CHAIN=0)"}
  Results
    W1 throughput:      #{Bench.fmt(tp_wps)} workflows/s (#{n} in #{Bench.fmt_s(tp.total)})
    W1 retry:           #{Bench.fmt(rt_wps)} workflows/s (#{Bench.fmt(rt_wps / tp_wps * 100)}% of W1)
    W1 latency:         p50 #{Bench.fmt_ms(p50)}  p90 #{Bench.fmt_ms(p90)}  p99 #{Bench.fmt_ms(p99)}
    signal round trip:  p50 #{Bench.fmt_ms(sig50)}  p99 #{Bench.fmt_ms(sig99)}
    query (resident):   p50 #{Bench.fmt_ms(q50)}  p99 #{Bench.fmt_ms(q99)}
    update round trip:  p50 #{Bench.fmt_ms(up50)}  p99 #{Bench.fmt_ms(up99)}
    #{String.pad_trailing("replay #{event_count} ev:", 19)} min #{Bench.fmt_ms(replay_min)}  median #{Bench.fmt_ms(replay_median)}
    live build of it:   #{Bench.fmt_s(build_us)}
  #{sleepers_report}#{list_report}#{chain_report}#{children_report}  bench wall time:    #{Bench.fmt_s(total_us)}

  Ratio-friendly (one key=value per line; same units in every run)
  durability=#{durability}
  n=#{n}
  concurrency=#{concurrency}
  w1_throughput_wf_per_s=#{Bench.fmt(tp_wps, 2)}
  w1_retry_throughput_wf_per_s=#{Bench.fmt(rt_wps, 2)}
  w1_latency_p50_ms=#{Bench.fmt(Bench.ms(p50), 3)}
  w1_latency_p90_ms=#{Bench.fmt(Bench.ms(p90), 3)}
  w1_latency_p99_ms=#{Bench.fmt(Bench.ms(p99), 3)}
  w1_start_p50_ms=#{Bench.fmt(Bench.ms(s50), 3)}
  signal_round_trip_p50_ms=#{Bench.fmt(Bench.ms(sig50), 3)}
  signal_round_trip_p99_ms=#{Bench.fmt(Bench.ms(sig99), 3)}
  query_p50_ms=#{Bench.fmt(Bench.ms(q50), 3)}
  query_p99_ms=#{Bench.fmt(Bench.ms(q99), 3)}
  update_round_trip_p50_ms=#{Bench.fmt(Bench.ms(up50), 3)}
  update_round_trip_p99_ms=#{Bench.fmt(Bench.ms(up99), 3)}
  replay_events=#{event_count}
  replay_min_ms=#{Bench.fmt(Bench.ms(replay_min), 3)}
  replay_median_ms=#{Bench.fmt(Bench.ms(replay_median), 3)}
  replay_us_per_event=#{Bench.fmt(replay_median / max(event_count, 1), 3)}
  live_build_ms=#{Bench.fmt(Bench.ms(build_us), 3)}
  live_build_us_per_event=#{Bench.fmt(build_us / max(event_count, 1), 3)}
  """ <> sleepers_keys <> list_keys <> chain_keys <> children_keys <> "\n"
)
