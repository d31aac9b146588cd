"""API keys: found in the environment, a git-ignored ``.env`` file or a password prompt; never shown.

Rules this module enforces for the whole package: a key is read only when a request is about to
be sent; it is never printed, logged, returned in a result, stored in a notebook output or written
to disk by us. :func:`redact` removes any key we know of from text before it is shown (error
messages from HTTP libraries sometimes echo headers).

>>> import os
>>> os.environ["OPENAI_API_KEY"] = "sk-test-" + "x" * 24
>>> redact("header was " + os.environ["OPENAI_API_KEY"])
'header was ***'
>>> del os.environ["OPENAI_API_KEY"]
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LessonError
from ..i18n import _
from ..settings import KEY_VARIABLES, repo_root


def _dotenv_values() -> dict[str, str]:
    """The variables of ``.env`` in the current folder or the repository root (the first found), read by
    python-dotenv as a shell reads them (quotes, ``export``, inline comments); the environment is left alone."""
    from dotenv import dotenv_values

    for folder in (Path.cwd(), repo_root()):
        path = folder / ".env"
        if path.is_file():
            return {name: value for name, value in dotenv_values(path).items() if value is not None}
    return {}


def find(name: str) -> str | None:
    """The value of a secret variable from the environment, then ``.env``; None when absent."""
    value = os.environ.get(name, "").strip() or _dotenv_values().get(name, "").strip()
    return value or None


def require(name: str, *, prompt: bool = False) -> str:
    """A secret, or a clear error saying where to put it. ``prompt=True`` asks with a hidden prompt."""
    value = find(name)
    if value is None and prompt:
        import getpass

        try:
            value = getpass.getpass(f"{name} (input hidden, kept in memory only): ").strip() or None
        except (EOFError, KeyboardInterrupt):
            value = None
        if value:
            os.environ[name] = value  # this process only; never written anywhere
    if value is None:
        raise LessonError(
            _("{name} is not set").format(name=name),
            fix=_("export {name}=... in your shell, or put it in a .env file (git-ignored), then retry; without it, "
                  "use --dry-run").format(name=name),
        )
    return value


def redact(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    for name in KEY_VARIABLES + ("AZURE_OPENAI_AD_TOKEN", "AZURE_MANAGEMENT_TOKEN"):
        value = find(name)
        if value and len(value) >= 8 and name != "AZURE_OPENAI_ENDPOINT":
            text = text.replace(value, "***")
    return text
