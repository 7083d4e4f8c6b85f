"""An agent written in Python with the SDK, for the host's tests of Python
agents. Its input is a command: `explode` (raise an exception no code
catches), `refuse` (raise the SDK's NotAllowed), `stream TEXT` (stream the
model's answer to TEXT and say what arrived), `call TOOL JSON` (report what a
tool call returned or how it failed), `agents` (list the agents it may call),
`invoke AGENT TEXT` (report another agent's answer or how it failed), `embed
TEXT...` (say what vectors came back)."""

import json

from glassbox import GlassboxError, NotAllowed, agents, embed, log, stream, tools
from glassbox.agent import Entrypoint, Request, agent  # noqa: F401 (importing Entrypoint exports the agent)


@agent(name="python-test-agent")
def run(request: Request) -> str:
    """Does what its input says."""
    command, _, argument = request.text.strip().partition(" ")
    if command == "explode":
        raise RuntimeError("told to explode")
    if command == "refuse":
        raise NotAllowed("told to refuse")
    if command == "stream":
        answer = stream(argument)
        pieces = [piece for piece in answer if isinstance(piece, str)]
        log("streamed", pieces=len(pieces))
        finish = answer.response.finish_reason.name.lower() if answer.response else "unfinished"
        return f"{len(pieces)} pieces: {''.join(pieces)} ({finish})"
    if command == "call":
        name, _, arguments = argument.partition(" ")
        try:
            return "ok: " + tools.call(name, json.loads(arguments or "{}"))
        except GlassboxError as error:
            return f"{type(error).__name__}: {error}"
    if command == "agents":
        return ", ".join(f"{card.name}: {card.description}" for card in agents.available())
    if command == "invoke":
        name, _, task = argument.partition(" ")
        try:
            return "answered: " + agents.invoke(name, task)
        except GlassboxError as error:
            return f"{type(error).__name__}: {error}"
    if command == "embed":
        vectors = embed(argument.split())
        return f"{len(vectors)} vectors of {len(vectors[0])} dimensions, first {vectors[0]}"
    raise NotAllowed(f"unknown command `{command}`")
