#!/usr/bin/env bash
# Runs the demo: an order workflow on embedded SQLite whose engine is killed
# with SIGKILL mid-run and recovers. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

mix compile
mix run --no-start examples/demo.exs
