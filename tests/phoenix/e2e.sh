#!/usr/bin/env bash
# End to end against a real tracing backend: installs Arize Phoenix from PyPI
# (into a virtualenv cached outside the clone), serves it on loopback, runs the
# README's demo exporting over OTLP/HTTP, and reads the spans back through
# Phoenix's REST API. Any failure, including failing to install Phoenix, fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

venv="${GLASSBOX_PHOENIX_VENV:-$HOME/.cache/glassbox/phoenix-venv}"
if ! "$venv/bin/python" -c 'import phoenix' 2>/dev/null; then
    echo "e2e: installing arize-phoenix into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet arize-phoenix
fi

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
grpc_port="$(free_port)"
workdir="$(mktemp -d)"
trap 'kill "$phoenix_pid" 2>/dev/null || true; wait "$phoenix_pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT

PHOENIX_HOST=127.0.0.1 PHOENIX_PORT="$port" PHOENIX_GRPC_PORT="$grpc_port" \
PHOENIX_WORKING_DIR="$workdir" PHOENIX_TELEMETRY_ENABLED=false \
    "$venv/bin/phoenix" serve >"$workdir/phoenix.log" 2>&1 &
phoenix_pid=$!

for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$phoenix_pid" 2>/dev/null; then
        echo "e2e: phoenix exited:" >&2; cat "$workdir/phoenix.log" >&2; exit 1
    fi
    sleep 1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "e2e: phoenix did not start" >&2; cat "$workdir/phoenix.log" >&2; exit 1; }

echo "e2e: running the demo against Phoenix on 127.0.0.1:$port" >&2
# Phoenix takes traces only, so metrics and logs are switched off the standard way.
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$port" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \
    "$root/scripts/demo.sh" --conversation-id e2e-session 2> >(tee "$workdir/demo.err" >&2)
if grep -E 'WARN|ERROR|warning|error' "$workdir/demo.err" | grep -v '^ *Compiling\|^ *Finished'; then
    echo "e2e: FAILED: the demo reported problems exporting to Phoenix" >&2
    exit 1
fi

"$venv/bin/python" "$root/tests/phoenix/check_spans.py" "http://127.0.0.1:$port"
