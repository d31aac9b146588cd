"""A split that gives evidence: train, validation and test from a seed, stratified by label, and what a test set can show.

:func:`split_examples` shuffles with a seed (the same seed, the same split), keeps each label's share in
every part when the outputs are a few labels, and uses a learner's own test file as given.
:func:`evidence` says in numbers how precise a score measured on *n* test examples can be: the half-width
of a 95% interval for a share (accuracy) is at most ``1.96 * sqrt(0.25 / n)``.
:func:`check_examples` is the data doctor's look at a whole set: duplicates, empty outputs, lengths,
and leakage between the parts (a test input also in training measures memory, not skill).

>>> evidence(12).sentence()
'12 test examples: an interval of about ±0.28; 43 give ±0.15'
>>> parts = split_examples([{"messages": [{"role": "user", "content": str(i)}, {"role": "assistant", "content": "ab"[i % 2]}]}
...                         for i in range(20)], labels=True)
>>> len(parts.train), len(parts.valid), len(parts.test), parts.stratified
(12, 2, 6, True)
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import LessonError
from ..i18n import _, ngettext
from .checks import Finding

#: The fewest test examples whose interval is narrow enough (±0.15) to tell a real gain from noise.
MIN_TEST = 43
#: The half-width (95%) that :data:`MIN_TEST` examples give, the precision the course asks of a test set.
TARGET_HALF_WIDTH = 0.15


def half_width(n: int, z: float = 1.96) -> float:
    """The widest 95% interval half-width of a share measured on ``n`` examples (a share of 0.5 is the widest).

    >>> round(half_width(100), 3)
    0.098
    """
    return z * math.sqrt(0.25 / n) if n > 0 else 1.0


@dataclass(frozen=True)
class Evidence:
    """How precise a test set of ``n`` examples is."""

    n: int  # test examples
    half_width: float  # about ± this around a share measured on them (95%)
    needed: int  # test examples that would give TARGET_HALF_WIDTH
    enough: bool  # n >= needed

    def sentence(self) -> str:
        return ngettext("{n} test example: an interval of about ±{width:.2f}; {needed} give ±{target:.2f}",
                        "{n} test examples: an interval of about ±{width:.2f}; {needed} give ±{target:.2f}", self.n).format(
            n=self.n, width=self.half_width, needed=self.needed, target=TARGET_HALF_WIDTH)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "half_width": round(self.half_width, 3), "needed": self.needed, "enough": self.enough}


def evidence(n: int) -> Evidence:
    """What ``n`` test examples can show (see the module docstring)."""
    needed = math.ceil((1.96 / TARGET_HALF_WIDTH) ** 2 * 0.25)
    return Evidence(n, half_width(n), needed, n >= needed)


@dataclass
class Split:
    """The three parts, as chat examples, and how they were made."""

    train: list[dict[str, Any]]
    valid: list[dict[str, Any]]
    test: list[dict[str, Any]]
    seed: int
    stratified: bool  # each label keeps its share in every part
    own_test: bool = False  # the test part is the learner's own file
    sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sizes = {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def output_of(example: dict[str, Any]) -> str:
    """The last assistant reply of an example (its expected output)."""
    replies = [m for m in example["messages"] if m.get("role") == "assistant"]
    content = replies[-1].get("content") if replies else ""
    return content if isinstance(content, str) else str(content or "")


def input_of(example: dict[str, Any]) -> str:
    """The last user turn before the reply (the input a retriever and the leakage check look at)."""
    users = [m for m in example["messages"] if m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    return content if isinstance(content, str) else str(content or "")


def split_examples(examples: list[dict[str, Any]], *, seed: int = 18, valid: float = 0.1, test: float = 0.3,
                   labels: bool = False, test_examples: list[dict[str, Any]] | None = None) -> Split:
    """Seeded split; with ``labels`` each output value is split on its own (stratified); ``test_examples`` is the test part as given."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise LessonError(_("valid ({valid}) and test ({test}) must be fractions that leave room for training").format(valid=valid, test=test), exit_code=2)
    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(output_of(example).strip().lower() if labels else "", []).append(i)
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    test_share = 0.0 if test_examples is not None else test
    for key in sorted(groups):
        order = groups[key][:]
        rng.shuffle(order)
        n_test, n_valid = round(len(order) * test_share), round(len(order) * valid)
        parts["test"] += order[:n_test]
        parts["valid"] += order[n_test:n_test + n_valid]
        parts["train"] += order[n_test + n_valid:]
    for order in parts.values():
        rng.shuffle(order)
    pick = {name: [examples[i] for i in order] for name, order in parts.items()}
    if test_examples is not None:
        pick["test"] = list(test_examples)
    if not pick["train"]:
        raise LessonError(_("too few examples to train on: {n}").format(n=len(examples)), fix=_("give at least 10 examples"), exit_code=2)
    return Split(pick["train"], pick["valid"], pick["test"], seed, labels and len(groups) > 1, test_examples is not None)


def check_examples(examples: list[dict[str, Any]], lines: list[int] | None = None, *, name: str = "") -> list[Finding]:
    """The data doctor on a whole set: exact duplicates, empty outputs and unusually long inputs, by line."""
    lines = lines or list(range(1, len(examples) + 1))
    findings: list[Finding] = []
    seen: dict[tuple[str, str], int] = {}
    lengths = [len(input_of(e)) for e in examples]
    long = sorted(lengths)[int(0.95 * (len(lengths) - 1))] * 3 if lengths else 0
    for line, example, length in zip(lines, examples, lengths):
        key = (input_of(example).strip(), output_of(example).strip())
        if key in seen:
            findings.append(Finding(line, "duplicate_example", _("{name}line {line} repeats line {first}").format(name=name, line=line, first=seen[key])))
        else:
            seen[key] = line
        if not key[1]:
            findings.append(Finding(line, "missing_content", _("{name}line {line}: the output is empty").format(name=name, line=line)))
        if not key[0]:
            findings.append(Finding(line, "no_user_message", _("{name}line {line}: the input is empty").format(name=name, line=line)))
        if long and length > long and length > 2000:
            findings.append(Finding(line, "too_long", _("{name}line {line}: the input is {n} characters, far longer than most").format(name=name, line=line, n=length)))
    return findings


def leakage(train: list[dict[str, Any]], test: list[dict[str, Any]]) -> int:
    """How many test examples have an input that is also a training input (after trimming and lower-casing).

    >>> leakage([{"messages": [{"role": "user", "content": "Hi "}]}], [{"messages": [{"role": "user", "content": "hi"}]}])
    1
    """
    seen = {input_of(e).strip().lower() for e in train}
    return sum(1 for e in test if input_of(e).strip().lower() in seen)


def label_counts(examples: list[dict[str, Any]]) -> Counter[str]:
    """How often each output occurs."""
    return Counter(output_of(e).strip() for e in examples)
