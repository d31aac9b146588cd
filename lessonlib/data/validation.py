"""Reading a chat file and validating it whole, in parallel chunks: :func:`validate` and its :class:`DataReport`."""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tokens as tok
from ..errors import LessonError
from ..i18n import _
from ..settings import display_path
from .checks import CODES, PROVIDER_MINIMUM, SEVERITIES, Finding, TokenStats, check_example, scan_sensitive

try:  # a fast JSON parser when present (it is in requirements.txt); the standard one otherwise
    import orjson

    _loads = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)

except ImportError:  # pragma: no cover
    _loads = json.loads
    _JSONError = (json.JSONDecodeError,)


@dataclass
class DataReport:
    """Everything :func:`validate` found out about a file."""

    file: str  # path as given
    model: str  # model the tokens were counted for
    encoding: str  # tokenizer used
    examples: int = 0  # lines that parsed as JSON objects (valid or not)
    valid_examples: int = 0  # examples without errors
    findings: list[Finding] = field(default_factory=list)  # stored findings (capped per code)
    counts: Counter = field(default_factory=Counter)  # exact number of findings per code
    tokens: TokenStats = field(default_factory=TokenStats)
    cost: Any = None  # costs.TrainingCost, when the model has a price
    example_lines: array = field(default_factory=lambda: array("I"))  # line of each entry of tokens.per_example

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "note"]

    @property
    def error_count(self) -> int:
        return sum(n for code, n in self.counts.items() if CODES[code][0] == "error")

    @property
    def warning_count(self) -> int:
        return sum(n for code, n in self.counts.items() if CODES[code][0] == "warning")

    @property
    def ok(self) -> bool:
        """No errors (warnings are allowed)."""
        return self.error_count == 0

    def by_code(self) -> dict[str, list[Finding]]:
        """Stored findings grouped by code, errors first."""
        order = {"error": 0, "warning": 1, "note": 2}
        groups: dict[str, list[Finding]] = {}
        for finding in sorted(self.findings, key=lambda f: (order[f.severity], f.code, f.line or 0)):
            groups.setdefault(finding.code, []).append(finding)
        return groups

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "examples": self.examples,
            "valid_examples": self.valid_examples,
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
            "notes": [f.to_dict() for f in self.notes],
            "counts": dict(sorted(self.counts.items())),
            "tokens": {
                "model": self.model,
                "encoding": self.encoding,
                "total": self.tokens.total,
                "assistant": self.tokens.assistant,
                "estimated": self.tokens.estimated,
                "per_example": self.tokens.summary(),
            },
            "cost": self.cost.to_dict() if self.cost is not None else None,
        }

    def summary(self, max_lines: int = 5) -> str:
        """A human-readable report: verdict, findings grouped by code, tokens, cost."""
        verdict = _("no errors") if self.ok else _("{n} error(s)").format(n=self.error_count)
        examples = _("{n} examples").format(n=self.examples)
        warnings = _("{n} warning(s)").format(n=self.warning_count)
        out = [f"{display_path(self.file)}: {examples}, {verdict}, {warnings}"]
        for code, items in self.by_code().items():
            severity, meaning = CODES[code]
            out.append(f"  {_(SEVERITIES[severity])} {code} x{self.counts[code]}: {_(meaning)}")
            for finding in items[:max_lines]:
                where = _("line {line}").format(line=finding.line) if finding.line is not None else _("file")
                out.append(f"      {where}: {finding.message}")
            if self.counts[code] > min(len(items), max_lines):
                out.append("      " + _("... and {n} more").format(n=self.counts[code] - min(len(items), max_lines)))
        stats = self.tokens.summary()
        approx = _(" (partly estimated)") if self.tokens.estimated else ""
        out.append("  " + _("tokens ({model}, {encoding}){approx}: total {total:,}; per example min {min}, mean {mean}, max {max}").format(
            model=self.model, encoding=self.encoding, approx=approx, total=self.tokens.total, min=stats["min"], mean=stats["mean"], max=stats["max"]))
        if self.cost is not None:
            out.append("  " + _("training cost: {cost}").format(cost=self.cost))
        return "\n".join(out)




def _open(path: Path):
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a folder", str(path))
        return open(path, "rb")
    except OSError as exc:
        raise LessonError(
            _("cannot read {path}: {reason}").format(path=path, reason=exc.strerror or exc),
            fix=_("check the path (a JSONL file, one example per line)"),
            exit_code=2,
        ) from None


def _iter_range(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, Any | None, list[Finding], bytes]]:
    """``(line, object or None, findings, raw bytes)`` for lines starting in ``[start, end)``, numbered from 1."""
    with _open(path) as handle:
        handle.seek(start)
        position = start
        for number, raw in enumerate(handle, start=1):
            if end is not None and position >= end:
                return
            position += len(raw)
            if number == 1 and start == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                yield number, None, [Finding(number, "blank_line", _("blank line skipped"))], raw
                continue
            try:  # the parser also rejects invalid UTF-8: tell the two apart only on failure
                obj = _loads(raw)
            except _JSONError as exc:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as bad:
                    yield number, None, [Finding(number, "bad_encoding", _("byte {n} is not UTF-8; save the file as UTF-8").format(n=bad.start + 1))], raw
                    continue
                yield number, None, [Finding(number, "invalid_json", _("not valid JSON ({problem})").format(problem=str(exc).split(':')[0]))], raw
                continue
            yield number, obj, [], raw


def iter_examples(path: str | Path) -> Iterator[tuple[int, Any | None, list[Finding]]]:
    """Yield ``(line, parsed_object_or_None, line_findings)`` for each line, streaming."""
    for line, obj, findings, _raw in _iter_range(Path(path)):
        yield line, obj, findings


def read_examples(path: str | Path) -> list[dict[str, Any]]:
    """All examples of a file that has no errors; raises :class:`LessonError` listing the first ones."""
    examples: list[dict[str, Any]] = []
    problems: list[Finding] = []
    for line, obj, findings in iter_examples(path):
        problems += [f for f in findings if f.severity == "error"]
        if obj is not None:
            errors = [f for f in check_example(obj, line) if f.severity == "error"]
            problems += errors
            if not errors:
                examples.append(obj)
    if problems:
        shown = "; ".join(str(p) for p in problems[:3])
        raise LessonError(_("{path} has {n_problems} error(s): {shown}").format(path=path, n_problems=len(problems), shown=shown), fix=_("run `lessonlib data validate {path}` to see them all").format(path=path))
    return examples


@dataclass
class _Part:
    """What one pass over a byte range of the file found (line numbers relative to the range)."""

    lines: int = 0
    examples: int = 0
    valid: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    example_lines: array = field(default_factory=lambda: array("I"))
    per_example: array = field(default_factory=lambda: array("I"))
    fingerprints: bytearray = field(default_factory=bytearray)
    assistant: int = 0
    estimated: bool = False

    def add(self, finding: Finding, cap: int) -> None:
        self.counts[finding.code] += 1
        if self.counts[finding.code] <= cap:
            self.findings.append(finding)


def _scan(path: Path, start: int, end: int | None, model: str, context: int | None, cap: int, chunk_size: int, threads: int | None) -> _Part:
    """Check and count one byte range of the file (runs in a worker process for big files)."""
    local = tok.is_local(model)
    counter = None if local else tok.BatchCounter(tok.encoding_for(model), threads=threads)
    part = _Part()
    clean: set[str] = set()  # system prompts already scanned and found clean
    pending: list[tuple[int, list[dict[str, Any]], list[str], list[bool]]] = []

    def record(line: int, total: int) -> None:
        part.example_lines.append(line)
        part.per_example.append(total)
        if context and total > context:
            part.add(Finding(line, "too_long", _("{total:,} tokens; {model} trains on at most {context:,} per example (the rest is cut)").format(
                total=total, model=model, context=context)), cap)

    def flush() -> None:
        if not pending:
            return
        if counter is None:
            for (line, *_), total in zip(pending, tok.count_local([p[1] for p in pending], model)):
                record(line, total)
            pending.clear()
            return
        lengths = counter.lengths([t for p in pending for t in p[2]])
        pos = 0
        for line, messages, ts, mask in pending:
            mine = lengths[pos:pos + len(ts)]
            record(line, tok.cookbook_total(messages, mine))
            part.assistant += sum(n for n, a in zip(mine, mask) if a)
            pos += len(ts)
        pending.clear()

    for line, obj, line_findings, raw in _iter_range(path, start, end):
        part.lines = line
        for finding in line_findings:
            part.add(finding, cap)
        if obj is None:
            continue
        part.examples += 1
        errors = check_example(obj, line)
        for finding in errors:
            part.add(finding, cap)
        if any(f.severity == "error" for f in errors):
            continue
        part.valid += 1
        messages = obj["messages"]
        part.fingerprints += hashlib.blake2b(raw.strip(), digest_size=8).digest()  # same line text = duplicate
        if messages[0].get("role") != "system":
            part.add(Finding(line, "no_system_message", _("no system message (fine if every request you send will lack one too)")), cap)
        if not any(m.get("role") == "user" for m in messages):
            part.add(Finding(line, "no_user_message", _("no user message: the assistant answers nothing that was asked "
                               "(the cookbook's checks count these too)")), cap)
        texts: list[str] = []
        assistant_mask: list[bool] = []
        for m in messages:  # the strings the cookbook encodes, in order (tight loop: this is hot)
            is_assistant = m.get("role") == "assistant"
            for v in m.values():
                text = v if type(v) is str else tok.value_text(v)
                if text is not None:
                    texts.append(text)
                    assistant_mask.append(is_assistant)
        if "tools" in obj or "functions" in obj:
            texts.append(json.dumps(obj.get("tools") or obj.get("functions"), ensure_ascii=False))
            part.estimated = True
        elif any(not isinstance(m.get("content"), (str, type(None))) or "tool_calls" in m or "function_call" in m for m in messages):
            part.estimated = True
        system = messages[0].get("content") if messages[0].get("role") == "system" else None
        system = system if isinstance(system, str) else None
        if system is not None and system not in clean:  # system prompts repeat: scan each once
            found = scan_sensitive([system], line)
            for finding in found:
                part.add(finding, cap)
            if not found and len(clean) < 1000:
                clean.add(system)
        to_scan = [tok.value_text(v) or "" for m in messages for k, v in m.items() if k not in ("role", "weight") and v is not system]
        if "tools" in obj or "functions" in obj:
            to_scan.append(texts[-1])
        for finding in scan_sensitive(to_scan, line):
            part.add(finding, cap)
        pending.append((line, messages, texts, assistant_mask))
        if len(pending) >= chunk_size:
            flush()
    flush()
    if counter is not None:
        counter.close()
    return part


def _ranges(path: Path, parts: int) -> list[tuple[int, int | None]]:
    """Split a file into ``parts`` byte ranges that start at line starts."""
    size = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as handle:
        for i in range(1, parts):
            handle.seek(max(bounds[-1], size * i // parts))
            handle.readline()
            position = handle.tell()
            if position < size and position > bounds[-1]:
                bounds.append(position)
    return [(b, bounds[i + 1] if i + 1 < len(bounds) else None) for i, b in enumerate(bounds)]


#: Files above this size are checked by several processes (where fork is available).
PARALLEL_BYTES = 4_000_000


def _workers(path: Path, local: bool) -> int:
    import multiprocessing
    import os

    if local or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        if path.stat().st_size < PARALLEL_BYTES:
            return 1
    except OSError:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def validate(
    path: str | Path,
    *,
    model: str = "gpt-4o-mini",
    provider: str | None = None,
    epochs: int | None = None,
    min_examples: int | None = None,
    max_per_code: int = 200,
    chunk_size: int = 2048,
    workers: int | None = None,
) -> DataReport:
    """Check a chat fine-tuning file completely and count its tokens for ``model``.

    Big files are split into line-aligned byte ranges checked by ``workers`` forked processes
    (default: one per core, up to 4, for files over 4 MB); results are merged in file order.
    Raises :class:`LessonError` (exit code 2) only when the file cannot be read at all.
    """
    from .. import costs

    path = Path(path)
    _open(path).close()  # unreadable -> LessonError(exit_code=2) before any work
    local = tok.is_local(model)
    encoding = "chat template" if local else tok.encoding_for(model).name
    report = DataReport(file=str(path), model=model, encoding=encoding)
    price = None
    try:
        price = costs.get_price(model, provider)
    except LessonError:
        pass
    context = price.training_context if price else None
    minimum = min_examples if min_examples is not None else PROVIDER_MINIMUM.get(provider or (price.provider if price else "openai"), 10)

    n = workers or _workers(path, local)
    ranges = _ranges(path, n) if n > 1 else [(0, None)]
    if len(ranges) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(ranges), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_scan, path, a, b, model, context, max_per_code, chunk_size, 1) for a, b in ranges]
            parts = [f.result() for f in futures]
    else:
        parts = [_scan(path, 0, None, model, context, max_per_code, chunk_size, None)]

    def add(finding: Finding) -> None:
        report.counts[finding.code] += 1
        stored[finding.code] += 1
        if stored[finding.code] <= max_per_code:
            report.findings.append(finding)

    seen: dict[bytes, int] = {}
    stored: Counter = Counter()
    offset = 0
    for part in parts:
        report.counts.update(part.counts)
        for f in part.findings:
            stored[f.code] += 1
            if stored[f.code] <= max_per_code:
                report.findings.append(Finding(f.line + offset if f.line is not None else None, f.code, f.message))
        fps = part.fingerprints
        for i, line in enumerate(part.example_lines):
            fingerprint = bytes(fps[8 * i:8 * i + 8])
            absolute = line + offset
            if fingerprint in seen:
                add(Finding(absolute, "duplicate_example", _("same example as line {line}").format(line=seen[fingerprint])))
            else:
                seen[fingerprint] = absolute
            report.example_lines.append(absolute)
        report.tokens.per_example.extend(part.per_example)
        report.tokens.assistant += part.assistant
        report.tokens.estimated |= part.estimated
        report.examples += part.examples
        report.valid_examples += part.valid
        offset += part.lines

    if report.examples == 0:
        add(Finding(None, "file_empty", _("no examples in the file")))
    elif report.examples < minimum:
        add(Finding(None, "too_few_examples", _("{n} examples; the provider needs at least {minimum} (50-100 good ones is a better start)").format(
            n=report.examples, minimum=minimum)))
    if price is not None and report.valid_examples:
        billed = costs.billed_tokens(report.tokens.per_example, price)
        report.cost = costs.training_cost(billed, epochs, price, n_examples=report.valid_examples)
    return report
