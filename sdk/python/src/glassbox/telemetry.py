"""Custom spans and log records. Spans nest under the host's span for the
current run or tool call, and the host's own spans (`chat`, `execute_tool`)
opened inside a `with span(...)` block nest under it."""

from __future__ import annotations

from types import TracebackType
from typing import Mapping, Union

from glassbox.bindings.imports import telemetry as _wit

#: What an attribute may hold; anything else is recorded as its `str()`.
AttributeValue = Union[str, bool, int, float, list[str]]

_LEVELS = {
    "trace": _wit.Level.TRACE,
    "debug": _wit.Level.DEBUG,
    "info": _wit.Level.INFO,
    "warn": _wit.Level.WARN,
    "warning": _wit.Level.WARN,
    "error": _wit.Level.ERROR,
}


class span:
    """A span around a block: `with span("plan", attributes={"app.step": 2}) as s: ...`.

    Keyword arguments are attributes too (`span("plan", step=2)`), for names
    without dots. When the block raises, the span ends with an error status
    saying what was raised, and the exception goes on.
    """

    def __init__(
        self, name: str, attributes: Mapping[str, object] | None = None, **more: object
    ) -> None:
        self._span = _wit.Span(name, _attributes(attributes, more))

    def set(self, attributes: Mapping[str, object] | None = None, **more: object) -> None:
        """Adds or replaces attributes."""
        self._span.set_attributes(_attributes(attributes, more))

    def event(
        self, name: str, attributes: Mapping[str, object] | None = None, **more: object
    ) -> None:
        """Records a timestamped event on the span."""
        self._span.add_event(name, _attributes(attributes, more))

    def fail(self, description: str) -> None:
        """Marks the span as failed, saying why."""
        self._span.set_status(_wit.StatusCode.ERROR, description)

    def end(self) -> None:
        """Ends the span; later calls are ignored."""
        self._span.end()

    def __enter__(self) -> span:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None:
            self.fail(f"{type(error).__name__}: {error}")
        self.end()


def log(
    message: str,
    level: str = "info",
    attributes: Mapping[str, object] | None = None,
    **more: object,
) -> None:
    """Writes a log record (`trace`, `debug`, `info`, `warn` or `error`), correlated with the current span."""
    try:
        wit_level = _LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {sorted(_LEVELS)}") from None
    _wit.log(wit_level, message, _attributes(attributes, more))


def _attributes(
    attributes: Mapping[str, object] | None, more: Mapping[str, object]
) -> list[_wit.Attribute]:
    merged = {**(attributes or {}), **more}
    return [_wit.Attribute(key, _value(value)) for key, value in merged.items()]


def _value(value: object) -> _wit.Value:
    # bool before int: a bool is an int in Python.
    if isinstance(value, bool):
        return _wit.Value_Boolean(value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return _wit.Value_S64(value)
    if isinstance(value, float):
        return _wit.Value_F64(value)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return _wit.Value_StringList(list(value))
    return _wit.Value_String(value if isinstance(value, str) else str(value))
