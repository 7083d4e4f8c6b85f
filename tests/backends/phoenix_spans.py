"""Reads the end-to-end runs' spans back from Phoenix's REST API and checks
what Phoenix made of them: the expected traces (traces.py), with the GenAI
operations mapped to Phoenix's span kinds and token counts on the model calls.
Usage: phoenix_spans.py BASE_URL"""

import json
import sys
import time
import urllib.request

import traces

KINDS = {"invoke_workflow": "CHAIN", "invoke_agent": "AGENT", "chat": "LLM", "execute_tool": "TOOL"}


def tokens(attributes):
    counts = [
        attributes.get(standard, attributes.get(openinference))
        for standard, openinference in (
            ("gen_ai.usage.input_tokens", "llm.token_count.prompt"),
            ("gen_ai.usage.output_tokens", "llm.token_count.completion"),
        )
    ]
    return None if None in counts else tuple(int(count) for count in counts)


def fetch_spans(base):
    url = f"{base}/v1/projects/default/spans?limit=1000"
    deadline = time.time() + 60
    while True:
        with urllib.request.urlopen(url, timeout=10) as response:
            spans = json.load(response)["data"]
        if len(spans) >= traces.expected_span_count() or time.time() > deadline:
            return spans
        time.sleep(1)


def main():
    spans = [
        traces.Span(
            trace_id=span["context"]["trace_id"],
            span_id=span["context"]["span_id"],
            parent_id=span.get("parent_id"),
            name=span["name"],
            kind=span["span_kind"],
            tokens=tokens(span["attributes"]),
        )
        for span in fetch_spans(sys.argv[1])
    ]
    traces.check("Phoenix", spans, KINDS)


if __name__ == "__main__":
    main()
