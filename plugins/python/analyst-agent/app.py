"""An analyst agent, in Python: reasons in steps, calls the tools it is
granted (in any language: computing with the code runner, measuring text,
looking up weather), feeds their results back, and answers once the model
stops asking for tools. Each step is a span, so the trace groups model and
tool calls by step; a failed tool call becomes text the model can react to."""

from glassbox import Timeout, ToolCall, GlassboxError, chat, log, span, system, tool_result, tools
from glassbox.agent import Entrypoint, Request, agent  # noqa: F401 (importing Entrypoint exports the agent)

MAX_STEPS = 8
INSTRUCTIONS = (
    "You are a careful analyst. Compute with the tools instead of guessing: run "
    "Python for arithmetic and data, measure texts with the text tools. Then answer briefly."
)


@agent(name="analyst-agent", version="0.1.0")
def analyst(request: Request) -> str:
    """Answers questions about data and text by computing with tools."""
    messages = [system(INSTRUCTIONS), *request.messages]
    granted = tools.definitions()
    for step in range(1, MAX_STEPS + 1):
        with span("analyst.step", attributes={"analyst.step": step}) as current:
            reply = chat(messages, tools=granted).message
            current.set(attributes={"analyst.tool_calls": len(reply.tool_calls)})
            messages.append(reply)
            if not reply.tool_calls:
                return reply.content
            messages.extend(tool_result(call, _run(call)) for call in reply.tool_calls)
    raise Timeout(f"no final answer within {MAX_STEPS} steps")


def _run(call: ToolCall) -> str:
    try:
        return tools.answer(call)
    except GlassboxError as error:
        log(f"tool `{call.name}` failed: {error}", level="warn", attributes={"gen_ai.tool.call.id": call.id})
        return f"The tool failed ({error})"
