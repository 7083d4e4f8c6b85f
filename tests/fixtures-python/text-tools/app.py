"""A tool plugin written in Python, for the host's tests of Python guests:
`word_stats` counts words and finds the longest inside a custom span,
`fail` refuses with a tool error, and `explode` raises, which the plugin turns
into a tool error instead of letting it trap the instance."""

import json
import traceback

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import telemetry, types


def _schema(properties: dict, required: list) -> str:
    return json.dumps({"type": "object", "properties": properties, "required": required})


DEFINITIONS = [
    types.ToolDefinition(
        name="word_stats",
        description="Counts the words of a text and finds the longest.",
        parameters=_schema({"text": {"type": "string"}}, ["text"]),
    ),
    types.ToolDefinition(
        name="fail",
        description="Always refuses, with a tool error.",
        parameters=_schema({}, []),
    ),
    types.ToolDefinition(
        name="explode",
        description="Raises an exception.",
        parameters=_schema({}, []),
    ),
]


def word_stats(arguments: dict) -> str:
    words = arguments["text"].split()
    with telemetry.Span(
        "word_stats.count",
        [telemetry.Attribute("words.count", telemetry.Value_S64(len(words)))],
    ):
        longest = max(words, key=len) if words else ""
    return json.dumps({"words": len(words), "longest": longest})


def fail(arguments: dict) -> str:
    raise Err(types.Error_ToolFailed("refused, as asked"))


def explode(arguments: dict) -> str:
    raise ValueError("the explode tool always raises")


TOOLS = {"word_stats": word_stats, "fail": fail, "explode": explode}


class Tool(exports.Tool):
    def definitions(self) -> list:
        return DEFINITIONS

    def invoke(self, name: str, arguments: str, call_id) -> str:
        try:
            return TOOLS[name](json.loads(arguments))
        except Err:
            raise
        except Exception as error:
            # An uncaught exception would trap the instance: report it instead.
            telemetry.log(telemetry.Level.ERROR, traceback.format_exc(), [])
            raise Err(types.Error_ToolFailed(f"{type(error).__name__}: {error}"))
