"""JSON Schema from a function's type hints and docstring: what makes a plain
typed function a tool. Unsupported hints are refused when the function is
decorated, which is when the component is built."""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from typing import Any, Callable

_SCALARS: dict[object, dict[str, Any]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    type(None): {"type": "null"},
    Any: {},
}


def describe(function: Callable[..., object]) -> tuple[str, dict[str, Any]]:
    """The function's description (its docstring before `Args:`) and the JSON
    Schema of its keyword arguments, each described from the `Args:` section."""
    summary, argument_docs = _docstring(inspect.getdoc(function) or "")
    hints = typing.get_type_hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise TypeError(f"{function.__name__}: a tool takes named arguments only, not `{parameter}`")
        if name not in hints:
            raise TypeError(f"{function.__name__}: argument `{name}` needs a type hint")
        schema = type_schema(hints[name], f"{function.__name__}: argument `{name}`")
        if name in argument_docs:
            schema["description"] = argument_docs[name]
        if parameter.default is parameter.empty:
            required.append(name)
        elif isinstance(parameter.default, enum.Enum):
            schema["default"] = parameter.default.value
        elif isinstance(parameter.default, (str, bool, int, float)):
            schema["default"] = parameter.default
        properties[name] = schema
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return summary, schema


def type_schema(hint: object, where: str) -> dict[str, Any]:
    """The JSON Schema of values of the type `hint`."""
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(argument, where) for argument in arguments]}
    if origin is typing.Literal:
        return {"enum": list(arguments)}
    if hint is list or origin in (list, tuple, typing.Sequence):
        items = arguments[0] if arguments else Any
        return {"type": "array", "items": type_schema(items, where)}
    if hint is dict or origin is dict:
        values = arguments[1] if len(arguments) == 2 else Any
        return {"type": "object", "additionalProperties": type_schema(values, where)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if typing.is_typeddict(hint):
        fields = typing.get_type_hints(hint)
        return {
            "type": "object",
            "properties": {key: type_schema(value, f"{where}, field `{key}`") for key, value in fields.items()},
            # Every TypedDict class has it; the type checker only knows `hint` as a type.
            "required": sorted(getattr(hint, "__required_keys__")),
            "additionalProperties": False,
        }
    raise TypeError(f"{where}: no JSON Schema for the type hint `{hint!r}`")


_ARGUMENTS_HEADING = re.compile(r"^(?:Args|Arguments|Parameters):[ \t]*$", re.M)
_ARGUMENT_ENTRY = re.compile(r"^(\s+)(\w+)\s*(?:\([^)]*\))?:\s*(.*)$")


def _docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Splits a Google-style docstring into its summary and its argument descriptions."""
    heading = _ARGUMENTS_HEADING.search(doc)
    if heading is None:
        return doc.strip(), {}
    described: dict[str, str] = {}
    entry_indent, current = None, None
    for line in doc[heading.end() :].splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            break  # the next section (`Returns:`, `Raises:`) begins
        entry = _ARGUMENT_ENTRY.match(line)
        if entry and entry_indent in (None, len(entry.group(1))):
            entry_indent, current = len(entry.group(1)), entry.group(2)
            described[current] = entry.group(3).strip()
        elif current is not None:
            described[current] = f"{described[current]} {line.strip()}".strip()
    return doc[: heading.start()].strip(), described
