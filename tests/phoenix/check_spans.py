"""Reads the demo's traces back from Phoenix and checks what Phoenix made of
them: one trace per agent (Rust, Python, JavaScript), each with the expected
spans nested under its agent, and the GenAI operations mapped to Phoenix's
AGENT, LLM and TOOL span kinds with token counts on the LLM spans."""

import json
import sys
import time
import urllib.request

# Each demo agent's trace: its spans by name, and what each kind of span nests under.
TRACES = {
    "invoke_agent react-agent": {
        "spans": {
            "invoke_agent react-agent": 1,
            "react.step": 3,
            "chat scripted-demo": 3,
            "execute_tool get_weather": 2,
            "execute_tool calculate": 1,
        },
        "step": "react.step",
    },
    "invoke_agent analyst-agent": {
        "spans": {
            "invoke_agent analyst-agent": 1,
            "analyst.step": 3,
            "chat scripted-analyst": 3,
            "execute_tool text_stats": 1,
            "text_stats.syllables": 1,
            "execute_tool keywords": 1,
            "execute_tool run_python": 1,
            "run_python.execute": 1,
            "execute_tool calculate": 1,
        },
        "step": "analyst.step",
    },
    "invoke_agent report-agent": {
        "spans": {
            "invoke_agent report-agent": 1,
            "report.gather": 2,
            "report.write": 1,
            "chat scripted-report": 3,
            "execute_tool csv_summary": 1,
            "csv_summary.columns": 1,
            "execute_tool convert_units": 1,
            "execute_tool calculate": 1,
            "execute_tool text_stats": 1,
            "text_stats.syllables": 1,
        },
        "step": ("report.gather", "report.write"),
    },
}
KINDS = {"invoke_agent": "AGENT", "chat": "LLM", "execute_tool": "TOOL"}
TOTAL = sum(sum(trace["spans"].values()) for trace in TRACES.values())


def fetch_spans(base):
    url = f"{base}/v1/projects/default/spans?limit=1000"
    deadline = time.time() + 60
    while True:
        with urllib.request.urlopen(url, timeout=10) as response:
            spans = json.load(response)["data"]
        if len(spans) >= TOTAL or time.time() > deadline:
            return spans
        time.sleep(1)


def fail(message, spans):
    print(f"e2e: FAILED: {message}", file=sys.stderr)
    print(json.dumps(spans, indent=2)[:20000], file=sys.stderr)
    sys.exit(1)


def check_trace(root, expected, spans):
    names = {}
    for span in spans:
        names[span["name"]] = names.get(span["name"], 0) + 1
    if names != expected["spans"]:
        fail(f"{root}: span names {names}, expected {expected['spans']}", spans)
    by_id = {span["context"]["span_id"]: span for span in spans}
    parent_name = lambda span: by_id[span["parent_id"]]["name"] if span.get("parent_id") else None
    steps = expected["step"] if isinstance(expected["step"], tuple) else (expected["step"],)
    for span in spans:
        operation = span["name"].split(" ")[0]
        parent = parent_name(span)
        if operation == "invoke_agent":
            allowed = (None,)
        elif span["name"] in steps:
            allowed = (root,)
        elif operation in KINDS:
            allowed = steps
        else:
            allowed = tuple(name for name in expected["spans"] if name.startswith("execute_tool"))
        if parent not in allowed:
            fail(f"{span['name']} has parent {parent}, expected one of {allowed}", spans)
        if operation in KINDS and span["span_kind"] != KINDS[operation]:
            fail(f"{span['name']} has kind {span['span_kind']}, expected {KINDS[operation]}", spans)
        if operation == "chat":
            attributes = span["attributes"]
            tokens = attributes.get("gen_ai.usage.input_tokens") or attributes.get("llm.token_count.prompt")
            if not tokens:
                fail(f"{span['name']} has no input token count", spans)


def main():
    spans = fetch_spans(sys.argv[1])
    traces = {}
    for span in spans:
        traces.setdefault(span["context"]["trace_id"], []).append(span)
    roots = {}
    for trace_spans in traces.values():
        root = [span["name"] for span in trace_spans if not span.get("parent_id")]
        if len(root) != 1 or root[0] not in TRACES or root[0] in roots:
            fail(f"a trace has roots {root}; expected one trace for each of {sorted(TRACES)}", spans)
        roots[root[0]] = trace_spans
    if set(roots) != set(TRACES):
        fail(f"traces for {sorted(roots)}, expected {sorted(TRACES)}", spans)
    for root, trace_spans in roots.items():
        check_trace(root, TRACES[root], trace_spans)
    print(
        f"e2e: Phoenix holds one trace for each of the Rust, Python and JavaScript agents "
        f"({len(spans)} spans) with AGENT, LLM and TOOL kinds",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
