#!/usr/bin/env bash
# make soak: SIGKILLs the engine at random intervals under a mixed load for
# SOAK_MINUTES (default 10), then verifies every workflow (see soak/run.exs).
# Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
mix compile
mix run soak/run.exs
