"""Metrics that fit a learner's task, and the choice of one with its reason.

* ``accuracy`` — the reply is the expected label (case, spaces and end punctuation ignored); with
  :func:`per_label_f1` beside it. Chosen when the outputs are a few labels.
* ``exact_match`` — the normalised reply equals the normalised reference (short answers).
* ``token_f1`` — the overlap of words between reply and reference, SQuAD's F1 (longer answers).
* ``json`` — the reply parses as JSON, and the share of the reference's fields it matches (JSON outputs).
* ``custom`` — the learner's own ``score(reply, reference) -> float``, from a Python file.

:func:`infer_metric` picks one from the outputs and says why; every metric maps a reply and its
reference to a number from 0 to 1, so a strategy's score is their mean and intervals come from the same
per-example values.

>>> infer_metric(["spam", "ham", "ham", "spam"] * 10)[0]
'accuracy'
>>> token_f1("the cat sat", "a cat sat down")
0.8
>>> json_match('{"a": 1, "b": 2}', '{"a": 1, "b": 3}')
0.5
"""

from __future__ import annotations

import importlib.util
import json
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import LessonError
from .i18n import _

METRICS = ("accuracy", "exact_match", "token_f1", "json", "custom")
#: At most this many distinct outputs, each repeated, make a classification task.
MAX_LABELS = 20
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    """Lower case, no punctuation or articles, single spaces (SQuAD's normalisation).

    >>> normalise("  The Answer: Paris! ")
    'answer paris'
    """
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def label_of(reply: str) -> str:
    """The label a reply gives: its first line, normalised (a model may explain after it).

    >>> label_of("Spam.\\nBecause it offers a prize.")
    'spam'
    """
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    return normalise(lines[0]) if lines else ""


def accuracy(reply: str, reference: str) -> float:
    return 1.0 if label_of(reply) == normalise(reference) else 0.0


def exact_match(reply: str, reference: str) -> float:
    return 1.0 if normalise(reply) == normalise(reference) else 0.0


def token_f1(reply: str, reference: str) -> float:
    got, want = normalise(reply).split(), normalise(reference).split()
    if not got or not want:
        return 1.0 if got == want else 0.0
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return round(2 * precision * recall / (precision + recall), 4)


def _parse_json(text: str) -> object | None:
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    for candidate in (text, fenced.group(1) if fenced else None):
        if candidate is None:
            continue
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None


def json_match(reply: str, reference: str) -> float:
    """0 when the reply is not JSON; else the share of the reference's fields (or items) it matches."""
    got, want = _parse_json(reply), _parse_json(reference)
    if got is None:
        return 0.0
    if isinstance(want, dict):
        if not isinstance(got, dict) or not want:
            return 1.0 if got == want else 0.0
        return round(sum(1 for k, v in want.items() if got.get(k) == v) / len(want), 4)
    if isinstance(want, list) and isinstance(got, list) and want:
        return round(len({json.dumps(v, sort_keys=True) for v in got} & {json.dumps(v, sort_keys=True) for v in want}) / len(want), 4)
    return 1.0 if got == want else 0.0


def per_label_f1(replies: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """F1 of each label: how well the replies find it (precision) and all of it (recall).

    >>> per_label_f1(["spam", "ham", "spam"], ["spam", "ham", "ham"])
    {'ham': 0.6667, 'spam': 0.6667}
    """
    got, want = [label_of(r) for r in replies], [normalise(r) for r in references]
    scores = {}
    for label in sorted(set(want)):
        hit = sum(1 for g, w in zip(got, want) if g == w == label)
        predicted, actual = got.count(label), want.count(label)
        scores[label] = round(2 * hit / (predicted + actual), 4) if predicted + actual else 0.0
    return scores


def load_custom(path: str | Path) -> Callable[[str, str], float]:
    """The ``score(reply, reference) -> float`` function of a learner's Python file."""
    path = Path(path)
    if not path.is_file():
        raise LessonError(_("no metric file at {path}").format(path=path), fix=_("give a .py file that defines score(reply, reference)"), exit_code=2)
    spec = importlib.util.spec_from_file_location(f"lessonlib_custom_metric_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - the learner's code: any error is theirs to fix, shown as a message
        raise LessonError(_("{path} fails to load: {problem}").format(path=path, problem=f"{type(exc).__name__}: {exc}"), exit_code=2) from None
    score = getattr(module, "score", None)
    if not callable(score):
        raise LessonError(_("{path} defines no score(reply, reference) function").format(path=path), exit_code=2)
    return score


def scorer(name: str, custom: str | Path | None = None) -> Callable[[str, str], float]:
    """The function that scores one reply against its reference for metric ``name``."""
    if name == "custom":
        if custom is None:
            raise LessonError(_("the custom metric needs its file"), fix=_("--metric path/to/metric.py"), exit_code=2)
        function = load_custom(custom)

        def call(reply: str, reference: str) -> float:
            try:
                return max(0.0, min(1.0, float(function(reply, reference))))
            except Exception as exc:  # noqa: BLE001 - the learner's code
                raise LessonError(_("your score() failed on reply {reply!r}: {problem}").format(reply=reply[:60], problem=f"{type(exc).__name__}: {exc}"),
                                  exit_code=2) from None
        return call
    functions = {"accuracy": accuracy, "exact_match": exact_match, "token_f1": token_f1, "json": json_match}
    if name not in functions:
        raise LessonError(_("unknown metric '{name}'").format(name=name), fix=_("use one of: {names}, or a .py file").format(names=", ".join(METRICS[:-1])), exit_code=2)
    return functions[name]


def is_labels(outputs: Sequence[str]) -> bool:
    """A few short labels, each seen several times."""
    counts = Counter(normalise(o) for o in outputs)
    return 1 < len(counts) <= MAX_LABELS and len(counts) <= len(outputs) / 4 and all(len(k.split()) <= 4 for k in counts)


def infer_metric(outputs: Sequence[str]) -> tuple[str, str]:
    """The metric that fits these expected outputs, and the reason, in one sentence."""
    counts = Counter(normalise(o) for o in outputs)
    if is_labels(outputs):
        return "accuracy", _("the outputs are {n} labels ({labels}); each label's F1 is shown too").format(
            n=len(counts), labels=", ".join(sorted(counts)[:8]) + (", …" if len(counts) > 8 else ""))
    if outputs and all(isinstance(_parse_json(o), (dict, list)) for o in outputs):
        return "json", _("every output is JSON: the share of fields that match, 0 for a reply that is not JSON")
    words = sorted(len(o.split()) for o in outputs)
    median = words[len(words) // 2] if words else 0
    if median <= 3:
        return "exact_match", _("the outputs are short answers (median {n} words)").format(n=median)
    return "token_f1", _("the outputs are free text (median {n} words): the share of words in common").format(n=median)
