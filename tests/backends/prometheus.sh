#!/usr/bin/env bash
# Prometheus end to end: installs Debian's `prometheus` package when it is
# missing, serves the demo agent with `glassbox serve --prometheus` on
# loopback, runs it once, lets a real Prometheus scrape GET /metrics, and asks
# it in PromQL for the token-usage histogram. Any failure fails.
source "$(dirname "$0")/lib.sh"
cd "$root"

if ! command -v prometheus >/dev/null; then
    echo "prometheus: installing Debian's prometheus package" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
fi

cargo build --release -p glassbox
cargo build --release --target wasm32-wasip2 -p react-agent -p weather -p calculator
components="$target/wasm32-wasip2/release"
glassbox_port="$(free_port)"
prometheus_port="$(free_port)"

start glassbox "http://127.0.0.1:$glassbox_port/health" "$target/release/glassbox" serve "$components/react_agent.wasm" \
    --tool "$components/weather.wasm" --tool "$components/calculator.wasm" \
    --listen "127.0.0.1:$glassbox_port" --prometheus
curl -fsS "http://127.0.0.1:$glassbox_port/v1/agents/react-agent/runs" \
    -H 'content-type: application/json' \
    -d '{"input": "Which is warmer right now, Paris or Lisbon, and by how many degrees Fahrenheit?"}' >/dev/null

cat >"$workdir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: glassbox
    static_configs:
      - targets: ["127.0.0.1:$glassbox_port"]
YAML
start prometheus "http://127.0.0.1:$prometheus_port/-/ready" prometheus --config.file="$workdir/prometheus.yml" \
    --storage.tsdb.path="$workdir/data" --web.listen-address="127.0.0.1:$prometheus_port"

# The demo makes three model calls: each records input and output tokens.
query='sum by (gen_ai_token_type) (gen_ai_client_token_usage_count{job="glassbox"})'
echo "prometheus: querying $query" >&2
for _ in $(seq 1 30); do
    answer="$(curl -fsS "http://127.0.0.1:$prometheus_port/api/v1/query" --data-urlencode "query=$query")"
    if python3 - "$answer" <<'PY'
import json, sys
result = json.loads(sys.argv[1])["data"]["result"]
counts = {series["metric"].get("gen_ai_token_type"): float(series["value"][1]) for series in result}
sys.exit(0 if counts == {"input": 3.0, "output": 3.0} else 1)
PY
    then
        median="$(curl -fsS "http://127.0.0.1:$prometheus_port/api/v1/query" \
            --data-urlencode 'query=histogram_quantile(0.5, sum by (le) (gen_ai_client_token_usage_bucket{gen_ai_token_type="input"}))')"
        echo "prometheus: ok, 3 input and 3 output token counts scraped; median input bucket: $median" >&2
        exit 0
    fi
    sleep 1
done
echo "prometheus: FAILED: Prometheus never answered 3 input and 3 output token counts; last answer: $answer" >&2
cat "$workdir/glassbox.log" >&2
exit 1
