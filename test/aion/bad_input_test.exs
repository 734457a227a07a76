defmodule Aion.BadInputTest do
  use Aion.Case, async: true

  alias Aion.Test.Sequence

  @moduletag :tmp_dir

  # Aion.start_link links to the caller: trap the exit a failed start sends.
  defp start_link_error(opts) do
    Process.flag(:trap_exit, true)
    assert {:error, %Aion.Error{} = error} = Aion.start_link(Keyword.put_new(opts, :name, make_ref()))
    error
  end

  describe "starting an instance" do
    test "on a file that is not a database fails clearly and leaves the file alone", %{tmp_dir: dir} do
      path = Path.join(dir, "orders.db")
      garbage = :binary.copy("definitely not sqlite\n", 500)
      File.write!(path, garbage)

      error = start_link_error(store: {:sqlite, path}, workflows: [Sequence])
      assert error.reason == :store_open_failed
      assert error.message =~ path
      assert error.message =~ "not a SQLite database"
      assert File.read!(path) == garbage
    end

    test "in a missing directory fails clearly and creates nothing", %{tmp_dir: dir} do
      missing = Path.join(dir, "no/such/dir")
      error = start_link_error(store: {:sqlite, Path.join(missing, "aion.db")})
      assert error.reason == :store_open_failed
      assert error.message =~ "the directory #{missing} does not exist"
      refute File.exists?(Path.join(dir, "no"))
    end

    test "on a store another instance uses fails, and the first keeps working", %{tmp_dir: dir} do
      path = Path.join(dir, "aion.db")
      first = start_instance(store: {:sqlite, path}, workflows: [Sequence])
      error = start_link_error(store: {:sqlite, path}, workflows: [Sequence])
      assert error.reason == :store_in_use
      assert error.message =~ "in use by another Aion engine"

      {:ok, id} = Aion.start_workflow(first, Sequence, %{n: 1})
      assert {:ok, %{result: 3}} = Aion.await(first, id)
    end

    test "on a store another instance uses through a symlink or a hard link fails", %{tmp_dir: dir} do
      path = Path.join(dir, "aion.db")
      first = start_instance(store: {:sqlite, path}, workflows: [Sequence])
      symlink = Path.join(dir, "symlink.db")
      hard_link = Path.join(dir, "hard-link.db")
      :ok = File.ln_s(path, symlink)
      :ok = File.ln(path, hard_link)

      for other <- [symlink, hard_link] do
        error = start_link_error(store: {:sqlite, other}, workflows: [Sequence])
        assert error.reason == :store_in_use, error.message
      end

      {:ok, id} = Aion.start_workflow(first, Sequence, %{n: 1})
      assert {:ok, %{result: 3}} = Aion.await(first, id)
    end

    test "with invalid options names the option" do
      assert start_link_error([]).message == "Aion: the :store option is required (:memory or {:sqlite, path})"
      assert start_link_error(store: :memory, durability: :eventual).message =~ "expected :durability to be :full or :normal"
      assert start_link_error(store: :memory, workflows: [String]).message =~ "expected :workflows to list modules that `use Aion.Workflow`, got: String"
      assert start_link_error(store: {:sqlite, ""}).reason == :invalid_option
    end
  end

  describe "starting a workflow" do
    setup %{tmp_dir: dir} do
      %{aion: start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Sequence])}
    end

    test "of a module the instance does not run is refused", %{aion: aion} do
      assert {:error, %Aion.Error{reason: :unknown_workflow, message: message}} =
               Aion.start_workflow(aion, Aion.Test.Returns, :x, id: "w")

      assert message =~ "Aion.Test.Returns is not a workflow of instance"
      assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "w")
      assert {:error, %Aion.Error{reason: :unknown_workflow}} = Aion.start_workflow(aion, :not_a_module, :x)
    end

    test "with input that cannot be stored is refused and records nothing", %{aion: aion} do
      for {input, kind, path} <- [
            {self(), "pid", "the top level"},
            {%{callback: fn -> :ok end}, "function", ":callback"},
            {[order: %Aion.Error{details: %{ref: make_ref()}}], "reference", "0 -> 1 -> :details -> :ref"}
          ] do
        assert {:error, %Aion.Error{reason: :unserializable, message: message}} =
                 Aion.start_workflow(aion, Sequence, input, id: "bad")

        assert message =~ "Aion.start_workflow: the input cannot be stored: it holds a #{kind} (at #{path})"
        assert {:error, %Aion.Error{reason: :not_found}} = Aion.describe(aion, "bad")
      end
    end

    test "with an invalid id is refused", %{aion: aion} do
      assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.start_workflow(aion, Sequence, 1, id: "")
      assert {:error, %Aion.Error{reason: :invalid_option}} = Aion.start_workflow(aion, Sequence, 1, id: :atom)

      assert {:error, %Aion.Error{reason: :invalid_workflow_id, message: message}} =
               Aion.start_workflow(aion, Sequence, 1, id: String.duplicate("x", 300))

      assert message =~ "255"
    end
  end

  describe "workflow ids, timeouts and durations" do
    setup %{tmp_dir: dir} do
      %{aion: start_instance(store: {:sqlite, Path.join(dir, "aion.db")}, workflows: [Sequence, Aion.Test.Sleeper, Aion.Test.ActivityResults])}
    end

    test "an id that is not UTF-8 is a clear error everywhere", %{aion: aion} do
      bad = <<0xFF, 0xFE>>
      assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.start_workflow(aion, Sequence, 1, id: bad)
      assert {:error, %Aion.Error{reason: :invalid_workflow_id, message: message}} = Aion.await(aion, bad)
      assert message =~ "Aion.await: expected a workflow id (a UTF-8 string)"
      assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.describe(aion, bad)
      assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.history(aion, bad)
      assert {:error, %Aion.Error{reason: :invalid_workflow_id}} = Aion.describe(aion, :not_a_string)
    end

    test "a negative await timeout is a clear error", %{aion: aion} do
      {:ok, id} = Aion.start_workflow(aion, Sequence, %{n: 1})
      assert {:error, %Aion.Error{reason: :invalid_option, message: message}} = Aion.await(aion, id, -1)
      assert message =~ "expected the timeout to be a non-negative integer or :infinity, got: -1"
    end

    test "a sleep beyond 100 years fails the workflow with a clear error; describe and history still work",
         %{aion: aion} do
      for ms <- [Integer.pow(2, 62), Integer.pow(2, 64)] do
        {:ok, id} = Aion.start_workflow(aion, Aion.Test.Sleeper, ms)
        assert {:error, %Aion.Error{reason: :workflow_raised, message: message}} = Aion.await(aion, id)
        assert message =~ "expected sleep/1 to get an integer from 0 to"
        assert {:ok, %{status: :failed}} = Aion.describe(aion, id)
        assert {:ok, _} = Aion.history(aion, id)
      end
    end

    test "a large input is stored once: the store grows by about its size", %{tmp_dir: dir} do
      db = Path.join(dir, "big.db")
      aion = start_instance(store: {:sqlite, db}, workflows: [Aion.Test.Measures])
      input = :crypto.strong_rand_bytes(20_000_000)
      {:ok, id} = Aion.start_workflow(aion, Aion.Test.Measures, input)
      assert {:ok, 20_000_000} = Aion.await(aion, id, 30_000)

      on_disk = for file <- Path.wildcard(db <> "*"), reduce: 0, do: (total -> total + File.stat!(file).size)
      assert on_disk < 26_000_000, "#{on_disk} bytes on disk for a 20,000,000-byte input"
    end

    test "history of a workflow with a map of more than 128 keys", %{aion: aion} do
      input = Map.new(1..500, &{"field-#{&1}", &1})
      {:ok, id} = Aion.start_workflow(aion, Aion.Test.ActivityResults, {:big_map, [300], []})
      assert {:ok, {:ok, result}} = Aion.await(aion, id)
      assert map_size(result) == 300
      {:ok, events} = Aion.history(aion, id)
      assert %{type: :activity_completed, result: ^result} = Enum.find(events, &(&1.type == :activity_completed))
      assert List.last(events).result == {:ok, result}

      # (Sequence fails on this input; its history is what matters here.)
      {:ok, started} = Aion.start_workflow(aion, Sequence, input)
      {:ok, [%{type: :workflow_started, input: ^input} | _]} = Aion.history(aion, started)
    end
  end
end
