#!/usr/bin/env bash
# Sets everything up and runs the demos: installs the wasm32-wasip2 target,
# componentize-py and the JavaScript SDK's tools, builds the glassbox host, the
# Rust example components (the planner of workflow.toml too) and the Python and
# JavaScript ones with their SDKs, then runs the Rust react agent with the weather and calculator plugins,
# the Python analyst agent with Python and Rust tools, and the JavaScript report
# agent with JavaScript, Python and Rust tools. With no OPENAI_* variable set
# they use the offline scripted provider; extra arguments go to every
# `glassbox run`.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
scripts/guest-toolchains.sh
cargo build --release -p glassbox
cargo build --release --target wasm32-wasip2 -p react-agent -p weather -p calculator -p planner-agent

target="${CARGO_TARGET_DIR:-target}"
release="$target/wasm32-wasip2/release"
plugins="$target/demo-plugins"
mkdir -p "$plugins"
cp "$release/weather.wasm" "$release/calculator.wasm" "$plugins/"

venv="${GLASSBOX_GUEST_VENV:-$HOME/.cache/glassbox/guest-venv}"
python_sdk="$target/python-sdk"
python_guests="$target/python-guests"
rm -rf "$python_sdk"
"$venv/bin/pip" install --quiet --no-deps --no-build-isolation --target "$python_sdk" sdk/python
mkdir -p "$python_guests"
for guest in text-tools code-runner analyst-agent; do
    world=tool-plugin
    [[ $guest == *-agent ]] && world=agent
    "$venv/bin/componentize-py" -w "$world" componentize -p "$python_sdk" -p "plugins/python/$guest" app \
        -o "$python_guests/${guest//-/_}.wasm" >/dev/null
done

echo "== A Rust agent with Rust tools" >&2
"$target/release/glassbox" run "$release/react_agent.wasm" \
    --plugins "$plugins" \
    --input "Which is warmer right now, Paris or Lisbon, and by how many degrees Fahrenheit?" \
    "$@"

js_guests="$target/js-guests"
mkdir -p "$js_guests"
node sdk/js/bin/componentize.js plugins/js/data-tools/app.js --world tool-plugin -o "$js_guests/data_tools.wasm"
node sdk/js/bin/componentize.js plugins/js/report-agent/app.js --world agent -o "$js_guests/report_agent.wasm"

echo "== A Python agent with Python and Rust tools" >&2
"$target/release/glassbox" run "$python_guests/analyst_agent.wasm" \
    --tool "$python_guests/text_tools.wasm" --tool "$python_guests/code_runner.wasm" \
    --tool "$release/calculator.wasm" \
    --script plugins/python/analyst-agent/demo-script.toml \
    --input "How hard is this to read, and what is its average word length? Sandboxes keep agents honest. Traces show what they did." \
    "$@"

echo "== A JavaScript agent with JavaScript, Python and Rust tools" >&2
exec "$target/release/glassbox" run "$js_guests/report_agent.wasm" \
    --tool "$js_guests/data_tools.wasm" --tool "$python_guests/text_tools.wasm" \
    --tool "$release/calculator.wasm" \
    --script plugins/js/report-agent/demo-script.toml \
    --input "Write a short weather report for Paris, Lisbon and Oslo." \
    "$@"
