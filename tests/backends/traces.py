"""What a tracing backend must show after the end-to-end runs, and the check of
it: the traces of demo-traces.txt, span by span with their nesting and token
counts, and each GenAI operation under the backend's own span kind. Each
backend's script reads its spans back through the backend's API, turns them
into `Span`s and calls `check`."""

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

OUTLINES = Path(__file__).with_name("demo-traces.txt")
TOKENS = re.compile(r"^(?P<name>.*?)  tokens (?P<input>\d+) in / (?P<output>\d+) out$")


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str | None
    # (input, output) for a model call, as the backend counted them.
    tokens: tuple[int, int] | None


def expected_outlines():
    """Each expected trace as its canonical outline, by root span name."""
    outlines, lines = {}, []
    for line in OUTLINES.read_text().splitlines() + [""]:
        if line.startswith("#"):
            continue
        if line.strip():
            lines.append(line)
            continue
        if lines:
            tree = parse_tree(lines)
            outlines[tree[0]] = render(tree)
            lines = []
    return outlines


def expected_span_count():
    return sum(outline.count("\n") for outline in expected_outlines().values())


def parse_tree(lines):
    """A printed tree as (label, children); each level indents four columns."""
    root = (lines[0], [])
    stack = [(0, root)]
    for line in lines[1:]:
        label = line.lstrip("│├└─ ")
        depth = (len(line) - len(label)) // 4
        node = (label, [])
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1][1].append(node)
        stack.append((depth, node))
    return root


def render(node, indent=""):
    """The outline of `node` with its children sorted, so sibling order does not matter."""
    label, children = node
    below = sorted(render(child, indent + "    ") for child in children)
    return "".join([f"{indent}{label}\n", *below])


def label(span):
    if span.tokens is None:
        return span.name
    return f"{span.name}  tokens {span.tokens[0]} in / {span.tokens[1]} out"


def outline(root, spans):
    children = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)

    def tree(span):
        return (label(span), [tree(child) for child in children.get(span.span_id, [])])

    return render(tree(root))


def fail(backend, message, spans):
    print(f"e2e: FAILED: {backend}: {message}", file=sys.stderr)
    print(json.dumps([span.__dict__ for span in spans], indent=1)[:20000], file=sys.stderr)
    sys.exit(1)


def check(backend, spans, kinds):
    """Checks that `spans` are exactly the expected traces, one trace each, and
    that each operation in `kinds` (e.g. "chat") has the kind the backend gives it."""
    expected = expected_outlines()
    traces = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    found = {}
    for trace_spans in traces.values():
        ids = {span.span_id for span in trace_spans}
        roots = [span for span in trace_spans if span.parent_id not in ids]
        if len(roots) != 1:
            fail(backend, f"a trace has {len(roots)} roots: {[s.name for s in roots]}", trace_spans)
        name = roots[0].name
        if name in found:
            fail(backend, f"two traces have the root {name}", spans)
        found[name] = (outline(roots[0], trace_spans), trace_spans)
    if sorted(found) != sorted(expected):
        fail(backend, f"traces for {sorted(found)}, expected one for each of {sorted(expected)}", spans)
    for name, (shown, trace_spans) in found.items():
        if shown != expected[name]:
            fail(backend, f"the trace of {name} is\n{shown}\nexpected\n{expected[name]}", trace_spans)
    wrong = Counter(
        (span.name, span.kind)
        for span in spans
        if span.name.split(" ")[0] in kinds and span.kind != kinds[span.name.split(" ")[0]]
    )
    if wrong:
        fail(backend, f"spans with the wrong kind (expected {kinds}): {dict(wrong)}", spans)
    print(
        f"e2e: {backend} holds one trace for each of {', '.join(sorted(expected))} "
        f"({len(spans)} spans, nested as run, with their token counts), "
        f"kinds {', '.join(f'{op}={kind}' for op, kind in kinds.items())}",
        file=sys.stderr,
    )

