"""A code-execution tool, in Python: `run_python` runs the model's Python code
and returns what it printed, the value of its last expression and the
exception it raised. Each call is a fresh sandboxed instance under the
plugin's time and memory limits: no files, no network, no state between calls,
so a loop without end or a memory hog costs only its own call."""

import ast
import contextlib
import io

# The modules the model's code may import. componentize-py bundles only what
# is imported when the component is built, so they are imported here.
import bisect, collections, csv, datetime, decimal, fractions, functools, heapq, itertools  # noqa: E401, F401
import json, math, random, re, statistics, string, textwrap  # noqa: E401, F401

from glassbox import span
from glassbox.tool import Tool, tool  # noqa: F401 (importing Tool exports the tools)

#: The most printed output returned; the rest is cut, and the cut said.
MAX_OUTPUT = 16 * 1024


@tool
def run_python(code: str) -> dict[str, object]:
    """Runs Python 3 code in a fresh sandbox (no files, no network) and
    returns its printed output, the value of its last line if that is an
    expression, and the error it raised, if any. It may import bisect,
    collections, csv, datetime, decimal, fractions, functools, heapq,
    itertools, json, math, random, re, statistics, string and textwrap.

    Args:
        code: The Python source to run.
    """
    stdout = io.StringIO()
    result, error = None, None
    with span("run_python.execute", attributes={"code.lines": code.count("\n") + 1}) as execution:
        try:
            body = ast.parse(code, "<code>")
            final = body.body[-1] if body.body else None
            last = final if isinstance(final, ast.Expr) else None
            if last is not None:
                body.body.pop()
            namespace: dict[str, object] = {"__name__": "__main__"}
            with contextlib.redirect_stdout(stdout):
                exec(compile(body, "<code>", "exec"), namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), "<code>", "eval"), namespace)
                    result = None if value is None else repr(value)
        except Exception as raised:
            error = f"{type(raised).__name__}: {raised}"
            execution.fail(error)
    printed = stdout.getvalue()
    if len(printed) > MAX_OUTPUT:
        printed = printed[:MAX_OUTPUT] + f"\n[output cut: {len(printed)} characters, {MAX_OUTPUT} shown]"
    return {"stdout": printed, "result": result, "error": error}
