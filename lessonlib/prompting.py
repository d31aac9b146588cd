"""Prompts built from examples: zero-shot and few-shot chat messages (retrieval picks the examples later).

Few-shot prompting puts solved examples in front of the question, as earlier user/assistant
turns; the lesson's question 1 is about its two limits (the context window and the price of
sending the examples every time), and notebook 01 measures both with these prompts.

>>> train = [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]}]
>>> query = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]}
>>> [m["content"] for m in few_shot_messages(train, query, k=1)]
['S', 'q1', 'a1', 'q2']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Message = dict[str, Any]


def split_example(example: dict[str, Any]) -> tuple[Message | None, list[Message], Message | None]:
    """(system message, the turns before the last assistant reply, that reply)."""
    messages = example["messages"]
    system = messages[0] if messages and messages[0].get("role") == "system" else None
    rest = messages[1:] if system else list(messages)
    last = max((i for i, m in enumerate(rest) if m.get("role") == "assistant"), default=None)
    if last is None:
        return system, rest, None
    return system, rest[:last], rest[last]


def zero_shot_messages(query: dict[str, Any]) -> list[Message]:
    """The query's own system message and turns, without its answer."""
    system, turns, _ = split_example(query)
    return ([system] if system else []) + turns


def few_shot_messages(examples: Sequence[dict[str, Any]], query: dict[str, Any], *, k: int | None = None) -> list[Message]:
    """System message, then ``k`` solved examples as user/assistant turns, then the query's turns."""
    system, turns, _ = split_example(query)
    shots: list[Message] = []
    for example in list(examples)[: len(examples) if k is None else k]:
        _, ex_turns, answer = split_example(example)
        if answer is not None:
            shots += ex_turns + [answer]
    return ([system] if system else []) + shots + turns
