"""A learner's own file, whatever its shape, as chat examples: JSONL, CSV/TSV or a saved 🤗 dataset folder.

Shapes read:

* chat JSONL in OpenAI's format, and prompt/completion JSONL (plain strings or message lists), through
  :func:`lessonlib.data.conversion.read_any` (the data doctor's own reader);
* CSV and TSV, with or without a header, UTF-8 (with or without a BOM) or Latin-1, quoted fields, and
  the empty columns a spreadsheet export leaves at the end of each row (the separator is sniffed);
* a folder written by ``datasets``' ``save_to_disk``: with a ``messages`` column, or any columns.

A table needs the learner to name its ``input`` and ``output`` columns (a file without a header names
them ``1``, ``2``, …); a wrong name is refused with the list of the file's columns. ``system`` adds a
system prompt to every example.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "spam.csv"
>>> _ = path.write_bytes('v1,v2,,,\\nham,"Ok lar... Joking wif u oni...",,,\\nspam,Free entry in 2 a wkly comp,,,\\n'.encode("latin-1"))
>>> table = read_table(path, input="v2", output="v1")
>>> table.columns, table.encoding, len(table.examples)
(['v1', 'v2'], 'utf-8', 2)
>>> table.examples[1]["messages"][-1]
{'role': 'assistant', 'content': 'spam'}
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LessonError
from ..i18n import _

#: File endings read as JSONL (anything else that is not a folder is read as a table).
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass
class Table:
    """What :func:`read_table` read: the examples and how the file was understood."""

    examples: list[dict[str, Any]]  # chat examples ({"messages": [...]}), in the file's order
    shape: str  # "chat", "prompt-completion", "csv", "tsv" or "dataset"
    columns: list[str] = field(default_factory=list)  # a table's column names (empty for chat JSONL)
    encoding: str = "utf-8"  # the text encoding found
    lines: list[int] = field(default_factory=list)  # each example's line (row) number in the file, for messages


def _decode(path: Path, raw: bytes) -> tuple[str, str]:
    """The file's text and encoding: UTF-8 (a BOM allowed), else Latin-1; a binary file is refused."""
    if not raw.strip():
        raise LessonError(_("{path} is empty").format(path=path), fix=_("give a file with one example per line"), exit_code=2)
    if b"\x00" in raw[:4096]:
        raise LessonError(_("{path} is a binary file, not text").format(path=path),
                          fix=_("export it as CSV, TSV or JSONL (a spreadsheet's File > Save as... CSV)"), exit_code=2)
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if sum(1 for c in text if not c.isprintable() and c not in "\r\n\t") > len(text) / 100:
        raise LessonError(_("{path} is a binary file, not text").format(path=path),
                          fix=_("export it as CSV, TSV or JSONL (a spreadsheet's File > Save as... CSV)"), exit_code=2)
    return text, "latin-1"


def _rows(path: Path, text: str) -> tuple[list[list[str]], str]:
    """The table's rows (trailing empty cells removed) and its shape, csv or tsv."""
    sample = text[:20000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" or sample.count("\t") > sample.count(",") else csv.excel
    rows = []
    for row in csv.reader(io.StringIO(text, newline=""), dialect):
        while row and not row[-1].strip():
            row.pop()
        rows.append(row)
    return rows, "tsv" if dialect.delimiter == "\t" else "csv"


def _has_header(rows: list[list[str]], input: str | None, output: str | None) -> bool:
    """A first row holding the named columns is a header; unnamed, csv's heuristic decides."""
    first = [cell.strip() for cell in rows[0]]
    if input in first or output in first:
        return True
    if input is not None and output is not None and all(name.isdigit() for name in (input, output)):
        return False
    body = rows[1:50]
    if not body:
        return False
    # a header's cells are short names, unlike the rows below them; a label column repeats, a header does not
    width = max(len(r) for r in rows[:50])
    score = 0
    for i in range(width):
        values = [r[i] for r in body if i < len(r)]
        if not values or i >= len(first):
            continue
        score += 1 if first[i] not in values and len(first[i]) <= max(12, min(len(v) for v in values)) else -1
    return score > 0


def _column(names: list[str], name: str | None, role: str, path: Path) -> int:
    if name is None:
        raise LessonError(_("{path} is a table: name its {role} column").format(path=path, role=role),
                          fix=_("add --input COLUMN --output COLUMN; its columns: {columns}").format(columns=", ".join(names)), exit_code=2)
    if name not in names:
        raise LessonError(_("{path} has no column '{name}'").format(path=path, name=name),
                          fix=_("use one of its columns: {columns}").format(columns=", ".join(names)), exit_code=2)
    return names.index(name)


def _example(user: str, assistant: str, system: str | None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def _from_records(path: Path, records: list[dict[str, Any]], names: list[str], input: str | None, output: str | None,
                  system: str | None) -> list[dict[str, Any]]:
    i, o = _column(names, input, _("input"), path), _column(names, output, _("output"), path)
    return [_example(str(r.get(names[i], "") or "").strip(), str(r.get(names[o], "") or "").strip(), system) for r in records]


def _with_system(examples: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """Examples with ``system`` as their system prompt (one they have is replaced)."""
    if not system:
        return examples
    return [{"messages": [{"role": "system", "content": system}, *(m for m in e["messages"] if m.get("role") != "system")]}
            for e in examples]


def read_table(path: str | Path, *, input: str | None = None, output: str | None = None, system: str | None = None) -> Table:
    """Read any of the shapes above into chat examples (see the module docstring); bad input is a LessonError, exit 2."""
    path = Path(path)
    if not path.exists():
        raise LessonError(_("no file at {path}").format(path=path), exit_code=2)
    if path.is_dir():
        return _read_dataset(path, input, output, system)
    raw = path.read_bytes()
    text, encoding = _decode(path, raw)
    if path.suffix.lower() in JSONL_SUFFIXES or text.lstrip().startswith("{"):
        from .conversion import read_any

        first = text.lstrip().splitlines()[0]
        shape = "prompt-completion" if '"prompt"' in first and '"messages"' not in first else "chat"
        examples = read_any(path)
        if not examples:
            raise LessonError(_("{path} is empty").format(path=path), fix=_("give a file with one example per line"), exit_code=2)
        return Table(_with_system(examples, system), shape, [], encoding, list(range(1, len(examples) + 1)))
    rows, shape = _rows(path, text)
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise LessonError(_("{path} is empty").format(path=path), fix=_("give a file with one example per line"), exit_code=2)
    header = _has_header(rows, input, output)
    width = max(len(r) for r in rows)
    names = [c.strip() for c in rows[0]] + [str(i + 1) for i in range(len(rows[0]), width)] if header else [str(i + 1) for i in range(width)]
    body = rows[1:] if header else rows
    if not body:
        raise LessonError(_("{path} has a header but no rows").format(path=path), exit_code=2)
    records = [dict(zip(names, r)) for r in body]
    examples = _from_records(path, records, names, input, output, system)
    first = 2 if header else 1
    return Table(examples, shape, names, encoding, list(range(first, first + len(examples))))


def _read_dataset(path: Path, input: str | None, output: str | None, system: str | None) -> Table:
    """A folder written by ``datasets``' ``save_to_disk`` (a DatasetDict's ``train`` split is used)."""
    from datasets import DatasetDict, load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise LessonError(_("{path} is not a saved dataset ({exc})").format(path=path, exc=exc), exit_code=2) from None
    if isinstance(dataset, DatasetDict):
        dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
    names = list(dataset.column_names)
    if "messages" in names and input is None:
        examples = [{"messages": row["messages"]} for row in dataset]
        return Table(_with_system(examples, system), "dataset", names, "utf-8", list(range(1, len(examples) + 1)))
    examples = _from_records(path, list(dataset), names, input, output, system)
    if not examples:
        raise LessonError(_("{path} is empty").format(path=path), exit_code=2)
    return Table(examples, "dataset", names, "utf-8", list(range(1, len(examples) + 1)))
