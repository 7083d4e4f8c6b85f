#!/usr/bin/env bash
# Installs what building guests in other languages needs: a Python virtualenv,
# in a cache outside the clone, with componentize-py (pinned: its binding
# conventions change between releases) and hatchling (which builds the Python
# SDK, sdk/python); and the JavaScript SDK's dependencies, in sdk/js/node_modules.
# The test build finds them there.
set -euo pipefail

venv="${GLASSBOX_GUEST_VENV:-$HOME/.cache/glassbox/guest-venv}"
componentize_py_version="0.25.1"
hatchling_version="1.27.0"
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $componentize_py_version" ||
    ! "$venv/bin/python" -c "import hatchling" 2>/dev/null; then
    echo "guest-toolchains: installing componentize-py $componentize_py_version and hatchling $hatchling_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "componentize-py==$componentize_py_version" "hatchling==$hatchling_version"
fi

# The JavaScript SDK's build command and its pinned tools (componentize-js, rolldown).
sdk_js="$(dirname "$0")/../sdk/js"
installed="$sdk_js/node_modules/.installed-from-lock"
if ! cmp -s "$sdk_js/package-lock.json" "$installed"; then
    echo "guest-toolchains: installing the JavaScript SDK's dependencies (npm ci in sdk/js)" >&2
    (cd "$sdk_js" && npm ci --silent --no-audit --no-fund)
    cp "$sdk_js/package-lock.json" "$installed"
fi
