"""The tools an agent may call (the `agent` world). The host runs each call in a
fresh sandbox and records it as an `execute_tool` span."""

from __future__ import annotations

import json
from typing import Mapping

from glassbox.bindings.imports import tools as _wit
from glassbox.errors import host_call
from glassbox.llm import ToolCall, ToolDefinition


def definitions() -> list[ToolDefinition]:
    """Every tool this run may use, to hand to the model (`chat(..., tools=definitions())`)."""
    return _wit.list()


def call(name: str, arguments: Mapping[str, object] | str = "{}", call_id: str | None = None) -> str:
    """Calls the tool `name` with `arguments` (a mapping, or a JSON object as text) and returns its result text."""
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return host_call(_wit.call, name, encoded, call_id)


def answer(request: ToolCall) -> str:
    """Runs a tool call the model asked for."""
    return host_call(_wit.call, request.name, request.arguments, request.id)
