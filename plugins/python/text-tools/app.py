"""Text analysis tools, in Python: `text_stats` measures a text (words,
sentences, reading time and Flesch reading ease), and `keywords` finds its
most frequent content words."""

import heapq  # noqa: F401 (Counter.most_common imports it late: bundle it at build time)
import re
from collections import Counter

from glassbox import ToolFailed, span
from glassbox.tool import Tool, tool  # noqa: F401 (importing Tool exports the tools)

WORDS_PER_MINUTE = 230
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves""".split()
)


# Compiled at import, so the build's snapshot holds them and no call compiles a
# pattern: every call runs in a fresh instance, whose `re` cache starts empty.
WORD = re.compile(r"[A-Za-z']+")
VOWEL_GROUP = re.compile(r"[aeiouy]+")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def _words(text: str) -> list[str]:
    return WORD.findall(text)


def _syllables(word: str) -> int:
    # Groups of vowels, less a silent final e: the usual estimate, good to a syllable or so.
    groups = VOWEL_GROUP.findall(word.lower())
    count = len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0)
    return max(count, 1)


@tool
def text_stats(text: str) -> dict[str, object]:
    """Measures a text: words, sentences, average sentence length, reading time
    and Flesch reading ease (0 to 100; higher is easier to read).

    Args:
        text: The text to measure.
    """
    words = _words(text)
    if not words:
        raise ToolFailed("the text has no words to measure")
    sentences = max(len(SENTENCE_END.findall(text)), 1)
    with span("text_stats.syllables", attributes={"text.words": len(words)}):
        syllables = sum(_syllables(word) for word in words)
    ease = 206.835 - 1.015 * len(words) / sentences - 84.6 * syllables / len(words)
    return {
        "words": len(words),
        "sentences": sentences,
        "words_per_sentence": round(len(words) / sentences, 1),
        "reading_seconds": round(len(words) / WORDS_PER_MINUTE * 60),
        "flesch_reading_ease": round(ease, 1),
    }


@tool
def keywords(text: str, top: int = 5) -> list[dict[str, object]]:
    """The most frequent content words of a text (stopwords left out), most frequent first.

    Args:
        text: The text to read.
        top: How many keywords to return, 1 to 50.
    """
    if not 1 <= top <= 50:
        raise ToolFailed(f"top must be between 1 and 50, not {top}")
    counts = Counter(w.lower() for w in _words(text) if w.lower() not in STOPWORDS and len(w) > 2)
    return [{"word": word, "count": count} for word, count in counts.most_common(top)]
