"""Notebook 03 · prepare your data: its exercises and their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..i18n import N_, _
from .core import Hint, exercise


@exercise("03.1", 1, N_("Fix the second broken file"), answer="path", setup='''
import json
from pathlib import Path

from lessonlib import corpora, data

broken2 = corpora.split_path("examples", "broken-recipes-2")
''', solution='''
fixed = []
for text in broken2.read_text(encoding="utf-8").splitlines():
    row = json.loads(text)
    row.pop("id", None)                                        # unrecognized_top_level_key
    for message in row["messages"]:
        if "text" in message:                                  # message_missing_key / message_unrecognized_key
            message["content"] = message.pop("text")
        message["role"] = message["role"].lower()              # unrecognized_role ('User', 'Assistant')
        if isinstance(message["content"], list):               # content_wrong_type
            message["content"] = json.dumps(message["content"], ensure_ascii=False)
    has_reply = any(m["role"] == "assistant" for m in row["messages"])
    if has_reply and all(m["content"].strip() for m in row["messages"]):
        fixed.append(row)                                      # nothing to learn from the others: dropped
path = Path("runs/fixed-recipes-2.jsonl")
path.parent.mkdir(exist_ok=True)
path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\\n" for row in fixed), encoding="utf-8")
''', wrong='''
path = broken2
''')
def _check_fixed_file(path: Any) -> str:
    from .. import data

    report = data.validate(Path(path))
    if report.error_count:
        first = report.errors[0]
        raise Hint(_("the data doctor still finds {error_count} error(s); the first: {first}. Fix it in your loop and "
                     "write the file again.").format(error_count=report.error_count, first=first))
    if report.valid_examples < 8:
        raise Hint(_("the file is clean but keeps {valid_examples} of 10 examples. Only two have nothing to learn from "
                     "(no reply, an empty question): repair the others instead of dropping them.").format(valid_examples=report.valid_examples))
    if report.valid_examples > 8:
        raise Hint(_("two examples cannot be repaired (one has no reply, one an empty question): drop them."))
    return _("8 clean examples out of 10: every fixable line fixed, the two with nothing to learn dropped.")


@exercise("03.2", 2, N_("Write your own check"), answer="reply_is_json_list", solution='''
import json

def reply_is_json_list(example):
    """True when the last message is the assistant's and its content is a JSON list of strings."""
    last = example["messages"][-1]
    if last["role"] != "assistant":
        return False
    try:
        value = json.loads(last["content"])
    except json.JSONDecodeError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
''', wrong='''
def reply_is_json_list(example):
    return example["messages"][-1]["content"].startswith("[")
''')
def _check_reply_check(reply_is_json_list: Any) -> str:
    def ex(*messages: tuple[str, str]) -> dict[str, Any]:
        return {"messages": [{"role": role, "content": content} for role, content in messages]}

    cases = [
        (ex(("user", "r"), ("assistant", '["flour", "egg"]')), True, "a JSON list of strings"),
        (ex(("user", "r"), ("assistant", "flour, egg")), False, "plain text"),
        (ex(("user", "r"), ("assistant", '["flour", "egg"')), False, "a list cut off before its ']'"),
        (ex(("user", "r"), ("assistant", '[1, 2]')), False, "a list of numbers"),
        (ex(("user", "r"), ("assistant", '{"a": 1}')), False, "a JSON object"),
        (ex(("assistant", '["flour"]'), ("user", "thanks")), False, "a conversation that ends with the user"),
    ]
    for example, expected, what in cases:
        result = reply_is_json_list(example)
        if not isinstance(result, bool):
            raise Hint(_("your function returned {result!r}: make it `return True` or `return False`.").format(result=result))
        if result != expected:
            raise Hint(_("for {what} it should return {expected}. Parse the reply with `json.loads` (in a try) instead of "
                         "looking at its first character.").format(what=what, expected=expected))
    return _("it passes six cases, from a good reply to a list cut off mid-way. "
             "`lessonlib.train.compare.is_json_list` does the same.")
