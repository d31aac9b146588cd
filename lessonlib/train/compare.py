"""Before and after: the base model's and the tuned model's answers to the same prompts.

>>> rows = before_after([], adapter="runs/x")
>>> rows
[]
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..prompting import split_example, zero_shot_messages


def is_json_list(text: str) -> bool:
    """True when ``text`` parses as a JSON list (the recipe task's answer format)."""
    try:
        return isinstance(json.loads(text), list)
    except (json.JSONDecodeError, TypeError):
        return False


def before_after(examples: Sequence[dict[str, Any]], *, adapter: str, model: str | None = None, max_new_tokens: int = 60) -> list[dict[str, Any]]:
    """For each chat example: its prompt, the expected answer, the base model's and the tuned model's replies."""
    from .. import models

    rows = []
    for example in examples:
        messages = zero_shot_messages(example)
        _, turns, answer = split_example(example)
        rows.append({
            "prompt": turns[-1]["content"] if turns else "",
            "expected": answer["content"] if answer else "",
            "base": models.generate(messages, model=model, max_new_tokens=max_new_tokens),
            "tuned": models.generate(messages, model=model, adapter=adapter, max_new_tokens=max_new_tokens),
        })
    return rows
