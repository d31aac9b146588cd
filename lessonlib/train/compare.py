"""Before and after: the base model's and the tuned model's answers to the same prompts.

>>> rows = before_after([], adapter="runs/x")
>>> rows
[]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import LessonError
from ..i18n import _
from ..prompting import split_example, zero_shot_messages


def is_json_list(text: str) -> bool:
    """True when ``text`` parses as a JSON list (the recipe task's answer format)."""
    try:
        return isinstance(json.loads(text), list)
    except (json.JSONDecodeError, TypeError):
        return False


def before_after(examples: Sequence[dict[str, Any]], *, adapter: str | None = None, model: str | None = None,
                 max_new_tokens: int = 60, tuned: Any = None, tokenizer: Any = None,
                 on_stage: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """For each chat example: its prompt, the expected answer, the base model's and the tuned model's replies.

    The replies come from ``model`` (a name, the default model if None) without and with ``adapter``
    (a folder), through :mod:`lessonlib.models`; or, given ``tuned`` (a ``PeftModel`` you loaded) and
    its ``tokenizer``, from that model with its adapter switched off (``disable_adapter()``) and on:
    a kernel that holds it already loads nothing more. ``on_stage`` is told "base model", then "tuned
    model", as each starts answering (a view shows it: each takes seconds per prompt on a CPU).
    """
    from .. import models

    stage = on_stage or (lambda _name: None)

    prompts = [zero_shot_messages(example) for example in examples]
    if tuned is not None:
        if tokenizer is None:
            raise LessonError(_("before_after(tuned=...) needs the model's tokenizer too"), fix=_("pass tokenizer=..."))
        stage("base model")
        with tuned.disable_adapter():
            base = models.replies_from(tuned, tokenizer, prompts, max_new_tokens=max_new_tokens)
        stage("tuned model")
        after = models.replies_from(tuned, tokenizer, prompts, max_new_tokens=max_new_tokens)
    elif adapter:
        stage("base model")
        base = models.generate_many(prompts, model=model, max_new_tokens=max_new_tokens)
        stage("tuned model")
        after = models.generate_many(prompts, model=model, adapter=adapter, max_new_tokens=max_new_tokens)
    else:
        raise LessonError(_("before_after needs an adapter folder or a tuned model"), fix=_("pass adapter='runs/...' or tuned=peft_model"))
    rows = []
    for example, before, tuned_reply in zip(examples, base, after):
        _system, turns, answer = split_example(example)
        rows.append({"prompt": turns[-1]["content"] if turns else "", "expected": answer["content"] if answer else "",
                     "base": before, "tuned": tuned_reply})
    return rows
