"""The other agents an agent may call (the `agent` world): in this host or in
another; each call runs in the callee's own sandbox, in the caller's trace."""

from __future__ import annotations

from glassbox.bindings.imports import agents as _wit
from glassbox.bindings.imports import types
from glassbox.errors import host_call
from glassbox.llm import Conversation

AgentCard = _wit.AgentCard


def available() -> list[AgentCard]:
    """The agents this agent may call, in name order."""
    return _wit.list()


def invoke(name: str, task: Conversation, conversation_id: str | None = None) -> str:
    """Runs the agent `name` on `task` (text, or a conversation) and returns its
    answer. Without `conversation_id` the callee joins this conversation."""
    given = (
        types.AgentInput_Text(task) if isinstance(task, str) else types.AgentInput_Messages(list(task))
    )
    return host_call(_wit.invoke, name, given, conversation_id)
