"""The model: `chat` for a whole answer, `stream` for one in pieces, `embed`
for vectors, and builders for the messages of a conversation. The host picks
the provider and default model and records each call as a `chat` span."""

from __future__ import annotations

from typing import Iterator, Sequence, TypedDict, Union, Unpack

from glassbox.bindings.imports import llm as _wit
from glassbox.bindings.imports import types
from glassbox.errors import host_call

Message = types.ChatMessage
ToolCall = types.ToolCall
ToolDefinition = types.ToolDefinition
ChatResponse = _wit.ChatResponse

#: A conversation, or a single user message as plain text.
Conversation = Union[str, Sequence[Message]]


def system(text: str) -> Message:
    """Instructions that frame the conversation."""
    return Message(types.Role.SYSTEM, text, [], None)


def user(text: str) -> Message:
    """A message from the person (or program) talking to the agent."""
    return Message(types.Role.USER, text, [], None)


def assistant(text: str, tool_calls: Sequence[ToolCall] = ()) -> Message:
    """A message from the model."""
    return Message(types.Role.ASSISTANT, text, list(tool_calls), None)


def tool_result(call: ToolCall, content: str) -> Message:
    """The answer to the model's tool call `call`."""
    return Message(types.Role.TOOL, content, [], call.id)


class ChatOptions(TypedDict, total=False):
    """What a request may set besides its messages; the host's defaults fill the rest."""

    #: Tools the model may ask to call (for an agent: `glassbox.tools.definitions()`).
    tools: Sequence[ToolDefinition]
    #: The model to use instead of the host's default.
    model: str
    temperature: float
    max_tokens: int
    top_p: float
    #: Sequences at which the model stops generating.
    stop: Sequence[str]
    seed: int


def chat(messages: Conversation, **options: Unpack[ChatOptions]) -> ChatResponse:
    """Sends the conversation to the model and waits for the whole answer.

    The answer's message is `response.message` (`.content`, `.tool_calls`).
    """
    return host_call(_wit.chat, _request(messages, options))


class stream:
    """An answer read as it arrives: iterating yields text (`str`) and complete
    tool calls (`ToolCall`); afterwards `response` holds the whole answer, as
    `chat` would have returned it. Leaving early abandons the call."""

    def __init__(self, messages: Conversation, **options: Unpack[ChatOptions]) -> None:
        self._chunks = host_call(_wit.stream_chat, _request(messages, options))
        #: The whole answer, once the stream has been read to its end.
        self.response: ChatResponse | None = None

    def __iter__(self) -> Iterator[Union[str, ToolCall]]:
        while self.response is None:
            chunk = host_call(self._chunks.next)
            if chunk is None:
                return
            if isinstance(chunk, _wit.ChatChunk_Done):
                self.response = chunk.value
            else:
                yield chunk.value


def embed(
    texts: Sequence[str], *, model: str | None = None, dimensions: int | None = None
) -> list[list[float]]:
    """One vector per text, in order."""
    request = _wit.EmbeddingsRequest(model, list(texts), dimensions)
    return host_call(_wit.embeddings, request).embeddings


def _request(messages: Conversation, options: ChatOptions) -> _wit.ChatRequest:
    unknown = options.keys() - ChatOptions.__annotations__.keys()
    if unknown:
        raise TypeError(f"unknown chat options: {', '.join(sorted(unknown))}")
    conversation = [user(messages)] if isinstance(messages, str) else list(messages)
    return _wit.ChatRequest(
        model=options.get("model"),
        messages=conversation,
        tools=list(options.get("tools", ())),
        temperature=options.get("temperature"),
        max_tokens=options.get("max_tokens"),
        top_p=options.get("top_p"),
        stop_sequences=list(options.get("stop", ())),
        seed=options.get("seed"),
    )
