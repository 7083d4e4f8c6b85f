"""A tool plugin written in Python with the SDK, for the host's tests of
Python guests: `word_stats` counts words and finds the longest inside a custom
span, `fail` refuses with a tool error, `explode` raises (which the SDK turns
into a tool error instead of letting it trap the instance), and `repeat` takes
a bounded integer and an enum."""

from enum import Enum
from typing import Literal

from glassbox import ToolFailed, span
from glassbox.tool import Tool, tool  # noqa: F401 (importing Tool exports the tools)


@tool
def word_stats(text: str) -> dict[str, object]:
    """Counts the words of a text and finds the longest.

    Args:
        text: The text to look at.
    """
    words = text.split()
    with span("word_stats.count", attributes={"words.count": len(words)}):
        longest = max(words, key=len) if words else ""
    return {"words": len(words), "longest": longest}


@tool
def fail() -> str:
    """Always refuses, with a tool error."""
    raise ToolFailed("refused, as asked")


@tool
def explode() -> str:
    """Raises an exception."""
    raise ValueError("the explode tool always raises")


class Case(Enum):
    UPPER = "upper"
    LOWER = "lower"


@tool(name="repeat")
def repeat_text(text: str, times: int = 2, case: Case = Case.LOWER, separator: Literal[" ", "-"] = " ") -> str:
    """Repeats a text.

    Args:
        text: What to repeat.
        times: How many times.
        case: The case of the result.
        separator: What goes between the repeats.
    """
    shaped = text.upper() if case is Case.UPPER else text.lower()
    return separator.join([shaped] * times)
