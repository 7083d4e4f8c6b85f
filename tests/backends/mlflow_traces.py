"""Reads the end-to-end runs' traces back through MLflow's own client and checks
what MLflow made of them: the expected traces (traces.py), the GenAI
operations as MLflow span types, each model call's token usage, and each
trace's total usage as the sum of its calls'.
Usage: mlflow_traces.py TRACKING_URL EXPERIMENT_ID"""

import sys
import time

import mlflow

import traces

KINDS = {"invoke_workflow": "CHAIN", "invoke_agent": "AGENT", "chat": "CHAT_MODEL", "execute_tool": "TOOL"}


def tokens(span):
    usage = span.get_attribute("mlflow.chat.tokenUsage")
    return None if usage is None else (usage["input_tokens"], usage["output_tokens"])


def fetch_traces(experiment_id):
    deadline = time.time() + 60
    while True:
        found = mlflow.search_traces(locations=[experiment_id], return_type="list", max_results=100)
        if sum(len(trace.data.spans) for trace in found) >= traces.expected_span_count() or time.time() > deadline:
            return found
        time.sleep(1)


def main():
    mlflow.set_tracking_uri(sys.argv[1])
    found = fetch_traces(sys.argv[2])
    spans = [
        traces.Span(
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_id=span.parent_id,
            name=span.name,
            kind=span.span_type,
            tokens=tokens(span),
        )
        for trace in found
        for span in trace.data.spans
    ]
    traces.check("MLflow", spans, KINDS)
    for trace in found:
        calls = [tokens(span) for span in trace.data.spans if tokens(span)]
        summed = {"input_tokens": sum(i for i, _ in calls), "output_tokens": sum(o for _, o in calls)}
        usage = trace.info.token_usage or {}
        shown = {key: usage.get(key) for key in summed}
        if shown != summed:
            traces.fail("MLflow", f"trace {trace.info.trace_id} shows usage {usage}, its calls sum to {summed}", spans)
    print("e2e: MLflow's trace token usage is the sum of each trace's model calls", file=sys.stderr)


if __name__ == "__main__":
    main()
