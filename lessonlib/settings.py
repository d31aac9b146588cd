"""Where things live and which switches are on: folders, environment variables, offline mode.

This module knows nothing about models, data or training; everything else asks it for paths and for
the ``LESSONLIB_*`` variables. Every variable is in :data:`VARIABLES` with its kind, its default and a
line of documentation, and is read through :func:`get`, one parser for all: a flag is on for ``1``,
``true``, ``yes`` or ``on`` and off for ``0``, ``false``, ``no`` or ``off`` (``auto`` or empty: its
default); a value that does not parse is an error that names the variable. ``lessonlib doctor`` lists
them with their values, and the README's table is :func:`table` (a test keeps the two equal).

>>> import os
>>> os.environ["LESSONLIB_CACHE"] = "/tmp/demo-cache"
>>> str(cache_dir())
'/tmp/demo-cache'
>>> del os.environ["LESSONLIB_CACHE"]
>>> VARIABLES["LESSONLIB_SERVICE_PORT"].default
8765
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LessonError
from .i18n import _, language

#: Environment variables that hold secrets: we report whether they are set, never their values.
KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Variable:
    """One ``LESSONLIB_*`` environment variable: how it is read and what it does."""

    name: str
    kind: str  # "path", "flag", "int", "float", "choice", "list" or "text"
    default: Any  # the value when unset or empty (None: decided where it is used, said in ``doc``)
    doc: str  # one line: what it changes
    choices: tuple[str, ...] = ()  # the values a "choice" takes


#: Every variable lessonlib reads, in the order the README lists them.
VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("LESSONLIB_CACHE", "path", None, "lessonlib's cache: the converted model, the reply cache, the service's state "
             "(default `$XDG_CACHE_HOME/lessonlib` or `~/.cache/lessonlib`)"),
    Variable("LESSONLIB_RUNS", "path", Path("runs"), "the parent folder of training runs"),
    Variable("LESSONLIB_OFFLINE", "flag", False, "never touch the network (no probe, no Hub download); `HF_HUB_OFFLINE=1` "
             "implies it"),
    Variable("LESSONLIB_LANG", "choice", None, "the language lessonlib speaks (default: the locale, else English)",
             ("en", "fr")),
    Variable("LESSONLIB_GENERATION_CACHE", "flag", True, "keep greedy replies in `<cache>/generations` and reuse them; "
             "`0` always generates"),
    Variable("LESSONLIB_GENERATE", "choice", "auto", "where replies are generated: `service` (the local service), `here` "
             "(this process) or `auto` (the service for a notebook kernel that holds no torch)", ("auto", "here", "service")),
    Variable("LESSONLIB_GENERATION_DTYPE", "choice", None, "generate in `float32` or `bfloat16` (default: bf16 where the "
             "CPU or GPU has it natively)", ("float32", "bfloat16")),
    Variable("LESSONLIB_DEVICE", "text", None, "the torch device to use, e.g. `cpu` (default: `cuda` when a GPU is usable)"),
    Variable("LESSONLIB_PLOTS", "choice", "auto", "where charts are drawn: `service`, `here` or `auto` (the service for a "
             "notebook kernel, so that it holds no matplotlib)", ("auto", "here", "service")),
    Variable("LESSONLIB_MEASURES", "flag", True, "`off`: training uses TRL's recipe alone, without lessonlib's speed and "
             "memory measures"),
    Variable("LESSONLIB_CPU_WITHOUT", "list", (), "CPU features to act as if missing: `avx512_bf16,amx` plays a CPU without "
             "native bf16; `avx512` a laptop's AVX2-only CPU, torch's kernels included (it sets `ATEN_CPU_CAPABILITY`, "
             "`ONEDNN_MAX_CPU_ISA` and `MKL_ENABLE_INSTRUCTIONS` for every process started after it)"),
    Variable("LESSONLIB_CGROUP_ROOT", "path", Path("/sys/fs/cgroup"), "where the container's memory and CPU limits are read"),
    Variable("LESSONLIB_RUN_CACHE", "path", None, "a folder where finished training runs are kept and replayed when an "
             "identical run starts (the test suite sets it)"),
    Variable("LESSONLIB_SERVICE_PORT", "int", 8765, "the local service's port"),
    Variable("LESSONLIB_SERVICE_STATE", "path", None, "the local service's folder (default `<cache>/service`)"),
    Variable("LESSONLIB_SERVICE_KEY", "text", "local", "the key a notebook kernel sends to the local service"),
    Variable("LESSONLIB_SERVICE_MAX_JOBS", "int", None, "fine-tuning jobs that may wait or run at once in the service, all "
             "learners together (default: 8 for one learner; with `--keys`, each learner's limit times the learners)"),
    Variable("LESSONLIB_SERVICE_MAX_JOBS_PER_LEARNER", "int", 3, "fine-tuning jobs each learner of a class (`--keys`) may "
             "have waiting or running at once"),
    Variable("LESSONLIB_SERVICE_LAUNCHER", "text", None, "the command that starts each training job of the service, e.g. "
             "`torchrun --nproc_per_node 2` or `accelerate launch --num_processes 8` (default: one Python process)"),
    Variable("LESSONLIB_SERVICE_IDLE_UNLOAD", "float", 120.0, "seconds without a chat request before the service gives "
             "its model's memory back (`0` keeps it)"),
)}


def get(name: str) -> Any:
    """The value of the variable ``name`` (one of :data:`VARIABLES`), parsed by its kind; its default when unset or empty.

    >>> os.environ["LESSONLIB_CPU_WITHOUT"] = "avx512_bf16, amx"
    >>> get("LESSONLIB_CPU_WITHOUT")
    ('avx512_bf16', 'amx')
    >>> del os.environ["LESSONLIB_CPU_WITHOUT"]
    """
    variable = VARIABLES[name]
    raw = os.environ.get(name, "").strip()
    if variable.name == "LESSONLIB_LANG":
        return language() if raw else None  # i18n reads it (it must not fail: error messages go through it)
    if not raw:
        return variable.default
    kind = variable.kind
    if kind == "path":
        return Path(raw).expanduser()
    if kind == "text":
        return raw
    if kind == "list":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    lowered = raw.lower()
    if kind == "flag":
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        if lowered == "auto":
            return variable.default
        raise _invalid(variable, raw, "1, 0, on, off, true, false, yes, no or auto")
    if kind == "choice":
        if lowered in variable.choices:
            return lowered
        raise _invalid(variable, raw, ", ".join(variable.choices))
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        raise _invalid(variable, raw, _("a whole number") if kind == "int" else _("a number")) from None


def _invalid(variable: Variable, raw: str, allowed: str) -> LessonError:
    return LessonError(_("{name}={value!r} is not a value it takes").format(name=variable.name, value=raw),
                       fix=_("unset it, or set it to {allowed}").format(allowed=allowed))


def table() -> str:
    """The variables as a Markdown table (the README's)."""
    def default(variable: Variable) -> str:
        value = variable.default
        if value is None or value == ():
            return "—"
        if isinstance(value, bool):
            return "on" if value else "off"
        return f"`{value}`"

    rows = ["| variable | what it changes | default |", "| --- | --- | --- |"]
    rows += [f"| `{v.name}` | {v.doc} | {default(v)} |" for v in VARIABLES.values()]
    return "\n".join(rows)


def _flag(name: str) -> bool:
    """A flag outside the registry (another library's, such as ``HF_HUB_OFFLINE``): on for 1, true, yes or on."""
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
    explicit = get("LESSONLIB_CACHE")
    if explicit:
        return explicit
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
    return get("LESSONLIB_RUNS")


def offline() -> bool:
    """True when the learner (or a test) asked us never to use the network."""
    return get("LESSONLIB_OFFLINE") or _flag("HF_HUB_OFFLINE") or _flag("TRANSFORMERS_OFFLINE")


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
