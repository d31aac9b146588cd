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
from functools import lru_cache
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


@lru_cache(maxsize=None)
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
