"""The language lessonlib speaks to the learner: English, or French through a gettext catalogue.

Scope: every message a widget, a decision or the command line shows goes through :func:`_` (or
:func:`ngettext`); messages written at import time are marked with :func:`N_` and translated where they
are shown. The catalogue is ``lessonlib/locale/<language>/LC_MESSAGES/lessonlib.po`` (gettext's PO
format, edited by translators; Babel extracts the messages: ``make translations``). It is read with Babel
when a language other than English is first used, so ``import lessonlib`` loads no catalogue. Values the
code compares (a decision's ``recommendation``, a strategy's name) stay English; only what is shown is
translated.

The language, in order: :func:`set_language` (a French notebook's first cell), ``LESSONLIB_LANG``, the
locale (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else English. :func:`set_language` also
sets ``LESSONLIB_LANG`` so that the processes lessonlib starts (training, the command line) speak the same.

>>> set_language("fr")
'fr'
>>> _("Send")
'Envoyer'
>>> ngettext("{n} warning", "{n} warnings", 2).format(n=2)
'2 avertissements'
>>> set_language("en")
'en'
>>> _("Send")
'Send'
>>> set_language(None) in LANGUAGES  # back to what the environment says
True
"""

from __future__ import annotations

import gettext
import io
import os
import re
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: The languages the course speaks (English is the messages themselves).
LANGUAGES = ("en", "fr")
#: Where the catalogues are: ``<LOCALE_DIR>/<language>/LC_MESSAGES/lessonlib.po``.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "lessonlib"

_chosen: str | None = None


def _from_locale() -> str:
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            code = value.split(":")[0].split("_")[0].split(".")[0].lower()
            return code if code in LANGUAGES else "en"
    return "en"


def language() -> str:
    """The language messages are shown in now: ``"en"`` or ``"fr"``."""
    if _chosen:
        return _chosen
    wanted = os.environ.get("LESSONLIB_LANG", "").strip().lower()
    if wanted:
        return wanted if wanted in LANGUAGES else "en"
    return _from_locale()


def set_language(code: str | None) -> str:
    """Speak ``code`` (``"en"`` or ``"fr"``; ``None``: back to the environment's choice) and return it.

    The learner asks for it by name, so it lasts: for this process and the processes it starts.
    """
    global _chosen
    if code is None:
        _chosen = None
        os.environ.pop("LESSONLIB_LANG", None)
        return language()
    code = code.strip().lower().split("_")[0].split("-")[0]
    if code not in LANGUAGES:
        raise ValueError(f"language {code!r}: lessonlib speaks {', '.join(LANGUAGES)}")
    _chosen = code
    os.environ["LESSONLIB_LANG"] = code
    return code


def catalogue_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(code: str) -> gettext.NullTranslations:
    """The catalogue of ``code`` as gettext translations (English: the messages themselves).

    Fuzzy entries (a translation of an older message) are not used: the English message shows instead.
    """
    path = catalogue_path(code)
    if code == "en" or not path.is_file():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as handle:
        catalog = read_po(handle, locale=code, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _(message: str) -> str:
    """``message`` in the current language (the English message when the catalogue lacks it)."""
    return translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the current language."""
    return translations(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it now (a constant translated where shown)."""
    return message


# ------------------------------------------------------------------------------------------------
# Code a learner reads: its comments and prose strings are translated, its code never
# ------------------------------------------------------------------------------------------------

#: Comments that are instructions to tools, not prose.
TOOL_COMMENTS = re.compile(r"^#\s*(noqa|type:|doctest|fmt:|pragma)")


def is_prose(token: str) -> bool:
    """A string token a reader reads: a word of three letters or more, and a space or a closing ``:``, ``.`` or ``,`` outside
    the f-string's ``{...}`` (so ``"recipes"``, ``"zero-shot"`` or ``"runs/05-recipes"`` are code, not prose).

    >>> is_prose('"only 20 examples"'), is_prose('"Recommendation:"'), is_prose('"runs/05-recipes"'), is_prose("f'{x:>8}'")
    (True, True, False, False)
    """
    text = re.sub(r"\{[^{}]*\}", "", token.lstrip("rbfuRBFU").strip("'\""))
    return bool(re.search(r"[A-Za-zÀ-ÿ]{3,}", text)) and (" " in text or text.rstrip().endswith((":", ".", ",")))


@dataclass(frozen=True)
class Piece:
    """A comment or a prose string of some code: what a translation replaces."""

    start: tuple[int, int]  # (row, column) of the token, as tokenize counts
    end: tuple[int, int]
    msgid: str  # a comment's text after "# ", or a string token's source (quotes included)
    kind: str  # "comment" or "string"


def pieces(source: str) -> list[Piece]:
    """The comments and one-line prose strings of ``source``, in order (docstrings and IPython lines are left alone).

    >>> [p.msgid for p in pieces('x = 1  # one\\nprint("a sentence here")')]
    ['one', '"a sentence here"']
    """
    found: list[Piece] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return found
    for token in tokens:
        if token.type == tokenize.COMMENT and not TOOL_COMMENTS.match(token.string):
            text = token.string[1:].strip()
            if text:
                found.append(Piece(token.start, token.end, text, "comment"))
        elif token.type == tokenize.STRING and is_prose(token.string) and not token.string.lstrip("rbfuRBFU").startswith(('"""', "'''")):
            found.append(Piece(token.start, token.end, token.string, "string"))
    return found


def translate_code(source: str, table: Mapping[str, str] | Callable[[str], str] | None = None) -> str:
    """``source`` with each comment and prose string translated (by ``table``, else the current language's catalogue).

    A piece ``table`` lacks keeps its English; the code around it is never touched.
    """
    lookup = table.get if isinstance(table, Mapping) else table or _
    lines = source.splitlines(keepends=True)
    for piece in reversed(pieces(source)):
        new = lookup(piece.msgid)
        if not new or new == piece.msgid:
            continue
        if piece.kind == "comment":
            new = "# " + new
        (row, col), (end_row, end_col) = piece.start, piece.end
        if row != end_row:  # a string over several lines: rebuild from the joined text
            head, tail = "".join(lines[:row - 1]), "".join(lines[end_row:])
            first, last = lines[row - 1], lines[end_row - 1]
            lines = (head + first[:col] + new + last[end_col:] + tail).splitlines(keepends=True)
        else:
            line = lines[row - 1]
            lines[row - 1] = line[:col] + new + line[end_col:]
    return "".join(lines)
