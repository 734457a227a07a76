#!/usr/bin/env bash
# Runs the benchmark (release build of the NIF): W1 throughput and latency,
# replay of a 10,000-event history. See bench/run.exs for knobs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

mix compile
mix run bench/run.exs
