#!/usr/bin/env bash
# Runs every test: the Rust core (unit tests, store conformance on memory and
# SQLite, replay properties), then the Elixir suite through the real NIF
# (crash test, Aion as a dependency, ...). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "==> cargo test (Rust core)"
cargo test --locked --quiet

echo "==> mix test (Elixir, through the NIF; the first run builds it in release mode)"
MIX_ENV=test mix test "$@"
