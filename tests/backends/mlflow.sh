#!/usr/bin/env bash
# End to end against MLflow: installs it from PyPI, serves it on loopback with
# SQLite, creates an experiment, runs the demo and the workflow example
# exporting over OTLP/HTTP to its /v1/traces with the experiment's header, and
# reads the traces back with MLflow's own client (mlflow_traces.py).
source "$(dirname "$0")/lib.sh"
venv="$(python_venv "${GLASSBOX_MLFLOW_VENV:-$HOME/.cache/glassbox/mlflow-venv}" mlflow mlflow)"
url="http://127.0.0.1:$(free_port)"
port="${url##*:}"
start mlflow "$url/health" "$venv/bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 1 \
    --backend-store-uri "sqlite:///$workdir/mlflow.db" --default-artifact-root "$workdir/artifacts"
experiment="$(curl -fsS -X POST "$url/api/2.0/mlflow/experiments/create" \
    -H 'content-type: application/json' -d '{"name": "glassbox-e2e"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["experiment_id"])')"

# MLflow takes traces only. Its first export can take seconds while it warms
# up: the exporter waits up to 30 s for it rather than 10.
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="$url/v1/traces" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-mlflow-experiment-id=$experiment" OTEL_EXPORTER_OTLP_TIMEOUT=30000 \
OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \
    run_exporting MLflow
"$venv/bin/python" "$backends/mlflow_traces.py" "$url" "$experiment"
