"""Exporting an agent (the `agent` world): `@agent` names the function that
runs it, and importing `Entrypoint` into the app module exports it.

    from glassbox.agent import Entrypoint, Request, agent

    @agent(description="Answers questions.")
    def assistant(request: Request) -> str:
        return chat(request.messages).message.content
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from componentize_py_types import Err
from glassbox.bindings import exports
from glassbox.bindings.exports import entrypoint
from glassbox.bindings.imports import types
from glassbox.errors import Crashed, GlassboxError, report_uncaught, to_wit
from glassbox.llm import Message, user

Run = Callable[["Request"], str]


@dataclass
class Request:
    """One run: the conversation so far and the conversation it belongs to."""

    #: The conversation, oldest message first; text input is one user message.
    messages: list[Message]
    #: Identifies the conversation, when the caller tracks one.
    conversation_id: str | None

    @property
    def text(self) -> str:
        """The last user message: the request itself, for an agent given text."""
        return next((m.content for m in reversed(self.messages) if m.role == types.Role.USER), "")


@dataclass(frozen=True)
class _Registered:
    run: Run
    info: entrypoint.AgentInfo


_registered: list[_Registered] = []


def agent(
    *, name: str | None = None, description: str | None = None, version: str = "0.1.0"
) -> Callable[[Run], Run]:
    """Makes the decorated function this component's agent, named after it
    unless `name` is given, described by its docstring unless `description` is."""

    def register(run: Run) -> Run:
        if _registered:
            raise ValueError("a component exports one agent; `@agent` is used twice")
        about = description or (run.__doc__ or "").strip()
        if not about:
            raise ValueError(f"agent `{run.__name__}` needs a description: give it a docstring")
        agent_name = name or run.__name__.replace("_", "-")
        _registered.append(_Registered(run, entrypoint.AgentInfo(agent_name, about, version)))
        return run

    return register


class Entrypoint(exports.Entrypoint):
    """The export of the `agent` world. Import it into the app module."""

    def describe(self) -> entrypoint.AgentInfo:
        return _the_agent().info

    def run(self, request: entrypoint.RunRequest) -> str:
        given = request.input
        messages = [user(given.value)] if isinstance(given, types.AgentInput_Text) else given.value
        try:
            return _the_agent().run(Request(messages, request.conversation_id))
        except GlassboxError as error:
            raise Err(to_wit(error)) from None
        except Exception as error:
            # Leaving the component, it would trap the instance.
            raise Err(to_wit(Crashed(report_uncaught(error)))) from None


def _the_agent() -> _Registered:
    if not _registered:
        raise RuntimeError("no function is marked `@agent` in this component")
    return _registered[0]
