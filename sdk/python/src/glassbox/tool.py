"""Exporting tools (the `tool-plugin` world): `@tool` makes a typed function a
tool, and importing `Tool` into the app module exports every tool so made.

    from glassbox.tool import Tool, tool

    @tool
    def word_count(text: str) -> int:
        \"\"\"Counts the words of a text.\"\"\"
        return len(text.split())
"""

from __future__ import annotations

import inspect
import json
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Callable, TypeVar, overload

from componentize_py_types import Err
from glassbox.bindings import exports
from glassbox.bindings.imports import types
from glassbox.errors import GlassboxError, InvalidArguments, ToolFailed, report_uncaught, to_wit
from glassbox.schema import describe

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class _Registered:
    function: Callable[..., object]
    signature: inspect.Signature
    #: Arguments typed as an enum, which arrive as their values.
    enums: dict[str, type[Enum]]
    definition: types.ToolDefinition


_tools: dict[str, _Registered] = {}


@overload
def tool(function: F) -> F: ...
@overload
def tool(*, name: str | None = None, description: str | None = None) -> Callable[[F], F]: ...
def tool(
    function: F | None = None, *, name: str | None = None, description: str | None = None
) -> F | Callable[[F], F]:
    """Makes `function` a tool of this plugin, named after it unless `name` is
    given, described by its docstring unless `description` is given. Its typed
    arguments become the JSON Schema the host checks calls against; it returns
    text, or anything JSON can encode."""

    def register(function: F) -> F:
        summary, parameters = describe(function)
        tool_name = name or function.__name__
        if tool_name in _tools:
            raise ValueError(f"two tools are named `{tool_name}`")
        if not (description or summary):
            raise ValueError(f"tool `{tool_name}` needs a description: give it a docstring")
        definition = types.ToolDefinition(tool_name, description or summary, json.dumps(parameters))
        enums = {
            argument: hint
            for argument, hint in typing.get_type_hints(function).items()
            if isinstance(hint, type) and issubclass(hint, Enum)
        }
        _tools[tool_name] = _Registered(function, inspect.signature(function), enums, definition)
        return function

    return register(function) if function is not None else register


class Tool(exports.Tool):
    """The export of the `tool-plugin` world. Import it into the app module."""

    def definitions(self) -> list[types.ToolDefinition]:
        return [registered.definition for registered in _tools.values()]

    def invoke(self, name: str, arguments: str, call_id: str | None) -> str:
        registered = _tools.get(name)
        if registered is None:
            raise Err(types.Error_NotFound(f"this plugin has no tool `{name}`"))
        try:
            bound = registered.signature.bind(**json.loads(arguments))
            for argument, kind in registered.enums.items():
                if argument in bound.arguments:
                    bound.arguments[argument] = kind(bound.arguments[argument])
        except (TypeError, ValueError) as error:
            raise Err(to_wit(InvalidArguments(f"{name}: {error}"))) from None
        try:
            result = registered.function(*bound.args, **bound.kwargs)
            return result if isinstance(result, str) else json.dumps(result)
        except GlassboxError as error:
            raise Err(to_wit(error)) from None
        except Exception as error:
            # Leaving the component, it would trap the instance.
            raise Err(to_wit(ToolFailed(report_uncaught(error)))) from None
