#!/usr/bin/env bash
# Installs what building guests in other languages needs, into a cache outside
# the clone: componentize-py (pinned: its binding conventions change between
# releases) in a Python virtualenv. The test build finds it there.
set -euo pipefail

venv="${GLASSBOX_GUEST_VENV:-$HOME/.cache/glassbox/guest-venv}"
componentize_py_version="0.25.1"
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $componentize_py_version"; then
    echo "guest-toolchains: installing componentize-py $componentize_py_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "componentize-py==$componentize_py_version"
fi
