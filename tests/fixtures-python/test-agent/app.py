"""An agent written in Python with the SDK, for the host's tests of Python
agents. Its input is a command: `explode` (raise an exception no code
catches), `refuse` (raise the SDK's NotAllowed), `stream TEXT` (stream the
model's answer to TEXT and say what arrived), `call TOOL JSON` (report what a
tool call returned or how it failed)."""

import json

from glassbox import GlassboxError, NotAllowed, log, stream, tools
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
        pieces = list(answer)
        log("streamed", pieces=len(pieces))
        return f"{len(pieces)} pieces: {''.join(pieces)} ({answer.response.finish_reason.name.lower()})"
    if command == "call":
        name, _, arguments = argument.partition(" ")
        try:
            return "ok: " + tools.call(name, json.loads(arguments or "{}"))
        except GlassboxError as error:
            return f"{type(error).__name__}: {error}"
    raise NotAllowed(f"unknown command `{command}`")
