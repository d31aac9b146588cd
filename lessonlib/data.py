"""The data doctor: read, validate, count, convert and split chat fine-tuning files.

Scope. OpenAI's chat fine-tuning format, one JSON object per line::

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "...", "weight": 1}]}

with everything the current format allows: ``name``, ``weight`` (0 or 1, assistant messages),
``tool_calls`` and ``tool`` messages, legacy ``function_call``, top-level ``tools``,
``functions`` and ``parallel_tool_calls``, and content as a list of text parts.

:func:`validate` streams the file once, never stops at the first problem and never raises for bad
data: every problem becomes a :class:`Finding` with the line number, a stable ``code`` (see
:data:`CODES`) and a plain message. It also counts tokens exactly as the OpenAI cookbook does
(in batches, see :mod:`lessonlib.tokens`) and prices the training job (:mod:`lessonlib.costs`).
Memory stays flat as the file grows: lines are processed in chunks; only 8-byte fingerprints (for
duplicates), one integer per example (token lengths) and at most ``max_per_code`` stored findings
per code are kept.

>>> report = validate(split_path("recipes", "train"), model="gpt-4o-mini")   # doctest: +SKIP
>>> report.ok, report.examples, report.tokens.total                           # doctest: +SKIP
(True, 200, 25817)
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import tokens as tok
from .corpora import split_path  # noqa: F401  (re-exported for notebooks: data.split_path)
from .errors import LessonError
from .i18n import N_, _
from .settings import display_path

try:  # a fast JSON parser when present (it is in requirements.txt); the standard one otherwise
    import orjson

    _loads = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)

except ImportError:  # pragma: no cover
    _loads = json.loads
    _JSONError = (json.JSONDecodeError,)


#: How a finding is labelled in a report (the key is what CODES and the JSON say).
SEVERITIES = {"error": N_("error"), "warning": N_("warning"), "note": N_("note")}
#: Every finding code: (severity, what it means). Codes are stable: tests and tools rely on them.
CODES: dict[str, tuple[str, str]] = {
    # the file as a whole
    "file_empty": ("error", N_("the file holds no examples")),
    "too_few_examples": ("warning", N_("fewer examples than the provider's minimum")),
    # one line
    "blank_line": ("note", N_("a blank line (skipped)")),
    "bad_encoding": ("error", N_("the line is not valid UTF-8")),
    "invalid_json": ("error", N_("the line is not valid JSON")),
    "data_type": ("error", N_("an example (or a message) is not a JSON object")),
    "unrecognized_top_level_key": ("error", N_("a key other than messages, tools, functions, parallel_tool_calls")),
    "missing_messages_list": ("error", N_("no 'messages' list")),
    "empty_messages": ("error", N_("the 'messages' list is empty")),
    "bad_tools": ("error", N_("'tools' / 'parallel_tool_calls' have the wrong shape")),
    # one message
    "message_missing_key": ("error", N_("a message lacks 'role' or 'content'")),
    "message_unrecognized_key": ("error", N_("a message has a key the format does not know")),
    "unrecognized_role": ("error", N_("a role other than system, user, assistant, tool, function")),
    "missing_content": ("error", N_("a message's content is empty")),
    "content_wrong_type": ("error", N_("content is neither text nor a list of text parts")),
    "field_wrong_type": ("error", N_("name, tool_call_id or function_call has the wrong type")),
    "bad_weight": ("error", N_("weight must be 0 or 1, on assistant messages only")),
    "bad_tool_call": ("error", N_("a tool call lacks its id, type or function name/arguments")),
    "tool_call_id_mismatch": ("error", N_("tool messages and the assistant's tool calls do not match up")),
    "example_missing_assistant_message": ("error", N_("no assistant message to learn from")),
    # warnings
    "no_trainable_message": ("warning", N_("every assistant message has weight 0: nothing is learned")),
    "no_system_message": ("warning", N_("no system message")),
    "no_user_message": ("warning", N_("no user message: the model learns answers to no question")),
    "duplicate_example": ("warning", N_("the same example (the same line) appears earlier in the file")),
    "too_long": ("warning", N_("longer than the model's training context: it would be truncated")),
    "personal_data": ("warning", N_("text that looks like an e-mail address or a phone number")),
    "secret": ("warning", N_("text that looks like an API key or access token")),
}

TOP_LEVEL_KEYS = {"messages", "tools", "functions", "parallel_tool_calls"}
MESSAGE_KEYS = {"role", "content", "name", "function_call", "tool_calls", "tool_call_id", "weight"}
ROLES = {"system", "user", "assistant", "tool", "function"}
PROVIDER_MINIMUM = {"openai": 10, "azure": 10, "local": 1}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d .()-]{8,24}\d")  # a run of digits and separators; checked further below
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECRET = re.compile(r"(?:sk-|AKIA|gh[pousr]_|xox[baprs]-|AIza)[A-Za-z0-9_-]{16,}")


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about one line of a data file; ``line`` is None for the whole file."""

    line: int | None  # 1-based line number in the file
    code: str  # stable identifier, a key of CODES
    message: str  # plain-language explanation, naming the message index where relevant

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.severity} {self.code}: {self.message}"


@dataclass
class TokenStats:
    """Token lengths of the valid examples (cookbook counting for OpenAI, chat template locally)."""

    per_example: array = field(default_factory=lambda: array("I"))  # one count per valid example
    assistant: int = 0  # tokens in assistant messages (what the model learns to produce)
    estimated: bool = False  # some values (tool calls, content parts) were estimated

    @property
    def total(self) -> int:
        return sum(self.per_example)

    def summary(self) -> dict[str, float]:
        n = len(self.per_example)
        if not n:
            return {"min": 0, "max": 0, "mean": 0.0}
        return {"min": min(self.per_example), "max": max(self.per_example), "mean": round(self.total / n, 1)}

    def percentile(self, q: float) -> int:
        values = sorted(self.per_example)
        return values[min(len(values) - 1, int(q * len(values)))] if values else 0


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


# --------------------------------------------------------------------------------------------
# Checking one example
# --------------------------------------------------------------------------------------------


def _is_text_parts(content: Any) -> bool:
    return isinstance(content, list) and bool(content) and all(
        isinstance(p, dict) and p.get("type", "text") == "text" and isinstance(p.get("text"), str) for p in content
    )


_PLAIN_KEYS = {"role", "content"}
_PLAIN_ROLES = {"system", "user", "assistant"}


def _plain_and_valid(obj: Any) -> bool:
    """Fast path for the common case: only role/content strings, known roles, an assistant reply."""
    if type(obj) is not dict or len(obj) != 1:
        return False
    messages = obj.get("messages")
    if type(messages) is not list or not messages:
        return False
    assistant = False
    for m in messages:
        if type(m) is not dict or m.keys() != _PLAIN_KEYS:
            return False
        role, content = m["role"], m["content"]
        if role not in _PLAIN_ROLES or type(content) is not str or not content.strip():
            return False
        assistant = assistant or role == "assistant"
    return assistant


def check_example(obj: Any, line: int | None = None) -> list[Finding]:
    """Format errors of one parsed example (no token or file-level checks). Pure; never raises.

    >>> [f.code for f in check_example({"messages": [{"role": "user", "content": "hi"}]})]
    ['example_missing_assistant_message']
    """
    if _plain_and_valid(obj):
        return []
    found: list[Finding] = []

    def add(code: str, message: str) -> None:
        found.append(Finding(line, code, message))

    if not isinstance(obj, dict):
        add("data_type", _("the line is a JSON {kind}, not an object with a 'messages' list").format(kind=type(obj).__name__))
        return found
    for key in obj:
        if key not in TOP_LEVEL_KEYS:
            add("unrecognized_top_level_key", _("unknown key '{key}' (allowed: {allowed})").format(key=key, allowed=", ".join(sorted(TOP_LEVEL_KEYS))))
    if "tools" in obj and not (isinstance(obj["tools"], list) and all(isinstance(t, dict) for t in obj["tools"])):
        add("bad_tools", _("'tools' must be a list of objects"))
    if "parallel_tool_calls" in obj and not isinstance(obj["parallel_tool_calls"], bool):
        add("bad_tools", _("'parallel_tool_calls' must be true or false"))
    messages = obj.get("messages")
    if not isinstance(messages, list):
        add("missing_messages_list", _("no 'messages' list") if messages is None else _("'messages' is a {kind}, not a list").format(kind=type(messages).__name__))
        return found
    if not messages:
        add("empty_messages", _("'messages' is an empty list"))
        return found

    open_calls: dict[str, int] = {}  # tool call id -> index of the assistant message that made it
    assistant_seen = trainable = False
    for i, msg in enumerate(messages, start=1):
        if not isinstance(msg, dict):
            add("data_type", _("message {i} is a JSON {kind}, not an object").format(i=i, kind=type(msg).__name__))
            continue
        role = msg.get("role")
        unknown = [k for k in msg if k not in MESSAGE_KEYS]
        for key in unknown:
            add("message_unrecognized_key", _("message {i} has unknown key '{key}'").format(i=i, key=key))
        if role is None:
            add("message_missing_key", _("message {i} has no 'role'").format(i=i))
        elif role not in ROLES:
            add("unrecognized_role", _("message {i} has role {role}; use system, user, assistant or tool").format(i=i, role=repr(role)))
        calls = msg.get("tool_calls")
        makes_call = role == "assistant" and (calls is not None or msg.get("function_call") is not None)
        if "content" not in msg:
            if not makes_call:
                add("message_missing_key", _("message {i} ({role}) has no 'content'").format(i=i, role=role))
        else:
            content = msg["content"]
            if content is None:
                if not makes_call:
                    add("missing_content", _("message {i} ({role}) has null content").format(i=i, role=role))
            elif isinstance(content, str):
                if not content.strip() and not makes_call:
                    add("missing_content", _("message {i} ({role}) has empty content").format(i=i, role=role))
            elif not _is_text_parts(content):
                add("content_wrong_type", _("message {i} content is a {kind}; use a string or a list of {parts} parts").format(
                    i=i, kind=type(content).__name__, parts='{"type": "text", "text": ...}'))
        if "name" in msg and not isinstance(msg["name"], str):
            add("field_wrong_type", _("message {i} 'name' must be a string").format(i=i))
        if "function_call" in msg and not isinstance(msg["function_call"], dict):
            add("field_wrong_type", _("message {i} 'function_call' must be an object").format(i=i))
        if "weight" in msg:
            weight = msg["weight"]
            if isinstance(weight, bool) or weight not in (0, 1):
                add("bad_weight", _("message {i} has weight {weight}; only 0 or 1 are allowed").format(i=i, weight=repr(weight)))
            elif role != "assistant":
                add("bad_weight", _("message {i} ({role}) has a weight; only assistant messages can").format(i=i, role=role))
        if role == "assistant":
            assistant_seen = True
            if msg.get("weight", 1) != 0:
                trainable = True
            if calls is not None:
                if not isinstance(calls, list) or not calls:
                    add("bad_tool_call", _("message {i} 'tool_calls' must be a non-empty list").format(i=i))
                else:
                    for j, call in enumerate(calls, start=1):
                        fn = call.get("function") if isinstance(call, dict) else None
                        if not (isinstance(call, dict) and isinstance(call.get("id"), str) and call.get("type", "function") == "function"
                                and isinstance(fn, dict) and isinstance(fn.get("name"), str) and isinstance(fn.get("arguments"), str)):
                            add("bad_tool_call", _("message {i} tool call {j} needs an 'id', type 'function' and a function 'name' and 'arguments' (a JSON string)").format(i=i, j=j))
                            continue
                        open_calls[call["id"]] = i
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str):
                add("tool_call_id_mismatch", _("message {i} (tool) has no 'tool_call_id'").format(i=i))
            elif call_id not in open_calls:
                add("tool_call_id_mismatch", _("message {i} answers tool call '{call_id}', which no earlier assistant message made").format(i=i, call_id=call_id))
            else:
                del open_calls[call_id]
        elif "tool_call_id" in msg:
            add("field_wrong_type", _("message {i} ({role}) has a 'tool_call_id'; only tool messages do").format(i=i, role=role))
    for call_id, i in open_calls.items():
        add("tool_call_id_mismatch", _("tool call '{call_id}' from message {i} is never answered by a tool message").format(call_id=call_id, i=i))
    if not assistant_seen:
        add("example_missing_assistant_message", _("no assistant message: the model has nothing to learn from this example"))
    elif not trainable:
        add("no_trainable_message", _("every assistant message has weight 0"))
    return found


def _mask(text: str) -> str:
    """Show the shape of a sensitive string, never the string."""
    return text[:2] + "…" + f"({len(text)} characters)"


def _looks_like_phone(candidate: str) -> bool:
    """10-15 digits, written the way phone numbers are (a leading +, ( or 0, or - / . separators)."""
    digits = sum(c.isdigit() for c in candidate)
    if not 10 <= digits <= 15 or _DATE.search(candidate):
        return False
    return candidate[0] in "+(0" or "-" in candidate or "." in candidate


def scan_sensitive(texts: Sequence[str], line: int | None) -> list[Finding]:
    """Warnings for e-mail addresses, phone numbers and API keys (their values are masked)."""
    found: list[Finding] = []
    text = "\n".join(texts)  # one scan per example: the regexes run in C
    for match in _SECRET.finditer(text):
        found.append(Finding(line, "secret", _("something that looks like an API key or token ({masked}); remove it").format(masked=_mask(match.group()))))
    if "@" in text:
        for match in _EMAIL.finditer(text):
            found.append(Finding(line, "personal_data", _("an e-mail address ({masked})").format(masked=_mask(match.group()))))
    for match in _PHONE.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if not (before.isalnum() or after.isalnum() or before == "/") and _looks_like_phone(match.group()):
            found.append(Finding(line, "personal_data", _("a phone number ({masked})").format(masked=_mask(match.group()))))
    return found


# --------------------------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------------------------


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
    from . import costs

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


# --------------------------------------------------------------------------------------------
# Converting and splitting
# --------------------------------------------------------------------------------------------

FORMATS = ("openai", "hf", "prompt-completion", "autotrain")


def to_prompt_completion(example: dict[str, Any]) -> dict[str, Any]:
    """Chat example -> TRL's conversational prompt/completion pair (the last assistant turn is the completion).

    >>> to_prompt_completion({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]})
    {'prompt': [{'role': 'user', 'content': '2+2?'}], 'completion': [{'role': 'assistant', 'content': '4'}]}
    """
    messages = example["messages"]
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return {"prompt": messages[:last], "completion": [messages[last]]}


def from_prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    """Prompt/completion pair (conversational or plain strings) -> chat example."""
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    if not isinstance(prompt, list) or not isinstance(completion, list):
        raise LessonError(_("a prompt/completion record needs 'prompt' and 'completion' (strings or message lists)"))
    return {"messages": prompt + completion}


def to_hf_dataset(examples: Sequence[dict[str, Any]]):
    """A ``datasets.Dataset`` with a ``messages`` column (what TRL's SFTTrainer takes)."""
    from datasets import Dataset

    return Dataset.from_list([{"messages": e["messages"]} for e in examples])


def _read_any(path: Path) -> list[dict[str, Any]]:
    """Examples from an OpenAI JSONL file, a prompt/completion JSONL file or a saved HF dataset folder."""
    if path.is_dir():
        from datasets import load_from_disk

        try:
            return [{"messages": row["messages"]} for row in load_from_disk(str(path))]
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise LessonError(_("{path} is not a saved dataset with a 'messages' column ({exc})").format(path=path, exc=exc), exit_code=2) from None
    records: list[dict[str, Any]] = []
    for line, obj, findings in iter_examples(path):
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            raise LessonError(_("{path}: {error}").format(path=path, error=errors[0]), fix=_("run `lessonlib data validate {path}`").format(path=path))
        if obj is None:
            continue
        if isinstance(obj, dict) and "prompt" in obj and "messages" not in obj:
            obj = from_prompt_completion(obj)
        problems = [f for f in check_example(obj, line) if f.severity == "error"]
        if problems:
            raise LessonError(_("{path}: {problem}").format(path=path, problem=problems[0]), fix=_("run `lessonlib data validate {path}`").format(path=path))
        records.append(obj)
    return records


def convert(source: str | Path, target: str | Path, to: str) -> Path:
    """Convert a data file between formats; returns what was written.

    ``openai``: chat JSONL. ``prompt-completion``: TRL's conversational pairs, JSONL. ``hf``: a
    ``datasets`` folder (``save_to_disk``). ``autotrain``: a folder with ``train.jsonl`` holding a
    ``messages`` column, as AutoTrain's ``llm-sft`` task reads it (``column_mapping: text_column:
    messages`` with a chat template).
    """
    from .corpora import write_jsonl

    if to not in FORMATS:
        raise LessonError(_("unknown format '{to}'").format(to=to), fix=_("use one of: {names}").format(names=', '.join(FORMATS)), exit_code=2)
    examples = _read_any(Path(source))
    target = Path(target)
    if to == "openai":
        write_jsonl(examples, target)
    elif to == "prompt-completion":
        write_jsonl((to_prompt_completion(e) for e in examples), target)
    elif to == "hf":
        to_hf_dataset(examples).save_to_disk(str(target))
    else:  # autotrain
        target.mkdir(parents=True, exist_ok=True)
        write_jsonl(examples, target / "train.jsonl")
    return target


def split(
    path: str | Path, *, valid: float = 0.1, test: float = 0.0, seed: int = 18, out_dir: str | Path | None = None
) -> dict[str, Path]:
    """Shuffle (seeded) and split a file into ``NAME.train.jsonl``, ``NAME.valid.jsonl`` [, ``NAME.test.jsonl``]."""
    from .corpora import write_jsonl

    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise LessonError(_("valid ({valid}) and test ({test}) must be fractions that leave room for training").format(valid=valid, test=test), exit_code=2)
    path = Path(path)
    examples = read_examples(path)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_valid, n_test = round(len(examples) * valid), round(len(examples) * test)
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    folder = Path(out_dir) if out_dir else path.parent
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.stem
    written = {}
    for name in ("train", "valid", "test"):
        if name == "test" and not test:
            continue
        written[name] = folder / f"{stem}.{name}.jsonl"
        write_jsonl((examples[i] for i in sorted(parts[name])), written[name])
    return written
