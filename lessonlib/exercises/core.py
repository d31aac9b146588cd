"""The exercises' machinery: the registry, :func:`check` and its :class:`Verdict`, solutions in the
learner's language. The exercises themselves are in one module a notebook, beside this one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LessonError
from ..i18n import _, translate_code


class Hint(Exception):
    """Raised by a check: the answer is not right yet, and the message says what to change."""


@dataclass(frozen=True)
class Verdict:
    """What a check says: passed or not, in one message (shown as Markdown in a notebook)."""

    passed: bool
    message: str

    def __str__(self) -> str:
        return (_("Right: ") if self.passed else _("Not yet: ")) + self.message

    def __bool__(self) -> bool:
        return self.passed

    def _repr_markdown_(self) -> str:
        return ("✅ " + _("**Right.** ") if self.passed else "💡 " + _("**Not yet.** ")) + self.message

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, its tier, its check, and a solution the tests run through the check."""

    id: str  # "NN.k": the notebook's number and the exercise's place in it
    stars: int  # 1 try it, 2 change it, 3 make it your own
    title: str  # what a learner sees above the task
    check: Callable[..., str]  # returns the success message, raises Hint for a wrong answer
    solution: str  # code that sets the names in ``answer`` (shown by show_solution, run by the tests)
    answer: tuple[str, ...]  # the names the check reads, in order
    setup: str = ""  # what the solution needs from the notebook (run before it by the tests)
    wrong: str = ""  # code for a typical wrong answer (the tests check that it gets a hint)
    context: dict[str, str] = field(default_factory=dict)  # extra keyword arguments of the check: name -> expression

    @property
    def tier(self) -> str:
        return "★" * self.stars


EXERCISES: dict[str, Exercise] = {}


def exercise(id: str, stars: int, title: str, *, solution: str, answer: tuple[str, ...] | str, setup: str = "",
             wrong: str = "", context: dict[str, str] | None = None) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register the decorated function as the check of exercise ``id``."""
    def register(fn: Callable[..., str]) -> Callable[..., str]:
        names = (answer,) if isinstance(answer, str) else answer
        EXERCISES[id] = Exercise(id, stars, title, fn, solution.strip("\n"), names, setup.strip("\n"), wrong.strip("\n"),
                                 context or {})
        return fn
    return register


def get(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        raise LessonError(_("there is no exercise '{id}'").format(id=exercise_id), fix=_("one of: {ids}").format(ids=", ".join(sorted(EXERCISES)))) from None


def check(exercise_id: str, *answer: Any, **context: Any) -> Verdict:
    """Check an answer; never raises for a wrong one (a hint comes back instead of a traceback)."""
    ex = get(exercise_id)
    if len(answer) != len(ex.answer):
        return Verdict(False, _("this check takes {n} value(s): {call}.").format(n=len(ex.answer), call=f"check({exercise_id!r}, {', '.join(ex.answer)})"))
    if any(value is Ellipsis or value is None for value in answer):
        return Verdict(False, _("replace the `...` with your code, run the cell, then run this check again (stuck? {call}).").format(
            call=f"`show_solution({exercise_id!r})`"))
    try:
        return Verdict(True, ex.check(*answer, **context))
    except Hint as hint:
        return Verdict(False, str(hint))
    except LessonError as exc:
        return Verdict(False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a learner's value can break a check in any way: say how, never a traceback
        return Verdict(False, _("checking your answer failed with {kind}: {problem}. Is it the kind of value the task asks for?").format(
            kind=type(exc).__name__, problem=exc))


def solution(exercise_id: str) -> str:
    """The worked solution's code, its comments and prose strings in the learner's language (the code itself is the same)."""
    return translate_code(get(exercise_id).solution)


def show_solution(exercise_id: str) -> Any:
    """The worked solution as a code block (in a notebook) or text; copy it into the cell above to run it."""
    ex = get(exercise_id)
    heading = _("Exercise {id} {tier}: {title} — one solution:").format(id=ex.id, tier=ex.tier, title=_(ex.title))
    text = f"{heading}\n\n```python\n{solution(exercise_id)}\n```"
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:
        return text


def listing(notebook: str) -> list[Exercise]:
    """The exercises of notebook ``notebook`` ("03"), in order."""
    return [ex for key, ex in sorted(EXERCISES.items()) if key.split(".")[0] == notebook]


def close_to(value: Any, expected: float, tolerance: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value - expected) <= tolerance


def train_path() -> Path:
    from .. import corpora

    return corpora.split_path("recipes", "train")


def message_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return _("`messages` must be a list of messages, each a dict like {'role': 'user', 'content': '...'}.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return _("message {i} is a {kind}; each message is a dict with 'role' and 'content'.").format(i=i, kind=type(message).__name__)
        if set(message) - {"role", "content"}:
            return _("message {i} has the key(s) {keys}: use only 'role' and 'content'.").format(i=i, keys=sorted(set(message) - {'role', 'content'}))
        if "role" not in message or "content" not in message:
            return _("message {i} needs both 'role' and 'content'.").format(i=i)
        if message["role"] not in ("system", "user", "assistant"):
            return _("message {i} has the role {role!r}: use 'system', 'user' or 'assistant' (lower case).").format(i=i, role=message['role'])
        if not isinstance(message["content"], str) or not message["content"].strip():
            return _("message {i}'s content must be some text.").format(i=i)
    return None
