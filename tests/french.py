"""What the French tests share: how much of a text is still English prose."""

from __future__ import annotations

import re

#: Words that mark English prose (and are not French words).
ENGLISH_WORDS = {"the", "and", "with", "is", "are", "this", "that", "of", "to", "which", "when", "what", "you", "your",
                 "it", "its", "for", "from", "on", "in", "an", "be", "can", "not", "each", "every", "first", "then"}


def english_share(text: str) -> float:
    """The share of English marker words among the words of ``text`` (code, links, placeholders and italics left out:
    a French notebook quotes the tutorials' English titles and steps in italics, as French typography sets titles)."""
    text = re.sub(r"```.*?```|`[^`]*`|<code>.*?</code>|\]\([^)]*\)|\{[^{}]*\}|<[^>]+>", " ", text, flags=re.S)
    text = re.sub(r"(?<![*\w])\*(?!\*)[^*\n]+\*(?![*\w])", " ", text)  # italics: titles of works, quoted originals
    words = re.findall(r"[A-Za-zÀ-ÿ']+", text.lower())
    return sum(w in ENGLISH_WORDS for w in words) / max(len(words), 1)
