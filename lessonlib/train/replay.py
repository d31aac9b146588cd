"""One finished run, shared by the identical runs after it: for tools that run the same training twice.

The English and the French notebook run the same code (``tests/test_translations.py`` proves it), so
they train the same runs. ``make test`` and ``make notebooks`` set ``LESSONLIB_RUN_CACHE`` to a folder:
:func:`lessonlib.train.run` then keeps each finished run there (its folder, its progress events, its
result), keyed by everything that decides its numbers, and an identical run later in the same session
copies the folder and replays the events instead of training: a view that follows the events shows
the same progress, losses and times. Unset (a learner's default), nothing is kept or replayed.

What decides a run, and so its key: the run's settings (all but where its files are), the bytes of its
training and validation files, the base model's files, the machine plan (its reasons aside), the numeric path (bf16 or
fp32), ``LESSONLIB_CPU_WITHOUT``, lessonlib's code and the versions of torch, transformers, TRL and PEFT. A
resumed, stopped or failed run is never kept; a run with callbacks of the caller's is never replayed
(they would not see it).

>>> import os
>>> folder() is None or "LESSONLIB_RUN_CACHE" in os.environ
True
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import settings
from ..digest import file_sha256
from .config import RunConfig
from .events import ProgressEvent
from .machine import MachinePlan

#: Settings that say where a run's files are, not what it computes (the files' bytes are in the key).
_PLACE = ("output_dir", "overwrite", "train_file", "valid_file")


def folder() -> Path | None:
    """Where finished runs are kept (``LESSONLIB_RUN_CACHE``), or None: no sharing."""
    return settings.get("LESSONLIB_RUN_CACHE")


def _file_digest(path: str | Path | None) -> str | None:
    return file_sha256(path) if path else None


def _model_digest(model: str) -> str:
    """The base model's identity: its config and the sizes of its files (a folder), or its name (a Hub id)."""
    from .. import models

    resolved = Path(models.resolve(model))
    if not resolved.is_dir():
        return model
    files = sorted((p.name, p.stat().st_size) for p in resolved.iterdir() if p.is_file())
    config = resolved / "config.json"
    return json.dumps([files, _file_digest(config) if config.is_file() else None])


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """lessonlib's own code: any change to it makes a new key (read once a process)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_identity() -> dict[str, Any]:
    """What decides any run's numbers beyond its settings and data: the numeric path, the CPU played, the versions of
    torch, transformers, TRL and PEFT, and lessonlib's code."""
    from .. import __version__, system

    versions = {}
    for package in ("torch", "transformers", "trl", "peft"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "numeric_path": system.cpu_numeric_path(),
        "cpu_without": ",".join(settings.get("LESSONLIB_CPU_WITHOUT")),
        "versions": versions,
        "lessonlib": [__version__, _code_digest()],
    }


def key(cfg: RunConfig, plan: MachinePlan) -> str:
    """What decides the run's numbers, as one digest (see the module docstring)."""
    settings_ = {k: v for k, v in asdict(cfg).items() if k not in _PLACE}
    what = {
        "settings": settings_,
        "train": _file_digest(settings.project_path(cfg.train_file)),
        "valid": _file_digest(settings.project_path(cfg.valid_file)) if cfg.valid_file else None,
        "model": _model_digest(cfg.model),
        # the plan's reasons (and why a measure is skipped) explain, in the learner's language: not part of the numbers
        "plan": {k: sorted(v) if k == "skipped" else v for k, v in asdict(plan).items() if k != "reasons"},
        **run_identity(),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def replayed(digest: str, out: Path, emit: Callable[[ProgressEvent], None]) -> dict[str, Any] | None:
    """The result of the kept run ``digest``, its folder copied into ``out`` and its events replayed; None if none is kept."""
    base = folder()
    kept = base / digest if base else None
    if kept is None or not (kept / "result.json").is_file():
        return None
    shutil.copytree(kept / "run", out, dirs_exist_ok=True)
    for line in (kept / "events.jsonl").read_text(encoding="utf-8").splitlines():
        emit(ProgressEvent(**json.loads(line)))
    result = json.loads((kept / "result.json").read_text(encoding="utf-8"))
    result["output_dir"] = str(out)
    (out / "metrics.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def keep(digest: str, out: Path, events: list[ProgressEvent], result: dict[str, Any]) -> None:
    """Keep a finished run for the identical runs after it (written aside, then renamed: a reader never sees half)."""
    base = folder()
    if base is None or (base / digest).exists():
        return
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=base))
    shutil.copytree(out, staging / "run")
    (staging / "events.jsonl").write_text("".join(json.dumps(asdict(e)) + "\n" for e in events), encoding="utf-8")
    (staging / "result.json").write_text(json.dumps(result, default=str), encoding="utf-8")
    try:
        staging.rename(base / digest)
    except OSError:  # another process kept the same run first
        shutil.rmtree(staging, ignore_errors=True)
