"""Checking one example: the finding codes, what the format allows, sensitive data."""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..corpora import split_path  # noqa: F401  (re-exported for notebooks: data.split_path)
from ..i18n import N_, _

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
