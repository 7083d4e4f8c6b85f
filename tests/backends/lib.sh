# What the backend end-to-end scripts share; sourced, not run. It gives them a
# scratch directory and processes that are stopped at exit, installs a
# backend's Python package into a virtualenv cached outside the clone, and
# runs the demo and the workflow example exporting to a backend. Any failure fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
backends="$root/tests/backends"
target="${CARGO_TARGET_DIR:-$root/target}"
workdir="$(mktemp -d)"
pids=()
# Backends start in process groups of their own, so their workers stop too.
trap 'for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; rm -rf "$workdir"' EXIT

# Prints the path of virtualenv DIR, first installing PACKAGE... into it unless
# MODULE imports there already.
python_venv() {
    local venv="$1" module="$2"
    shift 2
    if ! "$venv/bin/python" -c "import $module" 2>/dev/null; then
        echo "e2e: installing $* into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip >&2
        "$venv/bin/pip" install --quiet "$@" >&2
    fi
    echo "$venv"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts COMMAND... as NAME, logging to $workdir/NAME.log, and waits until URL
# answers, or fails showing the log.
start() {
    local name="$1" url="$2"
    shift 2
    setsid "$@" >"$workdir/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 120); do
        if curl -fsS "$url" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "e2e: $name exited:" >&2; cat "$workdir/$name.log" >&2; exit 1
        fi
        sleep 1
    done
    echo "e2e: $name never answered $url" >&2; cat "$workdir/$name.log" >&2; exit 1
}

# Runs the README's demo (three agents) and the workflow example with the
# exporter set up by the caller's OTEL_* variables; fails if either reports
# any problem, exporting included.
run_exporting() {
    local backend="$1" status=0
    echo "e2e: running the demo and the workflow example against $backend" >&2
    "$root/scripts/demo.sh" --conversation-id e2e-session 2>"$workdir/runs.err" || status=$?
    # The example's paths are relative to the clone's target directory.
    sed -e "s#\"target/#\"$target/#" -e "s#\"plugins/#\"$root/plugins/#" \
        "$root/workflow.toml" >"$workdir/workflow.toml"
    "$target/release/glassbox" run --manifest "$workdir/workflow.toml" --conversation-id e2e-session \
        --input "Plan a day out in Lisbon for three: the weather, and the museum tickets at 24 euros each?" \
        2>>"$workdir/runs.err" || status=$?
    cat "$workdir/runs.err" >&2
    if [ "$status" -ne 0 ] || grep -E 'WARN|ERROR|warning|error' "$workdir/runs.err" | grep -v '^ *Compiling\|^ *Finished'; then
        echo "e2e: FAILED: the runs reported problems exporting to $backend" >&2
        exit 1
    fi
}
