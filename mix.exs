defmodule Aion.MixProject do
  use Mix.Project

  @version "0.1.0"

  def project do
    [
      app: :aion,
      version: @version,
      elixir: "~> 1.14",
      description: "Durable workflows for Elixir and Erlang, embedded: a Rust core behind a NIF, SQLite by default.",
      # src/ holds the Rust core, not Erlang sources.
      erlc_paths: [],
      compilers: [:aion_nif] ++ Mix.compilers(),
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: [],
      aliases: [bench: "run bench/run.exs"]
    ]
  end

  def application do
    [extra_applications: [:logger, :crypto], mod: {Aion.Application, []}]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_env), do: ["lib"]
end

defmodule Mix.Tasks.Compile.AionNif do
  @moduledoc false
  # Builds native/aion_nif with cargo and installs the library as
  # priv/native/libaion_nif.so. Lives here, not in lib/, because it must exist
  # before lib/ compiles; it also runs when Aion is a dependency of another
  # project. Set AION_NIF_PROFILE=debug for faster, slower-running builds.
  use Mix.Task.Compiler

  @root __DIR__

  @impl true
  def run(_args) do
    profile = System.get_env("AION_NIF_PROFILE", "release")
    target_dir = System.get_env("CARGO_TARGET_DIR") || Path.join(@root, "target")
    installed = Path.join([@root, "priv", "native", "libaion_nif.so"])

    cargo =
      System.find_executable("cargo") ||
        Mix.raise("Aion needs cargo (Rust) to build its NIF; install Rust from https://rustup.rs")

    unless File.exists?(installed) do
      Mix.shell().info("Compiling Aion NIF with cargo (#{profile}); the first build takes a few minutes")
    end

    args = ["build", "--quiet", "--locked", "-p", "aion_nif"] ++ if(profile == "release", do: ["--release"], else: [])
    env = [{"CARGO_TARGET_DIR", target_dir}]

    case System.cmd(cargo, args, cd: @root, env: env, stderr_to_stdout: true, into: IO.stream(:stdio, :line)) do
      {_, 0} -> :ok
      {_, status} -> Mix.raise("cargo build of the Aion NIF failed (exit status #{status})")
    end

    built = Path.join([target_dir, profile, library_name()])
    changed? = install(built, installed)
    Mix.Project.build_structure()
    {if(changed?, do: :ok, else: :noop), []}
  end

  defp library_name do
    case :os.type() do
      {:unix, :darwin} -> "libaion_nif.dylib"
      {:win32, _} -> "aion_nif.dll"
      _ -> "libaion_nif.so"
    end
  end

  # cargo rewrites the library only when it rebuilds it, so an installed copy
  # at least as new and of the same size is current. A VM that has the old
  # library mapped crashes if the file is overwritten in place, so the new one
  # is written beside it and renamed over it.
  defp install(built, installed) do
    %File.Stat{size: size, mtime: built_at} = File.stat!(built, time: :posix)

    case File.stat(installed, time: :posix) do
      {:ok, %File.Stat{size: ^size, mtime: installed_at}} when installed_at >= built_at ->
        false

      _ ->
        File.mkdir_p!(Path.dirname(installed))
        tmp = installed <> ".tmp"
        File.cp!(built, tmp)
        File.rename!(tmp, installed)
        true
    end
  end
end
