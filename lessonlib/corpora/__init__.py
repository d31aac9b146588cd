"""The project's own data sets, generated from a seed: ``recipes`` and ``sql``.

``write(name, folder)`` writes ``train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` (and, for
``sql``, the database text ``kitchen.sql``). The committed files in ``data/`` are exactly what
``lessonlib data generate NAME`` writes, so they can be rebuilt, checked and extended.

>>> sorted(SPLITS)
['test', 'train', 'valid']
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..settings import data_dir

#: Default split sizes (train / valid / test).
SPLITS = {"train": 200, "valid": 50, "test": 50}
NAMES = ("recipes", "sql")
SEED = 18  # the lesson's number


def dumps(record: dict[str, Any]) -> str:
    """One JSONL line as this project writes it (UTF-8, no ASCII escapes)."""
    return json.dumps(record, ensure_ascii=False)


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(dumps(record) + "\n")
            count += 1
    return count


def generate(name: str, n: int, *, seed: int = SEED) -> list[dict[str, Any]]:
    """``n`` examples of data set ``name`` (``recipes`` or ``sql``)."""
    if name == "recipes":
        from . import recipes

        return [{"messages": e["messages"]} for e in recipes.generate(n, seed=seed)]
    if name == "sql":
        from . import sql

        return sql.generate(n, seed=seed)
    raise ValueError(f"unknown data set {name!r}: choose one of {', '.join(NAMES)}")


def write(name: str, folder: Path | None = None, *, seed: int = SEED, sizes: dict[str, int] | None = None) -> dict[str, Path]:
    """Generate data set ``name`` and write its splits; returns the files written."""
    sizes = sizes or SPLITS
    folder = Path(folder) if folder else data_dir() / name
    written: dict[str, Path] = {}
    if name == "sql":
        from . import sql

        (folder).mkdir(parents=True, exist_ok=True)
        (folder / "kitchen.sql").write_text(sql.build_database_sql(seed), encoding="utf-8")
        written["database"] = folder / "kitchen.sql"
        examples = sql.generate(sum(sizes.values()), seed=seed, db=sql.connect((folder / "kitchen.sql").read_text(encoding="utf-8")))
    else:
        examples = generate(name, sum(sizes.values()), seed=seed)
    start = 0
    for split, size in sizes.items():
        written[split] = folder / f"{split}.jsonl"
        write_jsonl(examples[start:start + size], written[split])
        start += size
    return written


def split_path(name: str, split: str) -> Path:
    """Path of a committed split, e.g. ``split_path("recipes", "train")``."""
    return data_dir() / name / f"{split}.jsonl"
