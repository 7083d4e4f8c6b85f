#!/usr/bin/env bash
# Installs what building and checking guests in other languages needs: a
# Python virtualenv, in a cache outside the clone, with the packages pinned in
# scripts/guest-requirements.txt; and the JavaScript SDK's dependencies, in
# sdk/js/node_modules. The test build finds them there. Each is installed again
# only when its pins change.
set -euo pipefail

scripts="$(dirname "$0")"
venv="${GLASSBOX_GUEST_VENV:-$HOME/.cache/glassbox/guest-venv}"
if ! cmp -s "$scripts/guest-requirements.txt" "$venv/.installed-from-requirements"; then
    echo "guest-toolchains: installing scripts/guest-requirements.txt into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --requirement "$scripts/guest-requirements.txt"
    cp "$scripts/guest-requirements.txt" "$venv/.installed-from-requirements"
fi

# The JavaScript SDK's build command and its pinned tools (componentize-qjs,
# componentize-js, rolldown, and tsc for its types).
sdk_js="$scripts/../sdk/js"
installed="$sdk_js/node_modules/.installed-from-lock"
if ! cmp -s "$sdk_js/package-lock.json" "$installed"; then
    echo "guest-toolchains: installing the JavaScript SDK's dependencies (npm ci in sdk/js)" >&2
    (cd "$sdk_js" && npm ci --silent --no-audit --no-fund)
    cp "$sdk_js/package-lock.json" "$installed"
fi
