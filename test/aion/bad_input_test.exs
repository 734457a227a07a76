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
end
