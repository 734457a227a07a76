defmodule Aion.Bench.Activities do
  @moduledoc false
  # Activities of the benchmark workflows.

  @doc "A no-op activity: returns its argument at once."
  def noop(x), do: {:ok, x}

  @doc "Fails its first attempt, then returns its argument: a retried no-op."
  def flaky(x) do
    if Aion.Activity.info().attempt == 1, do: {:error, :transient}, else: {:ok, x}
  end

  @doc """
  Tells `listener` (a registered name) that it started, then blocks until it
  receives `:open`. The replay benchmark uses it as the point where its long
  workflow waits: after a restart, recovery replays the workflow up to here
  and this activity runs again (it was scheduled but never completed).
  """
  def gate(listener) do
    send(listener, {:bench_gate, self(), System.monotonic_time()})

    receive do
      :open -> {:ok, :opened}
    end
  end
end

defmodule Aion.Bench.W1 do
  @moduledoc false
  # W1: three sequential no-op activities.
  use Aion.Workflow, name: "bench.w1"

  alias Aion.Bench.Activities

  @impl true
  def run(x) do
    {:ok, a} = activity(Activities, :noop, [x])
    {:ok, b} = activity(Activities, :noop, [a])
    {:ok, c} = activity(Activities, :noop, [b])
    {:ok, c}
  end
end

defmodule Aion.Bench.W1Retry do
  @moduledoc false
  # W1 whose middle activity fails once and is retried at once
  # (initial_interval 0): the cost of a retry (its durable retry state).
  use Aion.Workflow, name: "bench.w1_retry"

  alias Aion.Bench.Activities

  @impl true
  def run(x) do
    {:ok, a} = activity(Activities, :noop, [x])
    {:ok, b} = activity(Activities, :flaky, [a], retry: [max_attempts: 3, initial_interval: 0])
    {:ok, c} = activity(Activities, :noop, [b])
    {:ok, c}
  end
end

defmodule Aion.Bench.Chatty do
  @moduledoc false
  # The messages benchmark's workflow. Answers query :count (signals taken so
  # far) while it waits; takes `signals` :ping signals, and after each one
  # records its next command (a `now/0` marker) and only then tells
  # `listener` {:pong, n}; then answers `updates` :bump updates (the handler
  # replies its argument, recorded); then returns.
  use Aion.Workflow, name: "bench.chatty"

  @impl true
  def run(%{signals: signals, updates: updates, listener: listener}) do
    on_query(:count, fn _ -> Process.get(:bench_count, 0) end)

    Enum.each(1..signals//1, fn _ ->
      {:ok, n} = await_signal(:ping)
      _ = now()
      Process.put(:bench_count, Process.get(:bench_count, 0) + 1)
      send(listener, {:pong, n})
    end)

    Enum.each(1..updates//1, fn _ -> {:ok, _, _} = await_update(:bump, fn n -> {:ok, n} end) end)
    {:ok, :done}
  end
end

defmodule Aion.Bench.Long do
  @moduledoc false
  # Runs `activities` sequential no-op activities (2 events each), then waits
  # at a gate activity. Its history at the gate holds
  # 1 (workflow_started) + 2 * activities + 1 (the gate's activity_scheduled)
  # events.
  use Aion.Workflow, name: "bench.long"

  alias Aion.Bench.Activities

  @impl true
  def run(%{activities: n, listener: listener}) do
    Enum.each(1..n//1, fn i -> {:ok, ^i} = activity(Activities, :noop, [i]) end)
    {:ok, :opened} = activity(Activities, :gate, [listener])
    {:ok, :done}
  end
end

defmodule Aion.Bench.Chain do
  @moduledoc false
  # A chain of runs that continue as new, carrying a counter. The first run
  # (first: true) waits for signal :go; the last (left: 0) tells `listener`
  # it is there, then waits for :finish and returns the count. Every run
  # answers the query :state with its input.
  use Aion.Workflow, name: "bench.chain"

  @impl true
  def run(%{left: left, count: count, listener: listener} = state) do
    on_query(:state, fn _ -> state end)
    if state[:first], do: {:ok, _} = await_signal(:go)

    if left == 0 do
      send(listener, {:chain_end, self()})
      {:ok, _} = await_signal(:finish)
      {:ok, count}
    else
      continue_as_new(%{left: left - 1, count: count + 1, listener: listener})
    end
  end
end

defmodule Aion.Bench.Sleeper do
  @moduledoc false
  # Sleeps `ms` milliseconds on a durable timer, then returns. While it
  # sleeps its history holds two events: workflow_started, timer_started.
  use Aion.Workflow, name: "bench.sleeper"

  @impl true
  def run(ms) do
    sleep(ms)
    {:ok, :woke}
  end
end

defmodule Aion.Bench.FanOut do
  @moduledoc false
  # A parent starting `n` children (Aion.Bench.FanOut.Child) and awaiting them all.
  use Aion.Workflow

  @impl true
  def run(n) do
    results = for(i <- 1..n, do: start_child(Aion.Bench.FanOut.Child, i)) |> await_all()
    {:ok, length(results)}
  end

  defmodule Child do
    @moduledoc false
    use Aion.Workflow

    @impl true
    def run(i), do: {:ok, i}
  end
end

defmodule Aion.Bench.Listed do
  @moduledoc false
  # The listing bench's workflows (three types, see Aion.Bench.Listed.A/B/C):
  # each ends as its input says: :complete, :fail, or :sleep (an hour, so it
  # stays running).
  def run(:complete), do: {:ok, :done}
  def run(:fail), do: {:error, :refused}

  def run(:sleep) do
    Aion.Workflow.sleep(3_600_000)
    {:ok, :woke}
  end
end

for suffix <- [A, B, C] do
  defmodule Module.concat(Aion.Bench.Listed, suffix) do
    @moduledoc false
    use Aion.Workflow, name: "bench.listed." <> String.downcase(inspect(suffix))

    @impl true
    def run(outcome), do: Aion.Bench.Listed.run(outcome)
  end
end

defmodule Aion.Bench.LongSchedules do
  @moduledoc false
  # Collects the VM's long_schedule reports (:erlang.system_monitor/2): a
  # process or port that ran longer than `threshold` ms on a normal scheduler
  # without being scheduled out. Elixir code yields after a budget of
  # reductions (well under a millisecond), so what shows up here is a NIF or
  # BIF that does not yield, a garbage collection of a large heap, or the OS
  # taking the scheduler thread away (likely on a busy 2-core machine).
  #
  # There is one system monitor per VM: this takes it over until stop/1.
  # Reports are tagged with the phase the bench declared (phase/2).

  def start(threshold_ms) do
    parent = self()

    pid =
      spawn_link(fn ->
        :erlang.system_monitor(self(), [{:long_schedule, threshold_ms}])
        send(parent, {:collector_ready, self()})
        loop(nil, [])
      end)

    receive do
      {:collector_ready, ^pid} -> pid
    end
  end

  def phase(pid, phase), do: send(pid, {:phase, phase})

  @doc "Stops collecting; returns the reports, oldest first, as maps."
  def stop(pid) do
    ref = make_ref()
    send(pid, {:stop, self(), ref})

    receive do
      {^ref, reports} -> reports
    end
  end

  defp loop(phase, acc) do
    receive do
      {:monitor, who, :long_schedule, info} ->
        report = %{
          phase: phase,
          ms: Keyword.get(info, :timeout),
          who: who,
          in: Keyword.get(info, :in),
          out: Keyword.get(info, :out),
          name: name(who)
        }

        loop(phase, [report | acc])

      {:phase, phase} ->
        loop(phase, acc)

      {:stop, from, ref} ->
        :erlang.system_monitor(:undefined)
        send(from, {ref, Enum.reverse(acc)})
    end
  end

  # What the process was, while it still exists: a registered name, or the
  # function it was started with.
  defp name(pid) when is_pid(pid) do
    case Process.info(pid, [:registered_name, :dictionary, :initial_call]) do
      [registered_name: name, dictionary: _, initial_call: _] when is_atom(name) and name != [] ->
        inspect(name)

      [registered_name: _, dictionary: dict, initial_call: initial] ->
        case Keyword.get(dict, :"$initial_call") do
          {m, f, a} -> "#{inspect(m)}.#{f}/#{a}"
          _ -> mfa(initial)
        end

      nil ->
        "(exited)"
    end
  end

  defp name(port), do: inspect(port)

  def mfa({m, f, a}) when is_atom(m), do: "#{inspect(m)}.#{f}/#{a}"
  def mfa(other), do: inspect(other)

  @doc """
  Whether a report was scheduled in or out at a NIF call site: in
  Aion.Native, or in Aion.Engine, its only caller (a process is seldom
  scheduled out inside the NIF itself, but right after it returns). The slice
  may still have spent its time elsewhere; nothing finer is known from here.
  """
  def native?(%{in: i, out: o}), do: native_mfa?(i) or native_mfa?(o)
  defp native_mfa?({module, _, _}) when module in [Aion.Native, Aion.Engine], do: true
  defp native_mfa?(_), do: false
end

defmodule Aion.Bench.NifTimes do
  @moduledoc false
  # Times every call of a function of Aion.Native (the NIFs), in every
  # process, with call tracing: the VM timestamps the call and its return
  # (monotonic, in ns), so a duration is the NIF's own wall time on its
  # scheduler, plus the trace's own overhead (about a microsecond). Wall
  # time: a scheduler thread the OS takes away mid-call counts too.
  #
  # Keeps, per function: a count, the total, a histogram and the longest
  # calls, so that its memory stays small whatever the number of calls.
  # Takes over the VM's call tracing until stop/1.

  @buckets_us [10, 50, 100, 250, 500, 1000, 2000, 5000, 10_000]

  def start do
    parent = self()

    pid =
      spawn_link(fn ->
        :erlang.trace(:all, true, [:call, :monotonic_timestamp, {:tracer, self()}])
        :erlang.trace_pattern({Aion.Native, :_, :_}, [{:_, [], [{:return_trace}]}], [:global])
        send(parent, {:nif_tracer_ready, self()})
        loop(%{phase: nil, calls: %{}, stats: %{}})
      end)

    receive do
      {:nif_tracer_ready, ^pid} -> pid
    end
  end

  def phase(pid, phase), do: send(pid, {:phase, phase})

  @doc "Stops tracing; returns %{{function, arity} => stats}."
  def stop(pid) do
    ref = make_ref()
    send(pid, {:stop, self(), ref})

    receive do
      {^ref, stats} -> stats
    end
  end

  def buckets_us, do: @buckets_us

  defp loop(state) do
    receive do
      {:trace_ts, pid, :call, {Aion.Native, _, _}, ts} ->
        loop(%{state | calls: Map.put(state.calls, pid, ts)})

      {:trace_ts, pid, :return_from, {Aion.Native, f, a}, _result, ts} ->
        case Map.pop(state.calls, pid) do
          {nil, _} -> loop(state)
          {t0, calls} -> loop(%{state | calls: calls, stats: add(state.stats, {f, a}, ts - t0, state.phase)})
        end

      {:phase, phase} ->
        loop(%{state | phase: phase})

      {:stop, from, ref} ->
        :erlang.trace_pattern({Aion.Native, :_, :_}, false, [:global])
        :erlang.trace(:all, false, [:call])
        send(from, {ref, drain(state).stats})

      _other ->
        loop(state)
    end
  end

  # Takes the trace messages still queued.
  defp drain(state) do
    receive do
      {:trace_ts, pid, :return_from, {Aion.Native, f, a}, _result, ts} ->
        case Map.pop(state.calls, pid) do
          {nil, _} -> drain(state)
          {t0, calls} -> drain(%{state | calls: calls, stats: add(state.stats, {f, a}, ts - t0, state.phase)})
        end

      {:trace_ts, pid, :call, {Aion.Native, _, _}, ts} ->
        drain(%{state | calls: Map.put(state.calls, pid, ts)})
    after
      0 -> state
    end
  end

  defp add(stats, fun, ns, phase) do
    us = div(ns, 1000)
    bucket = Enum.find_index(@buckets_us, &(us < &1)) || length(@buckets_us)

    Map.update(stats, fun, new(ns, bucket, phase), fn s ->
      %{
        s
        | count: s.count + 1,
          phases: Map.update(s.phases, phase, 1, &(&1 + 1)),
          total_ns: s.total_ns + ns,
          hist: Map.update(s.hist, bucket, 1, &(&1 + 1)),
          top: top(s.top, {ns, phase})
      }
    end)
  end

  defp new(ns, bucket, phase), do: %{count: 1, total_ns: ns, hist: %{bucket => 1}, top: [{ns, phase}], phases: %{phase => 1}}

  # The 5 longest calls, longest first.
  defp top(list, entry), do: [entry | list] |> Enum.sort(:desc) |> Enum.take(5)

  @doc "The nearest-rank percentile `p` of a function's stats, as a bucket's upper bound in us (or \">10000\")."
  def percentile_us(%{count: count, hist: hist}, p) do
    rank = max(1, ceil(p / 100 * count))

    Enum.reduce_while(0..length(@buckets_us), 0, fn bucket, seen ->
      seen = seen + Map.get(hist, bucket, 0)
      if seen >= rank, do: {:halt, bucket_label(bucket)}, else: {:cont, seen}
    end)
  end

  defp bucket_label(bucket) do
    case Enum.at(@buckets_us, bucket) do
      nil -> ">=#{List.last(@buckets_us)} us"
      us -> "<#{us} us"
    end
  end
end

defmodule Aion.Bench do
  @moduledoc false
  # Helpers: timing, statistics, machine description, instance lifecycle.

  def now_us, do: System.monotonic_time(:microsecond)

  @doc "Runs `fun` and returns {microseconds, result}."
  @doc "Calls `check` every 5 ms until it returns true."
  def wait_until(check) do
    unless check.() do
      Process.sleep(5)
      wait_until(check)
    end
  end

  def timed(fun) do
    t0 = now_us()
    result = fun.()
    {now_us() - t0, result}
  end

  def ms(us), do: us / 1000

  def fmt_ms(us), do: :erlang.float_to_binary(ms(us), decimals: 2) <> " ms"
  def fmt_s(us), do: :erlang.float_to_binary(us / 1_000_000, decimals: 3) <> " s"
  def fmt(float, decimals \\ 1), do: :erlang.float_to_binary(float / 1, decimals: decimals)

  @doc "Nearest-rank percentile of a non-empty list of numbers."
  def percentile(values, p) do
    sorted = Enum.sort(values)
    rank = max(1, ceil(p / 100 * length(sorted)))
    Enum.at(sorted, rank - 1)
  end

  def median(values), do: percentile(values, 50)

  def env_int(name, default) do
    case System.get_env(name) do
      nil -> default
      "" -> default
      value -> String.to_integer(String.trim(value))
    end
  end

  def durability do
    case System.get_env("BENCH_DURABILITY", "full") do
      "full" -> :full
      "normal" -> :normal
      other -> raise ArgumentError, "BENCH_DURABILITY must be full or normal, got: #{inspect(other)}"
    end
  end

  @doc "Starts an Aion instance linked to the caller; raises on failure."
  def start_instance!(opts) do
    case Aion.start_link(opts) do
      {:ok, pid} -> pid
      other -> raise "cannot start Aion instance: #{inspect(other)}"
    end
  end

  @doc "Stops an instance started by start_instance!/1 and waits for it to be gone."
  def stop_instance!(pid) do
    :ok = Supervisor.stop(pid, :normal, 60_000)
  end

  @doc """
  Stops an instance that has many resident run processes of the workflow
  types `types`. Stopping it directly would make each type's
  DynamicSupervisor shut its children down in one pass that is quadratic in
  their number on Elixir 1.14 (for every child it scans a mailbox filling
  with the DOWN messages of the children already stopped): minutes for
  100,000. So the instance's reconciler is stopped first (no respawns), the
  run processes are terminated one at a time (each a run ending without an
  outcome, which the store does not see), then the instance is stopped.
  Returns the number of run processes terminated.
  """
  def stop_instance_with_runs!(pid, name, types) do
    :ok = Supervisor.terminate_child(pid, Aion.Run.Reconciler)

    terminated =
      for type <- types,
          sup = Aion.Instance.workflows_supervisor(name, type),
          {_, child, _, _} <- DynamicSupervisor.which_children(sup),
          is_pid(child),
          DynamicSupervisor.terminate_child(sup, child) == :ok,
          reduce: 0 do
        count -> count + 1
      end

    stop_instance!(pid)
    terminated
  end

  def flush_gates do
    receive do
      {:bench_gate, _, _} -> flush_gates()
    after
      0 -> :ok
    end
  end

  def await_gate!(timeout) do
    receive do
      {:bench_gate, pid, at} -> {pid, at}
    after
      timeout -> raise "the gate activity was not reached within #{timeout} ms"
    end
  end

  ## Memory

  @doc """
  Garbage-collects every process, then returns the BEAM's allocated memory
  (`:erlang.memory/0`: total, processes, ets, binary, system) and the OS
  process's resident set (VmRSS), which also counts the Rust side (engine,
  timer wheel, SQLite page cache) and memory the allocators hold but do not
  use.
  """
  def memory do
    for pid <- Process.list(), do: :erlang.garbage_collect(pid)
    # Let freed carriers go back to the OS before reading RSS.
    Process.sleep(500)
    m = :erlang.memory()
    carriers = beam_carriers()
    rss = rss_bytes()

    %{
      carriers: carriers,
      outside: rss && rss - carriers,
      total: m[:total],
      processes: m[:processes],
      ets: m[:ets],
      binary: m[:binary],
      system: m[:system],
      rss: rss,
      process_count: :erlang.system_info(:process_count)
    }
  end

  @doc """
  Bytes of the carriers (blocks of memory got from the OS) that the BEAM's
  allocators hold, used or not: what the BEAM itself weighs in RSS, near
  enough (as recon_alloc's "allocated").
  """
  def beam_carriers do
    for alloc <- :erlang.system_info(:alloc_util_allocators),
        instances = :erlang.system_info({:allocator, alloc}),
        is_list(instances),
        {:instance, _, info} <- instances,
        {kind, stats} <- info,
        kind in [:mbcs, :sbcs],
        {:carriers_size, current, _, _} <- stats,
        reduce: 0 do
      sum -> sum + current
    end
  end

  @doc "The VM's resident set size in bytes (VmRSS), or nil without /proc."
  def rss_bytes do
    with {:ok, text} <- File.read("/proc/self/status"),
         [_, kb] <- Regex.run(~r/^VmRSS:\s*(\d+)\s*kB/m, text) do
      String.to_integer(kb) * 1024
    else
      _ -> nil
    end
  end

  def fmt_mib(nil), do: "n/a"
  def fmt_mib(bytes), do: fmt(bytes / 1_048_576, 1) <> " MiB"

  @doc "One line of a memory/0 snapshot."
  def memory_line(m) do
    "RSS #{fmt_mib(m.rss)}; BEAM carriers #{fmt_mib(m.carriers)}, allocated #{fmt_mib(m.total)} (processes #{fmt_mib(m.processes)}, " <>
      "ets #{fmt_mib(m.ets)}, binary #{fmt_mib(m.binary)}); #{m.process_count} processes"
  end

  @doc "Bytes per item between two snapshots, for one key; nil if unknown."
  def per(after_, before, key, count) do
    case {after_[key], before[key]} do
      {a, b} when is_integer(a) and is_integer(b) -> (a - b) / max(count, 1)
      _ -> nil
    end
  end

  def fmt_bytes(nil), do: "n/a"
  def fmt_bytes(bytes), do: "#{round(bytes)} B"

  ## CPU accounting (Linux /proc): where the VM's CPU time goes

  @groups [
    {~r/^\d+_scheduler$/, "schedulers"},
    {~r/^\d+_dirty_cpu/, "dirty cpu"},
    {~r/^\d+_dirty_io/, "dirty io"},
    {~r/^aion-runtime/, "aion-runtime"},
    {~r/^sqlx-sqlite/, "sqlite workers"}
  ]

  @doc "Snapshot of CPU ticks: the whole OS process, and per thread."
  def cpu_snapshot do
    %{
      wall: now_us(),
      total: process_ticks("/proc/self/stat"),
      threads:
        case File.ls("/proc/self/task") do
          {:ok, tids} ->
            for tid <- tids, ticks = process_ticks("/proc/self/task/#{tid}/stat"), ticks != nil, into: %{} do
              comm = String.trim(File.read!("/proc/self/task/#{tid}/comm"))
              {tid, {comm, ticks}}
            end

          _ ->
            %{}
        end
    }
  rescue
    _ -> nil
  end

  @doc """
  The CPU used between two snapshots: wall and CPU microseconds, the latter
  split by thread group. Threads that exited in between show up as
  "exited threads". nil when /proc is not available.
  """
  def cpu_delta(nil, _after), do: nil
  def cpu_delta(_before, nil), do: nil

  def cpu_delta(before, after_) do
    tick_us = 1_000_000 / clock_ticks()
    total = (after_.total - before.total) * tick_us

    groups =
      Enum.reduce(after_.threads, %{}, fn {tid, {comm, ticks}}, acc ->
        earlier =
          case before.threads do
            %{^tid => {_, t}} -> t
            _ -> 0
          end

        Map.update(acc, group(comm), (ticks - earlier) * tick_us, &(&1 + (ticks - earlier) * tick_us))
      end)

    exited = total - Enum.sum(Map.values(groups))
    groups = if exited > 0, do: Map.put(groups, "exited threads", exited), else: groups
    %{wall: after_.wall - before.wall, total: total, groups: groups}
  end

  @doc "Adds up deltas (of several measured intervals)."
  def cpu_sum(deltas) do
    if Enum.any?(deltas, &is_nil/1) do
      nil
    else
      Enum.reduce(deltas, %{wall: 0, total: 0, groups: %{}}, fn d, acc ->
        %{
          wall: acc.wall + d.wall,
          total: acc.total + d.total,
          groups: Map.merge(acc.groups, d.groups, fn _k, a, b -> a + b end)
        }
      end)
    end
  end

  @doc "One line: cores busy (CPU time / wall time) and the split by thread group."
  def cpu_format(nil), do: "CPU: n/a (no /proc)"

  def cpu_format(%{wall: wall, total: total, groups: groups}) do
    split =
      groups
      |> Enum.reject(fn {_, us} -> us <= 0 end)
      |> Enum.sort_by(fn {_, us} -> -us end)
      |> Enum.map_join(", ", fn {name, us} -> "#{name} #{fmt(us / 1_000_000, 2)} s" end)

    "CPU: #{fmt(total / 1_000_000, 2)} s in #{fmt(wall / 1_000_000, 2)} s wall = " <>
      "#{fmt(total / max(wall, 1), 2)} cores busy (#{split}; #{div(1000, clock_ticks())} ms ticks)"
  end

  def cpu_report(before, after_), do: cpu_format(cpu_delta(before, after_))

  @doc """
  How many times the OS took a core away from the VM's normal scheduler
  threads (their involuntary context switches, summed), or nil without
  /proc. A scheduler thread preempted in the middle of a NIF call or of a
  process's time slice makes that call or slice last longer in wall time.
  """
  def scheduler_preemptions do
    case File.ls("/proc/self/task") do
      {:ok, tids} ->
        for tid <- tids,
            {:ok, comm} <- [File.read("/proc/self/task/#{tid}/comm")],
            Regex.match?(~r/^\d+_scheduler$/, String.trim(comm)),
            {:ok, status} <- [File.read("/proc/self/task/#{tid}/status")],
            [_, count] <- [Regex.run(~r/^nonvoluntary_ctxt_switches:\s*(\d+)/m, status)],
            reduce: 0 do
          sum -> sum + String.to_integer(count)
        end

      _ ->
        nil
    end
  end

  defp group(comm) do
    Enum.find_value(@groups, "other", fn {regex, name} -> if Regex.match?(regex, comm), do: name end)
  end

  # utime + stime of a /proc stat file, in clock ticks.
  defp process_ticks(path) do
    case File.read(path) do
      {:ok, stat} ->
        # Fields after the command name (which may contain spaces) ")".
        [_, rest] = String.split(stat, ") ", parts: 2)
        fields = String.split(rest)
        String.to_integer(Enum.at(fields, 11)) + String.to_integer(Enum.at(fields, 12))

      _ ->
        nil
    end
  end

  defp clock_ticks do
    case :persistent_term.get({__MODULE__, :clk_tck}, nil) do
      nil ->
        ticks =
          case System.find_executable("getconf") && System.cmd("getconf", ["CLK_TCK"]) do
            {out, 0} -> String.to_integer(String.trim(out))
            _ -> 100
          end

        :persistent_term.put({__MODULE__, :clk_tck}, ticks)
        ticks

      ticks ->
        ticks
    end
  end

  ## Machine description

  def machine do
    [
      {"nproc", cmd("nproc", [])},
      {"schedulers online", Integer.to_string(System.schedulers_online())},
      {"cpu", cpu_model()},
      {"memory", mem_total()},
      {"kernel", cmd("uname", ["-r"])},
      {"OTP", otp_version()},
      {"Elixir", System.version()},
      # glibc's malloc (the Rust side's allocator) keeps per-thread arenas;
      # how many changes the RSS the sleepers benchmark sees.
      {"MALLOC_ARENA_MAX", System.get_env("MALLOC_ARENA_MAX") || "unset (glibc default, 8 per core)"}
    ]
  end

  def filesystem(dir) do
    case System.cmd("df", ["-T", dir], stderr_to_stdout: true) do
      {out, 0} ->
        case String.split(out, "\n", trim: true) do
          [_header, line | _] ->
            case String.split(line) do
              [device, type | _] -> "#{type} (#{device})"
              _ -> String.trim(line)
            end

          _ ->
            String.trim(out)
        end

      {out, _} ->
        "unknown (df -T: #{String.trim(out)})"
    end
  end

  defp cmd(command, args) do
    case System.find_executable(command) && System.cmd(command, args, stderr_to_stdout: true) do
      {out, 0} -> String.trim(out)
      _ -> "unknown"
    end
  end

  defp cpu_model do
    with {:ok, text} <- File.read("/proc/cpuinfo"),
         [_, model] <- Regex.run(~r/^model name\s*:\s*(.+)$/m, text) do
      String.trim(model)
    else
      _ -> "unknown"
    end
  end

  defp mem_total do
    with {:ok, text} <- File.read("/proc/meminfo"),
         [_, kb] <- Regex.run(~r/^MemTotal:\s*(\d+)\s*kB/m, text) do
      "#{fmt(String.to_integer(kb) / 1024 / 1024, 1)} GiB"
    else
      _ -> "unknown"
    end
  end

  defp otp_version do
    release = List.to_string(:erlang.system_info(:otp_release))
    path = Path.join([List.to_string(:code.root_dir()), "releases", release, "OTP_VERSION"])

    full =
      case File.read(path) do
        {:ok, version} -> String.trim(version)
        _ -> release
      end

    "#{full} (erts #{List.to_string(:erlang.system_info(:version))})"
  end
end
