#!/usr/bin/env bash
# Measures Glassbox at scale (per-call tracing cost, start, throughput, 10,000
# concurrent runs, export, soak, guests in each language) in one run and writes
# the results to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
scripts/guest-toolchains.sh
cargo bench -p glassbox --bench scale -- --write "$PWD/BENCHMARKS.md"
