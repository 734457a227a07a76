defmodule Aion.AsDependencyTest do
  # A fresh Mix project that depends on Aion by path compiles the NIF and runs
  # a workflow: Aion works where its users live.
  use ExUnit.Case, async: true

  @moduletag :tmp_dir
  @moduletag timeout: 600_000

  test "a fresh Mix project with {:aion, path: ...} compiles the NIF and runs a workflow", %{tmp_dir: dir} do
    aion_root = Path.expand("../..", __DIR__)
    project = Path.join(dir, "shop")
    File.mkdir_p!(Path.join(project, "lib"))

    File.write!(Path.join(project, "mix.exs"), """
    defmodule Shop.MixProject do
      use Mix.Project

      def project do
        [app: :shop, version: "0.1.0", elixir: "~> 1.14", deps: [{:aion, path: #{inspect(aion_root)}}]]
      end

      def application, do: [extra_applications: [:logger]]
    end
    """)

    File.write!(Path.join(project, "lib/shop.ex"), """
    defmodule Shop.Stock do
      def reserve(sku, qty), do: {:ok, "\#{qty}x\#{sku}"}
    end

    defmodule Shop.Checkout do
      use Aion.Workflow

      @impl true
      def run(%{sku: sku}) do
        {:ok, hold} = activity(Shop.Stock, :reserve, [sku, 2])
        :ok = sleep(5)
        {:ok, {:reserved, hold}}
      end
    end
    """)

    script = """
    {:ok, _} = Aion.start_link(name: Shop.Aion, store: {:sqlite, Path.join(#{inspect(dir)}, "shop.db")}, workflows: [Shop.Checkout])
    {:ok, id} = Aion.start_workflow(Shop.Aion, Shop.Checkout, %{sku: "tea"})
    IO.puts("RESULT " <> inspect(Aion.await(Shop.Aion, id, 10_000)))
    """

    env = [{"MIX_ENV", "dev"}, {"MIX_BUILD_PATH", nil}, {"MIX_EXS", nil}, {"MIX_DEPS_PATH", nil}]
    {output, status} = System.cmd("mix", ["run", "-e", script], cd: project, env: env, stderr_to_stdout: true)

    assert status == 0, output
    assert output =~ ~s(RESULT {:ok, {:reserved, "2xtea"}})
    assert File.exists?(Path.join(project, "_build/dev/lib/aion/priv/native/libaion_nif.so"))
  end
end
