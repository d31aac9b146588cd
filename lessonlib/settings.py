"""Where things live and which switches are on: folders, environment variables, offline mode.

This module knows nothing about models, data or training; everything else asks it for paths.
All locations can be moved with environment variables, so that a read-only home folder, a
shared Binder image or a test's temporary folder all work:

================================  ================================================  ==========================
variable                          meaning                                           default
================================  ================================================  ==========================
``LESSONLIB_CACHE``               where the converted local model is cached         ``~/.cache/lessonlib``
``LESSONLIB_RUNS``                where training runs are written                   ``./runs``
``LESSONLIB_OFFLINE``             ``1``: never touch the network (no probe, no      unset
                                  Hub download); ``HF_HUB_OFFLINE=1`` implies it
``LESSONLIB_GENERATION_CACHE``    ``0``: always generate; otherwise greedy replies  on
                                  are kept in ``<cache>/generations`` and reused
================================  ================================================  ==========================

>>> import os
>>> os.environ["LESSONLIB_CACHE"] = "/tmp/demo-cache"
>>> str(cache_dir())
'/tmp/demo-cache'
>>> del os.environ["LESSONLIB_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variables that hold secrets: we report whether they are set, never their values.
KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT")

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def repo_root() -> Path:
    """The repository checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The project's ``data/`` folder (data sets, price table, SQLite schema)."""
    return repo_root() / "data"


def project_path(path: str | os.PathLike[str]) -> Path:
    """A file path as given if it exists, else relative to the repository, so that notebooks (which
    run in ``notebooks/``) and the command line can both say ``data/recipes/train.jsonl``.

    >>> project_path("data/prices.csv").resolve() == (data_dir() / "prices.csv").resolve()
    True
    """
    candidate = Path(path).expanduser()
    if not candidate.exists() and not candidate.is_absolute() and (repo_root() / candidate).exists():
        return repo_root() / candidate
    return candidate


def cache_dir() -> Path:
    """Root of lessonlib's cache: ``$LESSONLIB_CACHE`` or ``$XDG_CACHE_HOME/lessonlib``."""
    explicit = os.environ.get("LESSONLIB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lessonlib"


def models_dir() -> Path:
    """Folder holding converted models, one sub-folder each."""
    return cache_dir() / "models"


def autotrain_venv() -> Path:
    """The environment ``make autotrain`` makes for AutoTrain, beside the course's: ``.venv-autotrain/``."""
    return repo_root() / ".venv-autotrain"


def autotrain_command() -> Path | None:
    """AutoTrain's ``autotrain`` command: in the environment ``make autotrain`` makes beside the
    course's (``.venv-autotrain/``), else one on ``PATH``; None if neither."""
    import shutil

    own = autotrain_venv() / "bin" / "autotrain"
    if own.exists():
        return own
    found = shutil.which("autotrain")
    return Path(found) if found else None


def runs_dir() -> Path:
    """Default parent folder of training runs: ``$LESSONLIB_RUNS`` or ``./runs``."""
    return Path(os.environ.get("LESSONLIB_RUNS", "runs")).expanduser()


def offline() -> bool:
    """True when the learner (or a test) asked us never to use the network."""
    return _flag("LESSONLIB_OFFLINE") or _flag("HF_HUB_OFFLINE") or _flag("TRANSFORMERS_OFFLINE")


def keys_present() -> dict[str, bool]:
    """Which secret variables are set (non-empty). Values are never read out of this module.

    >>> sorted(keys_present())
    ['AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT', 'OPENAI_API_KEY']
    """
    return {name: bool(os.environ.get(name, "").strip()) for name in KEY_VARIABLES}


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as learners should read it: relative to the repository when inside it.

    >>> display_path(repo_root() / "data" / "prices.csv")
    'data/prices.csv'
    """
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(repo_root()).as_posix()
    except ValueError:
        return str(path)
