#!/usr/bin/env bash
# End to end against Arize Phoenix: installs it from PyPI, serves it on
# loopback, runs the demo and the workflow example exporting over OTLP/HTTP,
# and reads the spans back through Phoenix's REST API (phoenix_spans.py).
source "$(dirname "$0")/lib.sh"
venv="$(python_venv "${GLASSBOX_PHOENIX_VENV:-$HOME/.cache/glassbox/phoenix-venv}" phoenix arize-phoenix)"
port="$(free_port)"
PHOENIX_HOST=127.0.0.1 PHOENIX_PORT="$port" PHOENIX_GRPC_PORT="$(free_port)" \
PHOENIX_WORKING_DIR="$workdir" PHOENIX_TELEMETRY_ENABLED=false \
    start phoenix "http://127.0.0.1:$port/healthz" "$venv/bin/phoenix" serve

# Phoenix takes traces only, so metrics and logs are switched off the standard way.
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$port" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \
    run_exporting Phoenix
"$venv/bin/python" "$backends/phoenix_spans.py" "http://127.0.0.1:$port"
