# The engine side of the retry crash tests, run in its own BEAM by
# Aion.Test.ChildVM:   elixir -pa <aion ebin> retry_child.exs MODE DB ARG
#
#   backoff  starts "retry-1", whose activity (Aion.Test.Flaky.logged,
#            appending each attempt's start time to file ARG) fails its first
#            attempt and backs off 3 s; prints "BACKOFF <retry_at ms>" once
#            the backoff is durable, then waits to be killed.
#   deadline starts "deadline-1", whose activity hangs under a 3 s
#            schedule_to_close (ARG "-"), or a 1 s start_to_close or
#            heartbeat_timeout (ARG "start_to_close", "heartbeat"); prints
#            "SCHEDULED" once it is scheduled, then waits to be killed.
#   resume   restarts on DB, prints "RESUMED <ms>", awaits workflow ARG and
#            prints "RESULT <term>".
[mode, db, arg] = System.argv()

{:ok, _} = Application.ensure_all_started(:aion)
{:ok, _} = Aion.start_link(name: :retry, store: {:sqlite, db}, workflows: [Aion.Test.Retrying])

wait_for = fn id, check ->
  Enum.find_value(Stream.repeatedly(fn -> Process.sleep(10) end), fn _ ->
    {:ok, %{pending: pending}} = Aion.describe(:retry, id)
    check.(pending)
  end)
end

case mode do
  "backoff" ->
    input = %{function: :logged, args: [arg], opts: [retry: [initial_interval: 3_000, max_attempts: 3]]}
    {:ok, id} = Aion.start_workflow(:retry, Aion.Test.Retrying, input, id: "retry-1")
    retry_at = wait_for.(id, fn pending -> Enum.find_value(pending, & &1[:retry_at]) end)
    IO.puts("BACKOFF #{DateTime.to_unix(retry_at, :millisecond)}")
    Process.sleep(:infinity)

  "deadline" ->
    # ARG: which timeout the hanging activity has.
    opts =
      case arg do
        "-" -> [schedule_to_close: 3_000]
        "start_to_close" -> [start_to_close: 1_000]
        "heartbeat" -> [heartbeat_timeout: 1_000]
      end

    input = %{function: :hang, args: [], opts: opts}
    {:ok, id} = Aion.start_workflow(:retry, Aion.Test.Retrying, input, id: "deadline-1")
    wait_for.(id, fn pending -> pending != [] end)
    IO.puts("SCHEDULED")
    Process.sleep(:infinity)

  "resume" ->
    IO.puts("RESUMED #{System.os_time(:millisecond)}")
    IO.puts("RESULT #{inspect(Aion.await(:retry, arg, 20_000))}")
    System.halt(0)
end
