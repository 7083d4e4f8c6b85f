#!/usr/bin/env bash
# Type-checks the guest SDKs and every Python and JavaScript app in this
# repository (examples, test fixtures, `glassbox new` templates) against them:
# mypy --strict over the Python SDK, with the stubs of its WIT bindings that
# componentize-py generates, and over each Python app; tsc over the JavaScript
# SDK's types and each JavaScript app (sdk/js/tsconfig.json). Needs what
# scripts/guest-toolchains.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${GLASSBOX_GUEST_VENV:-$HOME/.cache/glassbox/guest-venv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The Python SDK as an installed copy is: its source beside the generated bindings.
"$venv/bin/componentize-py" -d wit -w agent -w tool-plugin --world-module glassbox.bindings \
    bindings "$work/sdk" >/dev/null
cp -r sdk/python/src/glassbox/. "$work/sdk/glassbox/"
mypy=("$venv/bin/mypy" --strict --python-version 3.14 --no-error-summary --cache-dir "$work/mypy-cache")
(cd "$work/sdk" && "${mypy[@]}" -p glassbox)
# One app at a time: each is a module named `app`.
for app in plugins/python/*/app.py tests/fixtures-python/*/app.py host/templates/python/*/app.py; do
    MYPYPATH="$work/sdk" "${mypy[@]}" "$app"
done

sdk/js/node_modules/.bin/tsc -p sdk/js
echo "check-guest-types: the Python and JavaScript SDKs and apps type-check" >&2
