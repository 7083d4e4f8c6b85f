"""{{name}}: a Glassbox agent. It offers the model the tools it is granted,
runs the calls the model asks for, and answers when the model stops asking."""

from glassbox import GlassboxError, Timeout, chat, tool_result, tools
from glassbox.agent import Entrypoint, Request, agent  # noqa: F401 (importing Entrypoint exports the agent)

MAX_STEPS = 8


@agent(name="{{name}}")
def run(request: Request) -> str:
    """Answers with the tools it is granted."""
    messages = list(request.messages)
    granted = tools.definitions()
    for _ in range(MAX_STEPS):
        reply = chat(messages, tools=granted).message
        messages.append(reply)
        if not reply.tool_calls:
            return reply.content
        for call in reply.tool_calls:
            try:
                result = tools.answer(call)
            except GlassboxError as error:
                result = f"The tool failed ({error})"
            messages.append(tool_result(call, result))
    raise Timeout(f"no answer within {MAX_STEPS} steps")
