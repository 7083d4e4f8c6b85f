#!/usr/bin/env bash
# Sets everything up and runs the demo: installs the wasm32-wasip2 target,
# builds the glassbox host and the example components (the planner of
# workflow.toml too), and runs the react agent
# with the weather and calculator plugins. With no OPENAI_* variable set it
# uses the offline scripted provider; extra arguments go to `glassbox run`.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
cargo build --release -p glassbox
cargo build --release --target wasm32-wasip2 -p react-agent -p weather -p calculator -p planner-agent

target="${CARGO_TARGET_DIR:-target}"
plugins="$target/demo-plugins"
mkdir -p "$plugins"
cp "$target/wasm32-wasip2/release/weather.wasm" "$target/wasm32-wasip2/release/calculator.wasm" "$plugins/"

exec "$target/release/glassbox" run "$target/wasm32-wasip2/release/react_agent.wasm" \
    --plugins "$plugins" \
    --input "Which is warmer right now, Paris or Lisbon, and by how many degrees Fahrenheit?" \
    "$@"
