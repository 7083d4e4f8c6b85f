#!/usr/bin/env bash
# Runs every check: formatting, lints, the types of the Python and JavaScript
# SDKs and apps, the unit and integration tests (which build the guest
# components, Rust, Python and JavaScript, from source), the end-to-end checks
# against a real Arize Phoenix and a real MLflow, and a real Prometheus
# scraping `glassbox serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
scripts/guest-toolchains.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
scripts/check-guest-types.sh
cargo test --workspace
tests/backends/phoenix.sh
tests/backends/mlflow.sh
tests/backends/prometheus.sh
