"""Glassbox agents and tools in Python, built into sandboxed WebAssembly
components with componentize-py. Every model call, tool call, agent call and
span is traced by the host; nothing here instruments anything.

The model, telemetry and errors are here for both worlds; `glassbox.tool`
exports tools (`tool-plugin` world), and `glassbox.agent`, `glassbox.tools`
and `glassbox.agents` serve agents (`agent` world).
"""

from glassbox.errors import (
    BudgetExceeded,
    Crashed,
    GlassboxError,
    InvalidArguments,
    InvalidRequest,
    LimitExceeded,
    NotAllowed,
    NotFound,
    ProviderError,
    RateLimited,
    Timeout,
    ToolFailed,
    Unavailable,
)
from glassbox.llm import (
    ChatOptions,
    ChatResponse,
    Message,
    ToolCall,
    ToolDefinition,
    assistant,
    chat,
    embed,
    stream,
    system,
    tool_result,
    user,
)
from glassbox.telemetry import log, span

__all__ = [
    "BudgetExceeded",
    "ChatOptions",
    "ChatResponse",
    "Crashed",
    "GlassboxError",
    "InvalidArguments",
    "InvalidRequest",
    "LimitExceeded",
    "Message",
    "NotAllowed",
    "NotFound",
    "ProviderError",
    "RateLimited",
    "Timeout",
    "ToolCall",
    "ToolDefinition",
    "ToolFailed",
    "Unavailable",
    "assistant",
    "chat",
    "embed",
    "log",
    "span",
    "stream",
    "system",
    "tool_result",
    "user",
]
