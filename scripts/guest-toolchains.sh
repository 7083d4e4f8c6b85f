#!/usr/bin/env bash
# Installs what building guests in other languages needs, into a cache outside
# the clone: a Python virtualenv with componentize-py (pinned: its binding
# conventions change between releases) and hatchling (which builds the Python
# SDK, sdk/python). The test build finds them there.
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
