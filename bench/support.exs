defmodule Aion.Bench.Activities do
  @moduledoc false
  # Activities of the benchmark workflows.

  @doc "A no-op activity: returns its argument at once."
  def noop(x), do: {:ok, x}

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

defmodule Aion.Bench do
  @moduledoc false
  # Helpers: timing, statistics, machine description, instance lifecycle.

  def now_us, do: System.monotonic_time(:microsecond)

  @doc "Runs `fun` and returns {microseconds, result}."
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
      {"Elixir", System.version()}
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
