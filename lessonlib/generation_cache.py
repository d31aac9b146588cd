"""A disk cache of greedy replies: re-running a notebook does not generate the same text twice.

Greedy decoding is deterministic, so the replies of one model (and adapter) to one batch of
conversations are the same every time on one machine. Notebooks 02 and 05 score zero-shot,
few-shot and retrieval prompts on the same held-out recipes, which takes a while each time; a learner who
re-runs a notebook, or instructors' ``pytest --nbval`` after the browser test, asks for exactly the same
batches. With this cache the second time takes milliseconds and the
model is not even loaded.

Scope and limits:

* Only greedy replies are cached (``temperature`` 0); sampling always generates.
* The key holds everything the text depends on: the model's files (names, sizes and modification
  times of the folder; a rebuilt model cache has new times), the adapter's *content* (a retrained
  adapter in the same folder gets new entries, an identical retrain hits), the device, torch /
  transformers / peft versions, the generation settings, the batch (left padding makes a reply
  depend a little on its batch mates) and :data:`VERSION`, raised when the generation code
  changes what it produces.
* Models named by Hub id are not cached (their files are not ours to fingerprint cheaply).
* Each entry keeps the seconds the generation took, so latency figures stay the measured ones.
* ``LESSONLIB_GENERATION_CACHE=0`` turns it off; entries live in ``<cache>/generations`` (see
  :mod:`lessonlib.settings`) and can be deleted at any time.
* It keeps at most :data:`MAX_BYTES` on disk: past that, the entries used longest ago go first (a hit
  marks its entry as used).

>>> import os, tempfile
>>> os.environ["LESSONLIB_CACHE"] = tempfile.mkdtemp()
>>> key = entry_key({"model": "demo", "batch": [[{"role": "user", "content": "hi"}]]})
>>> lookup(key) is None
True
>>> store(key, ["hello"], 1.25)
>>> lookup(key)
(['hello'], 1.25)
>>> del os.environ["LESSONLIB_CACHE"]
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from . import settings
from .system import package_version

#: Raised whenever a change to the generation code changes the text it produces for the same inputs.
VERSION = 2

_MODEL_FILES = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja")
#: The most the cache keeps on disk (a whole course's replies take well under 1 MB).
MAX_BYTES = 32 << 20


def enabled() -> bool:
    """Whether replies are cached (``LESSONLIB_GENERATION_CACHE`` unset or not ``0``/``false``/``off``)."""
    return settings.get("LESSONLIB_GENERATION_CACHE")


def folder() -> Path:
    """Where the entries live: ``<lessonlib cache>/generations``."""
    return settings.cache_dir() / "generations"


def model_fingerprint(source: str) -> str | None:
    """Names, sizes and modification times of a model folder's files; ``None`` for a Hub id."""
    path = Path(source)
    if not path.is_dir():
        return None
    stats = [(f.name, f.stat()) for f in sorted(path.iterdir()) if f.is_file() and f.suffix in _MODEL_FILES]
    parts = [(name, stat.st_size, stat.st_mtime_ns) for name, stat in stats]
    return hashlib.sha256(json.dumps([str(path.resolve()), parts]).encode()).hexdigest()


def adapter_fingerprint(adapter: Path) -> str:
    """SHA-256 of an adapter folder's configuration and weights (a few MB for LoRA: milliseconds)."""
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        file = adapter / name
        if file.is_file():
            digest.update(name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str | None]:
    """The packages a reply depends on (read once a process: each lookup scans the installed metadata)."""
    return {package: package_version(package) for package in ("torch", "transformers", "peft")}


def entry_key(payload: dict[str, Any]) -> str:
    """The entry name for everything a reply depends on (``payload``, plus versions and :data:`VERSION`)."""
    full = {"version": VERSION, "packages": _versions(), **payload}
    return hashlib.sha256(json.dumps(full, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _path(key: str) -> Path:
    return folder() / key[:2] / f"{key}.json"


def lookup(key: str) -> tuple[list[str], float] | None:
    """The cached replies and the seconds they took, or ``None`` (missing, unreadable or switched off)."""
    if not enabled():
        return None
    try:
        entry = json.loads(_path(key).read_text(encoding="utf-8"))
        replies, seconds = entry["replies"], float(entry["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
        return None
    try:
        os.utime(_path(key))  # used now: the last to go when the cache is pruned
    except OSError:
        pass
    return replies, seconds


def store(key: str, replies: list[str], seconds: float) -> None:
    """Save an entry atomically; a read-only or full disk only means no caching."""
    if not enabled():
        return
    target = _path(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, suffix=".tmp", delete=False) as handle:
            json.dump({"replies": replies, "seconds": round(seconds, 4)}, handle, ensure_ascii=False)
        os.replace(handle.name, target)
        prune()
    except OSError:
        pass


def prune(max_bytes: int | None = None) -> int:
    """Delete the entries used longest ago until the cache holds at most ``max_bytes`` (:data:`MAX_BYTES`); how many went."""
    limit = MAX_BYTES if max_bytes is None else max_bytes
    entries = []
    for path in folder().glob("*/*.json"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime_ns, stat.st_size, path))
    total, removed = sum(size for _time, size, _entry in entries), 0
    for _time, size, path in sorted(entries):
        if total <= limit:
            break
        path.unlink(missing_ok=True)
        total, removed = total - size, removed + 1
    return removed
