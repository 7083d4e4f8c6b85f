"""Reads the demo's trace back from Phoenix and checks what Phoenix made of it:
one trace, the expected tree, and the GenAI operations mapped to Phoenix's
AGENT, LLM and TOOL span kinds with token counts on the LLM spans."""

import json
import sys
import time
import urllib.request

EXPECTED = {
    "invoke_agent react-agent": 1,
    "react.step": 3,
    "chat scripted-demo": 3,
    "execute_tool get_weather": 2,
    "execute_tool calculate": 1,
}
KINDS = {"invoke_agent": "AGENT", "chat": "LLM", "execute_tool": "TOOL"}


def fetch_spans(base):
    url = f"{base}/v1/projects/default/spans?limit=1000"
    deadline = time.time() + 60
    while True:
        with urllib.request.urlopen(url, timeout=10) as response:
            spans = json.load(response)["data"]
        if len(spans) >= sum(EXPECTED.values()) or time.time() > deadline:
            return spans
        time.sleep(1)


def fail(message, spans):
    print(f"e2e: FAILED: {message}", file=sys.stderr)
    print(json.dumps(spans, indent=2)[:20000], file=sys.stderr)
    sys.exit(1)


def main():
    spans = fetch_spans(sys.argv[1])
    names = {}
    for span in spans:
        names[span["name"]] = names.get(span["name"], 0) + 1
    if names != EXPECTED:
        fail(f"span names {names}, expected {EXPECTED}", spans)

    traces = {span["context"]["trace_id"] for span in spans}
    if len(traces) != 1:
        fail(f"{len(traces)} traces, expected one", spans)

    by_id = {span["context"]["span_id"]: span for span in spans}
    parent_name = lambda span: by_id[span["parent_id"]]["name"] if span.get("parent_id") else None
    for span in spans:
        operation = span["name"].split(" ")[0]
        expected_parent = {
            "invoke_agent": None,
            "react.step": "invoke_agent react-agent",
        }.get(operation, "react.step")
        if parent_name(span) != expected_parent:
            fail(f"{span['name']} has parent {parent_name(span)}, expected {expected_parent}", spans)
        if operation in KINDS and span["span_kind"] != KINDS[operation]:
            fail(f"{span['name']} has kind {span['span_kind']}, expected {KINDS[operation]}", spans)
        if operation == "chat":
            attributes = span["attributes"]
            tokens = attributes.get("gen_ai.usage.input_tokens") or attributes.get("llm.token_count.prompt")
            if not tokens:
                fail(f"{span['name']} has no input token count", spans)

    print(f"e2e: Phoenix holds one trace of {len(spans)} spans with AGENT, LLM and TOOL kinds", file=sys.stderr)


if __name__ == "__main__":
    main()
