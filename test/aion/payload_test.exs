defmodule Aion.PayloadTest do
  use ExUnit.Case, async: true
  doctest Aion.Payload

  test "terms without pids, refs, ports or funs round-trip exactly" do
    for term <- [
          :atom,
          {1, 2.5, "bin", <<0, 255>>},
          [a: 1, b: [c: {:d}]],
          %{%{nested: :key} => [1 | 2]},
          %Aion.Error{reason: :x, message: "m"},
          ~U[2026-11-21 10:00:00.123456Z],
          Enum.to_list(1..1000)
        ] do
      assert term |> Aion.Payload.encode!() |> Aion.Payload.decode() === term
    end
  end

  test "the path to what cannot be stored is reported, in improper lists and map keys too" do
    assert {:error, %{details: %{kind: :port, path: [1]}}} = Aion.Payload.encode([:ok | Port.list() |> hd()])
    me = self()
    assert {:error, %{details: %{kind: :pid, path: [{:key, {:k, ^me}}, 1]}}} = Aion.Payload.encode(%{{:k, me} => 1})
  end
end
