defmodule Aion.ConfigTest do
  use ExUnit.Case, async: true
  doctest Aion.Config

  test "sqlite paths are expanded and workflow types indexed" do
    {:ok, config} = Aion.Config.validate(name: :x, store: {:sqlite, "rel/aion.db"}, workflows: [Aion.Test.Sequence, Aion.Test.Gated])
    assert config.store == {:sqlite, Path.expand("rel/aion.db")}
    assert config.types == %{"Aion.Test.Sequence" => Aion.Test.Sequence, "test.gated" => Aion.Test.Gated}
  end

  test "two workflows may not share a type name" do
    assert {:error, %Aion.Error{message: message}} =
             Aion.Config.validate(store: :memory, workflows: [Aion.Test.Gated, Aion.Test.GatedChanged])

    assert message =~ ~s(both use the workflow type "test.gated")
  end
end
