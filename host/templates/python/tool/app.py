"""{{name}}: a Glassbox tool plugin. `count_words` counts the words of a text."""

from glassbox.tool import Tool, tool  # noqa: F401 (importing Tool exports every @tool)


@tool
def count_words(text: str) -> int:
    """Counts the words of a text.

    Args:
        text: The text to count.
    """
    return len(text.split())
