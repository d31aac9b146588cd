"""Notebook 08 · the limits: its exercises and their checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import LessonError
from ..i18n import N_, _
from .core import Hint, exercise, train_path


def _general_as_examples() -> list[dict[str, Any]]:
    from .. import limits

    return limits.general_examples()


@exercise("08.2", 2, N_("Mix general examples in"), answer="mix", solution='''
import random

def mix(task, general, fraction=0.2, seed=18):
    """The task examples plus enough general ones to make `fraction` of the result, shuffled with `seed`."""
    wanted = round(fraction * len(task) / (1 - fraction))
    extra = [general[i % len(general)] for i in range(wanted)]
    mixed = list(task) + extra
    random.Random(seed).shuffle(mixed)
    return mixed
''', wrong='''
def mix(task, general, fraction=0.2, seed=18):
    return task + general
''')
def _check_mix(mix: Any) -> str:
    from .. import data

    task = data.read_examples(train_path())[:80]
    general = _general_as_examples()
    mixed = mix(task, general, fraction=0.2, seed=18)
    if not isinstance(mixed, list):
        raise Hint(_("`mix` should return a list of examples."))
    task_ids = {json.dumps(e, sort_keys=True) for e in task}
    kept = sum(json.dumps(e, sort_keys=True) in task_ids for e in mixed)
    if kept != len(task):
        raise Hint(_("keep every task example once ({kept} of {n_task} found).").format(kept=kept, n_task=len(task)))
    share = (len(mixed) - kept) / len(mixed)
    if abs(share - 0.2) > 0.02:
        raise Hint(_("general examples make {share:.0%} of the result; with fraction=0.2 they should make 20% (for "
                     "{n_task} task examples: {n_general} general ones, repeating them if needed).").format(share=share, n_task=len(task), n_general=round(0.2 * len(task) / 0.8)))
    if mixed[:len(task)] == task:
        raise Hint(_("shuffle the result (with `random.Random(seed)`), or the general examples all come last in training."))
    if mix(task, general, fraction=0.2, seed=18) != mixed:
        raise Hint(_("the same seed should give the same order: use `random.Random(seed).shuffle`, not `random.shuffle`."))
    return (_("80 recipes and 20 general answers, shuffled the same way every time. Mix "
              "`limits.general_examples()` into your recipes (not the 24 questions that measure forgetting), train "
              "with `limits.experiment_config` and measure forgetting with `limits.forgetting`."))


_HISTORY_08 = [(10, 1.42), (20, 1.18), (30, 1.05), (40, 1.01), (50, 1.04), (60, 1.00), (70, 1.03), (80, 1.06), (90, 1.10), (100, 1.15)]
_PATIENCE_08 = 2


@exercise("08.1", 1, N_("When does early stopping stop?"), answer=("stopped_at", "kept"), setup=f'''
history = {_HISTORY_08}   # (step, validation loss)
patience = {_PATIENCE_08}
''', solution='''
best_loss, best_step, waited = float("inf"), None, 0
for step, loss in history:
    if loss < best_loss:                     # a new best: remember it, start waiting again
        best_loss, best_step, waited = loss, step, 0
    else:
        waited += 1
        if waited == patience:               # `patience` evaluations in a row without a new best
            break
stopped_at, kept = step, best_step
''', wrong='''
stopped_at, kept = history[-1][0], min(history, key=lambda row: row[1])[0]
''')
def _check_early_stop(stopped_at: Any, kept: Any) -> str:
    best_loss, best_step, waited, stop = float("inf"), None, 0, _HISTORY_08[-1][0]
    for step, loss in _HISTORY_08:
        if loss < best_loss:
            best_loss, best_step, waited = loss, step, 0
        else:
            waited += 1
            if waited == _PATIENCE_08:
                stop = step
                break
    if stopped_at == _HISTORY_08[-1][0]:
        raise Hint(_("early stopping does not wait for the last step: it stops once the validation loss has failed to "
                     "reach a new best `patience` evaluations in a row. Walk through the history one evaluation at a time."))
    if stopped_at != stop:
        raise Hint(_("count the evaluations since the last *new best* (lower than every loss before it); a new best "
                     "starts the count again. Training stops when the count reaches `patience`."))
    if kept != best_step:
        raise Hint(_("the model kept is the one from the best evaluation seen before training stopped."))
    return (_("it stops at step {stop} and keeps step {best_step}. In TRL: "
              "`EarlyStoppingCallback(early_stopping_patience=2)` with `load_best_model_at_end=True` and "
              '`metric_for_best_model="eval_loss"` in the SFTConfig (notebook 08, section 1).').format(stop=stop, best_step=best_step))


@exercise("08.3", 3, N_("Does mixing reduce forgetting?"), answer="mixed", setup='''
from lessonlib import limits

train_10 = limits.subset("data/recipes/train.jsonl", 10, "runs/08/train-10.jsonl")     # section 1's recipes
valid = limits.subset("data/recipes/valid.jsonl", limits.VALID_EXAMPLES, f"runs/08/valid-{limits.VALID_EXAMPLES}.jsonl")
forgetting = limits.ForgettingReport(limits.knowledge(), limits.knowledge())   # in the notebook: section 2's report
''', solution='''
import random
from pathlib import Path

from lessonlib import corpora, data
from lessonlib.train import run_in_subprocess

recipes = data.read_examples(train_10)
general = limits.general_examples()[:10]     # as many general examples as recipes: half the data
mixed_data = recipes + general
random.Random(18).shuffle(mixed_data)        # general examples all along the run, not all at its end
corpora.write_jsonl(mixed_data, Path("runs/08/train-10-mixed.jsonl"))

# section 1's run (same settings, same validation recipes, early stopping), on the mixed data
result = run_in_subprocess(limits.experiment_config("runs/08/train-10-mixed.jsonl", "runs/08/mixed", valid_file=valid))
mixed = limits.forgetting(result.output_dir)
print(mixed.summary())
''', wrong='''
mixed = forgetting       # section 2's report again: the adapter trained on recipes only
''', context={"plain": "forgetting"})
def _check_mixing_measured(mixed: Any, plain: Any = None) -> str:
    from .. import data, limits
    from ..train import RunConfig

    if not isinstance(mixed, limits.ForgettingReport):
        raise Hint(_("pass what `limits.forgetting(result.output_dir)` returned for your mixed run."))
    if not isinstance(plain, limits.ForgettingReport):
        raise Hint(_("pass section 2's report too: check('08.3', mixed, plain=forgetting)."))
    adapter = mixed.after.adapter
    if not adapter or adapter == plain.after.adapter:
        raise Hint(_("measure the adapter trained on the mixed data, not section 2's: "
                     "limits.forgetting(result.output_dir)."))
    if [r["question"] for r in mixed.after.rows] != [r["question"] for r in plain.after.rows]:
        raise Hint(_("ask both adapters the same questions (limits.forgetting's default 24), or the counts cannot be "
                     "compared."))
    try:
        examples = data.read_examples(RunConfig.load(Path(adapter) / "config.yaml").train_file)
    except LessonError:
        raise Hint(_("no training run in {adapter}: train with run_in_subprocess, then measure result.output_dir.").format(adapter=adapter)) from None
    prompts = [next((m.get("content") for m in e["messages"] if m.get("role") == "user"), "") for e in examples]
    asked = {limits.prompt(q) for q in limits.load_questions()} | {q.question for q in limits.load_questions()}
    if any(prompt in asked for prompt in prompts):
        raise Hint(_("your training data holds some of the 24 questions that measure forgetting: then the score measures "
                     "memory, not forgetting. Mix in limits.general_examples(), which are other questions."))
    general = {e["messages"][0]["content"] for e in limits.general_examples()}
    mixed_in = sum(prompt in general for prompt in prompts)
    if not mixed_in:
        raise Hint(_("the mixed run's training file has no general examples: add limits.general_examples() to the recipes."))
    before, after = len(plain.forgotten), len(mixed.forgotten)
    if before - after >= 3:
        reading = _("mixing kept {n} answers that recipes alone lost").format(n=before - after)
    elif after - before >= 3:
        reading = _("the mixed run lost {n} more: mixing did not help this run (compare which questions "
                    "each one lost before you conclude)").format(n=after - before)
    else:
        reading = _("the difference is within noise: on 24 questions, one or two answers either way is luck (ask more "
                    "questions, or repeat with other seeds, to know)")
    return (_("recipes only: {before} of {n_rows} answers forgotten; with {mixed_in} general examples in "
              "{n_prompts}: {after} forgotten. Here {reading}.").format(before=before, n_rows=len(mixed.after.rows), mixed_in=mixed_in, n_prompts=len(prompts), after=after, reading=reading))
