defmodule Aion.Client.ListTest do
  # Aion.list/3 and Aion.count/2 over 10,000 workflows of three types, three
  # statuses and mixed search attributes, through the real NIF and an SQLite
  # file: each filter and combinations of them return exactly the workflows
  # the test started (computed here from what it started), page by page,
  # newest first, stable while workflows start between pages.
  use Aion.Case, async: true

  alias Aion.Test.Visibility.{Alpha, Beta, Gamma}

  @moduletag :tmp_dir
  @moduletag timeout: 300_000

  @types [Alpha, Beta, Gamma]
  @type_names %{
    Alpha => "Aion.Test.Visibility.Alpha",
    Beta => "visibility-beta",
    Gamma => "Aion.Test.Visibility.Gamma"
  }
  @base ~U[2030-01-01 00:00:00.000000Z]
  @n 10_000

  # What workflow `i` is: its type, how it ends, its search attributes.
  defp spec(i) do
    module = Enum.at(@types, rem(i, 3))

    {outcome, status} =
      case rem(i, 7) do
        r when r < 4 -> {:complete, :completed}
        r when r < 6 -> {:fail, :failed}
        _ -> {:sleep, :running}
      end

    attributes =
      if rem(i, 11) == 0 do
        %{}
      else
        %{
          "tier" => Enum.at(~w(gold silver silver bronze bronze), rem(i, 5)),
          "amount" => rem(i * 37, 1000),
          "score" => i / @n,
          "vip" => rem(i, 4) == 0,
          "due" => DateTime.add(@base, i, :second)
        }
      end

    %{
      i: i,
      id: "wf-" <> String.pad_leading(Integer.to_string(i), 5, "0"),
      module: module,
      type: @type_names[module],
      outcome: outcome,
      status: status,
      attributes: attributes
    }
  end

  defp start_all(aion, specs) do
    specs
    |> Task.async_stream(
      fn spec ->
        {:ok, _} =
          Aion.start_workflow(aion, spec.module, spec.outcome,
            id: spec.id,
            search_attributes: spec.attributes
          )
      end,
      max_concurrency: 32,
      timeout: 60_000
    )
    |> Stream.run()

    specs
    |> Enum.reject(&(&1.status == :running))
    |> Task.async_stream(fn spec -> Aion.await(aion, spec.id, 60_000) end,
      max_concurrency: 32,
      timeout: 70_000
    )
    |> Stream.run()
  end

  # Walks every page of `filter`.
  defp walk(aion, filter, limit, cursor \\ nil, acc \\ []) do
    assert {:ok, %{workflows: rows, cursor: next}} =
             Aion.list(aion, filter, limit: limit, cursor: cursor)

    assert length(rows) <= limit
    acc = acc ++ rows
    if next, do: walk(aion, filter, limit, next, acc), else: acc
  end

  defp ids(specs, pred), do: specs |> Enum.filter(pred) |> MapSet.new(& &1.id)

  defp check(aion, filter, expected, limit \\ 1_000) do
    rows = walk(aion, filter, limit)
    got = Enum.map(rows, & &1.workflow_id)
    assert length(got) == length(Enum.uniq(got)), "#{inspect(filter)}: a workflow is listed twice"
    got = MapSet.new(got)
    missing = MapSet.difference(expected, got)
    extra = MapSet.difference(got, expected)

    assert {MapSet.size(missing), MapSet.size(extra)} == {0, 0},
           "#{inspect(filter)}: missing #{inspect(Enum.take(missing, 5))}..., extra #{inspect(Enum.take(extra, 5))}..."

    assert newest_first?(rows), "#{inspect(filter)}: not newest first"
    assert Aion.count(aion, filter) == {:ok, MapSet.size(expected)}, "#{inspect(filter)}: count"
    rows
  end

  defp newest_first?(rows) do
    rows
    |> Enum.chunk_every(2, 1, :discard)
    |> Enum.all?(fn [a, b] ->
      case DateTime.compare(a.started_at, b.started_at) do
        :gt -> true
        :eq -> a.workflow_id > b.workflow_id
        :lt -> false
      end
    end)
  end

  defp attr(spec, name), do: Map.get(spec.attributes, name)

  # Whether the workflow has attribute `name` and its value passes `pass`.
  defp has(spec, name, pass) do
    case attr(spec, name) do
      nil -> false
      value -> pass.(value)
    end
  end

  test "10,000 workflows: every filter and combination, page by page, with count", %{tmp_dir: dir} do
    aion =
      start_instance(
        store: {:sqlite, Path.join(dir, "aion.db")},
        durability: :normal,
        workflows: @types
      )

    specs = Enum.map(0..(@n - 1), &spec/1)
    {first, second} = Enum.split(specs, div(@n, 2))

    # Two batches with an instant between them: every run of the first
    # started and ended before it, every run of the second started after.
    start_all(aion, first)
    boundary = DateTime.utc_now()
    Process.sleep(2)
    start_all(aion, second)
    first_ids = MapSet.new(first, & &1.id)
    in_first? = &MapSet.member?(first_ids, &1.id)

    # Everything, in pages of 1,000; each row as it was started.
    all = check(aion, [], ids(specs, fn _ -> true end))
    assert length(all) == @n
    by_id = Map.new(specs, &{&1.id, &1})

    for row <- all do
      spec = by_id[row.workflow_id]

      assert {row.workflow_type, row.status, row.search_attributes} ==
               {spec.type, spec.status, spec.attributes}

      assert is_binary(row.run_id)
      assert %DateTime{} = row.started_at
      assert row.closed_at == nil or row.status != :running
    end

    due = fn spec, op, at -> has(spec, "due", &(DateTime.compare(&1, at) in op)) end

    cases = [
      {[type: Alpha], &(&1.module == Alpha)},
      {[type: "visibility-beta"], &(&1.module == Beta)},
      {%{type: Gamma}, &(&1.module == Gamma)},
      {[status: :running], &(&1.status == :running)},
      {[status: :completed], &(&1.status == :completed)},
      {[status: [:completed, :failed]], &(&1.status in [:completed, :failed])},
      {[status: :cancelled], fn _ -> false end},
      {[started_before: boundary], in_first?},
      {[started_after: boundary], &(not in_first?.(&1))},
      {[closed_before: boundary], &(in_first?.(&1) and &1.status != :running)},
      {[closed_after: boundary], &(not in_first?.(&1) and &1.status != :running)},
      {[search: %{"tier" => "gold"}], &(attr(&1, "tier") == "gold")},
      {[search: %{tier: {:==, "bronze"}}], &(attr(&1, "tier") == "bronze")},
      {[search: %{"amount" => {:>=, 500}}], &has(&1, "amount", fn a -> a >= 500 end)},
      {[search: %{"amount" => {:between, 100, 200}}],
       &has(&1, "amount", fn a -> a >= 100 and a <= 200 end)},
      {[search: %{"amount" => 37}], &(attr(&1, "amount") == 37)},
      {[search: %{"score" => {:<, 0.25}}], &has(&1, "score", fn s -> s < 0.25 end)},
      # An integer compared with a float attribute.
      {[search: %{"score" => {:>, 0}}], &has(&1, "score", fn s -> s > 0 end)},
      {[search: %{"vip" => true}], &(attr(&1, "vip") == true)},
      {[search: %{"vip" => false}], &(attr(&1, "vip") == false)},
      {[search: %{"due" => {:>=, DateTime.add(@base, 5_000, :second)}}],
       &due.(&1, [:gt, :eq], DateTime.add(@base, 5_000, :second))},
      {[search: %{"nope" => "x"}], fn _ -> false end},
      # Combinations.
      {[type: Alpha, status: :running, search: %{"amount" => {:>=, 500}}],
       &(&1.module == Alpha and &1.status == :running and has(&1, "amount", fn a -> a >= 500 end))},
      {[status: [:completed, :failed], started_after: boundary, search: %{"tier" => "gold"}],
       &(&1.status != :running and not in_first?.(&1) and attr(&1, "tier") == "gold")},
      {[
         type: "visibility-beta",
         closed_before: boundary,
         search: %{"vip" => true, "score" => {:between, 0.1, 0.3}}
       ],
       &(&1.module == Beta and in_first?.(&1) and &1.status != :running and
           attr(&1, "vip") == true and
           has(&1, "score", fn s -> s >= 0.1 and s <= 0.3 end))},
      {[
         status: :failed,
         search: %{
           "due" => {:<, DateTime.add(@base, 2_500, :second)},
           "amount" => {:between, 100, 200}
         }
       ],
       &(&1.status == :failed and due.(&1, [:lt], DateTime.add(@base, 2_500, :second)) and
           has(&1, "amount", fn a -> a >= 100 and a <= 200 end))}
    ]

    for {filter, pred} <- cases do
      expected = ids(specs, pred)
      check(aion, filter, expected)
    end

    # Small pages.
    filter = [
      type: Gamma,
      status: [:running, :failed],
      started_before: boundary,
      search: %{"amount" => {:<, 300}}
    ]

    expected =
      ids(
        specs,
        &(&1.module == Gamma and &1.status in [:running, :failed] and in_first?.(&1) and
            has(&1, "amount", fn a -> a < 300 end))
      )

    assert MapSet.size(expected) > 50
    check(aion, filter, expected, 7)

    # Workflows started between two pages do not disturb the walk.
    running = ids(specs, &(&1.status == :running))

    assert {:ok, %{workflows: page, cursor: cursor}} =
             Aion.list(aion, [status: :running], limit: 250)

    assert cursor

    for i <- 1..30 do
      {:ok, _} =
        Aion.start_workflow(aion, Alpha, :sleep,
          id: "late-#{i}",
          search_attributes: %{"tier" => "gold"}
        )
    end

    rest = walk(aion, [status: :running], 250, cursor)
    walked = Enum.map(page ++ rest, & &1.workflow_id)
    assert length(walked) == length(Enum.uniq(walked))
    assert MapSet.new(walked) == running
    assert Aion.count(aion, status: :running) == {:ok, MapSet.size(running) + 30}

    assert {:ok, %{workflows: [%{workflow_id: "late-" <> _} | _]}} =
             Aion.list(aion, status: :running)
  end
end

defmodule Aion.Client.ListErrorsTest do
  # Bad filters and options of Aion.list/3 and Aion.count/2 are clear errors.
  use Aion.Case, async: true

  alias Aion.Test.Visibility.Alpha

  @moduletag :tmp_dir

  test "bad filters are :invalid_filter errors that say what is wrong", %{tmp_dir: dir} do
    aion = start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Alpha])

    {:ok, _} =
      Aion.start_workflow(aion, Alpha, :sleep,
        search_attributes: %{"amount" => 5, "tier" => "gold"}
      )

    cases = [
      {[nope: 1], "unknown filter key :nope"},
      {[status: :sleeping], "unknown status :sleeping"},
      {[status: []], "expected :status"},
      {[status: :running, status: :failed], "given twice"},
      {[type: String], "not a workflow module"},
      {[type: 42], "expected :type"},
      {[started_after: "yesterday"], "expected :started_after to be a DateTime"},
      {[closed_before: 0], "expected :closed_before to be a DateTime"},
      {[search: [amount: 1]], "expected :search to be a map"},
      {[search: %{"amount" => %{}}], ~s(search attribute "amount": expected a string)},
      {[search: %{"amount" => {:~>, 1}}], "{op, value}"},
      {[search: %{"" => 1}], "non-empty string"},
      {"status", "expected the filter to be a keyword list or a map"},
      {[:running], "expected the filter to be a keyword list or a map"},
      # Against the kinds the store fixed.
      {[search: %{"amount" => "5"}], ~s("amount" holds int values)},
      {[search: %{"amount" => {:>=, 1.5}}], ~s("amount" holds int values)},
      {[search: %{"tier" => {:>, "a"}}], "ranges compare numbers and times only"},
      {[search: %{"n" => {:between, 1, "z"}}], "between compares"}
    ]

    for {filter, fragment} <- cases do
      for call <- [&Aion.list(aion, &1), &Aion.count(aion, &1)] do
        assert {:error, %Aion.Error{reason: :invalid_filter, message: message}} = call.(filter)
        assert message =~ fragment, "#{inspect(filter)}: #{message}"
      end
    end

    for {opts, fragment} <- [
          {[limit: 0], ":limit"},
          {[limit: 1_001], ":limit"},
          {[limit: "10"], ":limit"},
          {[cursor: "bogus"], ":cursor"},
          {[cursor: 5], ":cursor"},
          {[sort: :asc], "unknown option :sort"}
        ] do
      assert {:error, %Aion.Error{reason: :invalid_option, message: message}} =
               Aion.list(aion, [], opts)

      assert message =~ fragment
    end

    # What works: a filter as a map, an integer compared with an int.
    assert {:ok, %{workflows: [%{search_attributes: %{"amount" => 5}}], cursor: nil}} =
             Aion.list(aion, %{search: %{"amount" => {:<=, 5}}, status: :running})

    assert {:ok, 0} = Aion.count(aion, search: %{"amount" => {:>, 5}})
  end
end
