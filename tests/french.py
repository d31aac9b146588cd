"""What the French tests share: how much of a text is still English prose, and which tokens of code a translation keeps."""

from __future__ import annotations

import io
import re
import tokenize

from lessonlib.i18n import is_prose

#: Words that mark English prose (and are not French words).
ENGLISH_WORDS = {"the", "and", "with", "is", "are", "this", "that", "of", "to", "which", "when", "what", "you", "your",
                 "it", "its", "for", "from", "on", "in", "an", "be", "can", "not", "each", "every", "first", "then"}


def english_share(text: str) -> float:
    """The share of English marker words among the words of ``text`` (code, links, placeholders and italics left out:
    a French notebook quotes the tutorials' English titles and steps in italics, as French typography sets titles)."""
    text = re.sub(r"```.*?```|`[^`]*`|<code>.*?</code>|\]\([^)]*\)|\{[^{}]*\}|<[^>]+>", " ", text, flags=re.DOTALL)
    text = re.sub(r"(?<![*\w])\*(?!\*)[^*\n]+\*(?![*\w])", " ", text)  # italics: titles of works, quoted originals
    words = re.findall(r"[A-Za-zÀ-ÿ']+", text.lower())
    return sum(w in ENGLISH_WORDS for w in words) / max(len(words), 1)


def code_tokens(source: str) -> list[tuple[int, str]]:
    """The tokens of some code that a translation may not change: comments dropped, prose strings replaced by a marker."""
    out = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            continue
        out.append((token.type, "<prose>" if token.type == tokenize.STRING and is_prose(token.string) else token.string))
    return out
