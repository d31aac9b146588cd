"""Exercises with self-checks: what each notebook asks the learner to write, and how it is checked.

Every notebook ends with a few exercises in three tiers: ★ *try it*, ★★ *change it*, ★★★ *make it
your own*. Each one here has its task in one line, a **check** (a pure function of what the learner
wrote: it says *right*, or gives a hint that names what to change), a worked **solution** the learner
reveals with :func:`show_solution`, and a wrong answer that the tests show gets a hint.

Scope and limits: checks look at values (a list of messages, a file, a config, a number); none
trains a model or calls a paid API, so a check answers in a second. Checks recompute the right
answer with the same ``lessonlib`` functions the notebook used: a number is right when it matches
what the library measures on this machine, not a constant written here.

In a notebook::

    from lessonlib.exercises import check, show_solution

    per_shot = ...             # your code
    check("01.1", per_shot)    # -> "Right: ..." or "Not yet: <a hint>"
    show_solution("01.1")      # when you are stuck

>>> check("04.1", 300).passed
True
>>> print(check("04.1", 600))
Not yet: 600 is the number of examples three epochs show the model. A step takes 2 of them: how many steps is that?
"""

from __future__ import annotations

from . import (  # noqa: F401 - each registers its exercises
               n00_start_here,
               n01_what_is_fine_tuning,
               n02_when_and_why,
               n03_prepare_your_data,
               n04_fine_tune_locally,
               n05_evaluate,
               n06_openai_and_azure,
               n07_autotrain,
               n08_limits,
)
from .core import EXERCISES, Exercise, Hint, Verdict, check, exercise, get, listing, show_solution, solution

__all__ = ["EXERCISES", "Exercise", "Hint", "Verdict", "check", "exercise", "get", "listing", "show_solution", "solution"]
