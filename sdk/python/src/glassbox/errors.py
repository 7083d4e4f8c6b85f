"""The WIT `error` variant as Python exceptions, mapped both ways: a failed
host call raises the matching `GlassboxError`, and a `GlassboxError` raised by
a tool or an agent reaches the host as that case."""

from __future__ import annotations

import traceback
from typing import Callable, TypeVar, cast

from componentize_py_types import Err
from glassbox.bindings.imports import types
from glassbox.telemetry import log

T = TypeVar("T")


class GlassboxError(Exception):
    """A failure the host or a component reported. Catch a subclass to branch on the case."""

    #: The case, in words, as the host writes it.
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class RateLimited(GlassboxError):
    """The provider refused because of rate or quota limits."""

    kind = "rate limited"

    def __init__(self, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        #: How long the provider asked callers to wait, when it said.
        self.retry_after_ms = retry_after_ms


class Timeout(GlassboxError):
    """The operation did not finish in time."""

    kind = "timeout"


class InvalidRequest(GlassboxError):
    """The request was malformed or refused as invalid."""

    kind = "invalid request"


class NotAllowed(GlassboxError):
    """The host's policy or the provider's credentials do not allow this."""

    kind = "not allowed"


class NotFound(GlassboxError):
    """No tool, agent or model exists with that name."""

    kind = "not found"


class InvalidArguments(GlassboxError):
    """Tool arguments are not valid JSON or do not match the tool's schema."""

    kind = "invalid arguments"


class ToolFailed(GlassboxError):
    """The tool ran and reported a failure. Raise it from a tool to refuse a call."""

    kind = "tool failed"


class Crashed(GlassboxError):
    """The component called crashed; its state was discarded."""

    kind = "crashed"


class ProviderError(GlassboxError):
    """The LLM provider failed or answered something unusable."""

    kind = "provider error"


class BudgetExceeded(GlassboxError):
    """The run's budget does not allow this call."""

    kind = "budget exceeded"


class LimitExceeded(GlassboxError):
    """The component called went past its memory or fuel limit."""

    kind = "limit exceeded"


class Unavailable(GlassboxError):
    """Another Glassbox host serving an agent could not be reached."""

    kind = "unavailable"


# Each exception and the WIT case it stands for; rate limits carry a record and map apart.
_CASES: list[tuple[type[GlassboxError], type]] = [
    (Timeout, types.Error_Timeout),
    (InvalidRequest, types.Error_InvalidRequest),
    (NotAllowed, types.Error_NotAllowed),
    (NotFound, types.Error_NotFound),
    (InvalidArguments, types.Error_InvalidArguments),
    (ToolFailed, types.Error_ToolFailed),
    (Crashed, types.Error_Crashed),
    (ProviderError, types.Error_Provider),
    (BudgetExceeded, types.Error_BudgetExceeded),
    (LimitExceeded, types.Error_LimitExceeded),
    (Unavailable, types.Error_Unavailable),
]


def from_wit(error: types.Error) -> GlassboxError:
    """The exception for a WIT `error` the host returned."""
    if isinstance(error, types.Error_RateLimited):
        return RateLimited(error.value.message, error.value.retry_after_ms)
    for exception, case in _CASES:
        if isinstance(error, case):
            return exception(error.value)
    return GlassboxError(repr(error))


def to_wit(error: GlassboxError) -> types.Error:
    """The WIT `error` for an exception a component raised; a bare `GlassboxError` is a tool failure."""
    if isinstance(error, RateLimited):
        return types.Error_RateLimited(types.RateLimit(error.message, error.retry_after_ms))
    for exception, case in _CASES:
        if isinstance(error, exception):
            return cast(types.Error, case(error.message))
    return types.Error_ToolFailed(error.message)


def host_call(call: Callable[..., T], *arguments: object) -> T:
    """Calls a host import, raising a `GlassboxError` where it returns a WIT error."""
    try:
        return call(*arguments)
    except Err as error:
        raise from_wit(error.value) from None


def report_uncaught(error: Exception) -> str:
    """Logs the traceback of an exception no code caught, and says what it was in one line."""
    log(traceback.format_exc(), level="error", attributes={"exception.type": type(error).__name__})
    return f"{type(error).__name__}: {error}"
