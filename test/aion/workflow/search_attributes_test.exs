defmodule Aion.Workflow.SearchAttributesTest do
  # Search attributes through the real NIF and SQLite files: set at start,
  # upserted by workflow code (recorded once, replayed without recording),
  # and each name's kind fixed per store: a mismatch is a clear error at
  # start (nothing starts) and in upsert_search_attributes/1 (ArgumentError,
  # nothing recorded).
  use Aion.Case, async: true

  alias Aion.Test.Visibility.{Alpha, Upserter}

  @moduletag :tmp_dir

  defp instance(dir),
    do: start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Alpha, Upserter])

  test "attributes at start: shown by describe and list, kinds fixed, a mismatch starts nothing",
       %{tmp_dir: dir} do
    aion = instance(dir)
    due = ~U[2031-02-03 04:05:06.123456Z]
    attributes = %{"amount" => 1, :region => "eu", "due" => due, "vip" => false, "ratio" => 0.5}
    {:ok, "a"} = Aion.start_workflow(aion, Alpha, :sleep, id: "a", search_attributes: attributes)

    expected = %{"amount" => 1, "region" => "eu", "due" => due, "vip" => false, "ratio" => 0.5}
    assert {:ok, %{search_attributes: ^expected}} = Aion.describe(aion, "a")

    assert {:ok, %{workflows: [%{workflow_id: "a", search_attributes: ^expected}]}} =
             Aion.list(aion, search: %{"due" => due})

    {:ok, events} = Aion.history(aion, "a")
    assert %{search_attributes: ^expected} = hd(events)

    # Another kind for a name: refused, nothing started, by either start.
    assert {:error, %Aion.Error{reason: :invalid_search_attribute, message: message}} =
             Aion.start_workflow(aion, Alpha, :sleep,
               id: "b",
               search_attributes: %{"amount" => "1"}
             )

    assert message =~ ~s("amount") and message =~ "int" and message =~ "text"
    assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "b")

    assert {:error, %Aion.Error{reason: :invalid_search_attribute}} =
             Aion.signal_with_start(aion, Alpha, :sleep, :go, 1,
               id: "b",
               search_attributes: %{"vip" => 1}
             )

    assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "b")

    # Values of no storable kind, and bad names.
    for {bad, fragment} <- [
          {%{"x" => {:a, 1}},
           ~s(search attribute "x": expected a string, an integer, a float, a boolean or a DateTime)},
          {%{"x" => nil}, ~s("x")},
          {%{"x" => <<255>>}, ~s("x")},
          {%{"x" => Bitwise.bsl(1, 64)}, ~s("x")},
          {%{"" => 1}, "non-empty string"},
          {%{1 => 1}, "search attribute name"},
          {%{:x => 1, "x" => 2}, "given twice"}
        ] do
      assert {:error, %Aion.Error{reason: :invalid_search_attribute, message: message}} =
               Aion.start_workflow(aion, Alpha, :sleep, id: "c", search_attributes: bad)

      assert message =~ "Aion.start_workflow" and message =~ fragment, message
    end

    assert {:error, %Aion.Error{reason: :invalid_option, message: message}} =
             Aion.start_workflow(aion, Alpha, :sleep, id: "c", search_attributes: [x: 1])

    assert message =~ ":search_attributes"
    assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "c")

    # The kinds belong to the store: they hold after a restart.
    stop_instance(aion)
    aion = instance(dir)

    assert {:error, %Aion.Error{reason: :invalid_search_attribute}} =
             Aion.start_workflow(aion, Alpha, :complete,
               id: "d",
               search_attributes: %{"ratio" => 1}
             )

    assert {:ok, "d"} =
             Aion.start_workflow(aion, Alpha, :complete,
               id: "d",
               search_attributes: %{"ratio" => 1.0}
             )
  end

  test "upserts are recorded once, replayed without recording, and a kind mismatch raises before recording",
       %{
         tmp_dir: dir
       } do
    aion = instance(dir)

    input = %{first: %{"stage" => "one", "n" => 1}, wait: true, second: %{"n" => "not a number"}}

    {:ok, "u"} =
      Aion.start_workflow(aion, Upserter, input,
        id: "u",
        search_attributes: %{"stage" => "zero", "owner" => "ada"}
      )

    upserted = %{"stage" => "one", "n" => 1, "owner" => "ada"}
    assert eventually(fn -> Aion.count(aion, search: %{"stage" => "one"}) == {:ok, 1} end)
    assert {:ok, %{search_attributes: ^upserted}} = Aion.describe(aion, "u")

    # The run replays its upsert after a restart, recording nothing again.
    stop_instance(aion)
    aion = instance(dir)
    await_recovery(aion)
    :ok = Aion.signal(aion, "u", :next, nil)
    assert {:ok, {:refused, message}} = Aion.await(aion, "u", 5_000)
    assert message =~ "upsert_search_attributes/1" and message =~ ~s("n") and message =~ "int"

    assert Enum.count(event_types(aion, "u"), &(&1 == :search_attributes_updated)) == 1
    assert {:ok, %{status: :completed, search_attributes: ^upserted}} = Aion.describe(aion, "u")

    assert {:ok,
            %{workflows: [%{workflow_id: "u", status: :completed, search_attributes: ^upserted}]}} =
             Aion.list(aion, type: Upserter, search: %{"n" => 1, "owner" => "ada"})

    # A value of no storable kind raises too, and an empty map records nothing.
    {:ok, "v"} =
      Aion.start_workflow(aion, Upserter, %{first: %{}, second: %{"when" => {:tomorrow}}}, id: "v")

    assert {:ok, {:refused, message}} = Aion.await(aion, "v", 5_000)
    assert message =~ ~s(search attribute "when": expected)
    refute :search_attributes_updated in event_types(aion, "v")
  end
end
