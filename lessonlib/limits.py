"""The limits of fine-tuning, measured small: overfitting, forgetting and how much data it takes.

The lesson's fourth question. Three experiments, each sized for two CPU cores and the local model:

* **overfitting** — train on a few examples with a validation loss every few steps: the training
  loss keeps falling while the validation loss turns up. :data:`EXPERIMENT` adds *early stopping*
  (stop after ``patience`` evaluations without improvement and keep the best adapter).
* **forgetting** — :func:`knowledge` asks 24 general questions (``data/general/questions.jsonl``, and the same in French;
  :func:`general_examples` are 40 others, ``data/general/train.jsonl``, to mix into training data)
  and scores each reply by a whole-word match with the accepted answers; :func:`forgetting`
  asks them before and after tuning and lists what was forgotten and what was gained.
* **data size** — :func:`data_size_study` repeats the same run on the first 10, 50 and all training
  examples and compares the validation losses (and, optionally, held-out F1).

Limits of these measurements, said plainly: one seed, 24 questions, 16 validation examples and
a 135M-parameter model. A difference of one or two questions, or a few hundredths of loss, is noise.
Whole-word matching is crude (it accepts "not Paris" as Paris); it is there to be transparent, not
clever. The patterns — memorising a small set, losing some general answers — are the real thing
and appear at every scale.

>>> score_answer("The capital of France is Paris.", ["paris"])
True
>>> score_answer("It freezes at 10 degrees.", ["0", "zero"])
False
>>> run_size("all"), run_size("50")
(None, 50)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import settings
from .errors import LessonError
from .i18n import _

#: The settings every limits experiment shares: a constant learning rate, a validation loss every
#: 4 steps, early stopping after 2 evaluations without improvement, and at most 32 steps.
EXPERIMENT: dict[str, Any] = {
    "max_steps": 32, "eval_every": 4, "early_stopping_patience": 2, "learning_rate": 2e-3, "lr_scheduler": "constant", "save_every": 0,
}
VALID_EXAMPLES = 16  # validation examples per evaluation (fewer make the curve too noisy to read; each pass ~3.5 s)


@dataclass(frozen=True)
class Question:
    """A general-knowledge question and the words that count as a right answer."""

    question: str  # asked as is, followed by "Answer in one short sentence." (see prompt())
    answers: tuple[str, ...]  # lower-case words or phrases; any one, as a whole word, is right
    lang: str = "en"  # the language it is asked in: "en" or "fr"


def questions_file(lang: str = "en") -> Path:
    """The 24 questions: ``questions.jsonl`` in English (what :func:`forgetting` asks), ``questions.fr.jsonl`` in French.

    The French file asks the same things in French (one changed: French schools count the continents
    differently, so it asks the months of a year), with French answers. The small local model answers
    few of them: forgetting can only be measured where the model knew something, so it is measured in English.
    """
    folder = settings.data_dir() / "general"
    return folder / ("questions.jsonl" if lang == "en" else f"questions.{lang}.jsonl")


#: What follows each question in the prompt, in the questions' language.
INSTRUCTIONS = {"en": "Answer in one short sentence.", "fr": "Réponds en une phrase courte."}


def prompt(question: Question) -> str:
    """The question as :func:`knowledge` asks it."""
    return f"{question.question} {INSTRUCTIONS[question.lang]}"


def general_examples() -> list[dict[str, Any]]:
    """40 general questions with a one-sentence answer, as chat examples to mix into task data.

    None of them is one of the 24 questions that :func:`knowledge` asks: training on those would
    measure memory, not forgetting. The prompts end as :func:`knowledge`'s do ("Answer in one short
    sentence."), so the mixed data keeps that kind of answer in practice.
    """
    from .data import read_examples

    return read_examples(settings.data_dir() / "general" / "train.jsonl")


def load_questions(path: str | Path | None = None, *, lang: str = "en") -> list[Question]:
    """The questions of a JSONL file (``{"question": ..., "answers": [...]}`` per line), in ``lang`` (default: the English 24).

    >>> [q.question for q in load_questions(lang="fr")][:1]
    ['Quelle est la capitale de la France ?']
    """
    if lang not in INSTRUCTIONS:
        raise LessonError(_("no questions in '{lang}'").format(lang=lang), fix=_("use one of: {names}").format(names=", ".join(INSTRUCTIONS)))
    path = Path(path) if path else questions_file(lang)
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LessonError(_("cannot read {path}: {reason}").format(path=path, reason=exc.strerror or exc), exit_code=2) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            question, answers = record["question"], record["answers"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LessonError(_("{path}, line {number}: not a question record ({kind}: {exc})").format(path=path, number=number, kind=exc.__class__.__name__, exc=exc),
                              fix=_('write {"question": "...", "answers": ["...", ...]} on each line'), exit_code=2) from None
        if not isinstance(question, str) or not question.strip() or not isinstance(answers, list) or not answers \
                or not all(isinstance(a, str) and a.strip() for a in answers):
            raise LessonError(_("{path}, line {number}: 'question' must be a text and 'answers' a non-empty list of texts").format(path=path, number=number), exit_code=2)
        out.append(Question(question.strip(), tuple(a.strip().lower() for a in answers), lang))
    if not out:
        raise LessonError(_("{path} holds no questions").format(path=path), exit_code=2)
    return out


def score_answer(reply: str, answers: Sequence[str]) -> bool:
    """True when any accepted answer appears in the reply as a whole word (case-insensitive)."""
    text = reply.lower()
    return any(re.search(rf"(?<!\w){re.escape(a.lower())}(?!\w)", text) for a in answers)


@dataclass
class KnowledgeResult:
    """How a model (base, or base + adapter) answered the general questions."""

    adapter: str | None  # the adapter folder, or None for the base model
    score: float  # share of questions answered right
    rows: list[dict[str, Any]] = field(default_factory=list)  # question, reply, correct

    @property
    def right(self) -> int:
        return sum(r["correct"] for r in self.rows)


def knowledge(adapter: str | Path | None = None, questions: Sequence[Question] | None = None, *,
              max_new_tokens: int = 24) -> KnowledgeResult:
    """Ask the general questions (greedy, batched) and score each reply."""
    from . import models

    questions = list(questions) if questions is not None else load_questions()
    conversations = [[{"role": "user", "content": prompt(q)}] for q in questions]
    replies = models.generate_many(conversations, adapter=adapter, max_new_tokens=max_new_tokens)
    rows = [{"question": q.question, "reply": r, "correct": score_answer(r, q.answers)} for q, r in zip(questions, replies)]
    return KnowledgeResult(str(adapter) if adapter else None, sum(r["correct"] for r in rows) / len(rows), rows)


@dataclass
class ForgettingReport:
    """The same questions before and after tuning."""

    before: KnowledgeResult
    after: KnowledgeResult

    @property
    def forgotten(self) -> list[str]:
        """Questions right before tuning and wrong after."""
        return [b["question"] for b, a in zip(self.before.rows, self.after.rows) if b["correct"] and not a["correct"]]

    @property
    def gained(self) -> list[str]:
        """Questions wrong before tuning and right after (often luck with a terser reply)."""
        return [b["question"] for b, a in zip(self.before.rows, self.after.rows) if not b["correct"] and a["correct"]]

    @property
    def p_value(self) -> float:
        """Exact two-sided McNemar test on the questions whose answer changed: how likely a split between
        forgotten and gained at least this uneven is when each change is as likely to go either way.

        With 9 forgotten and 4 gained, p is 0.27: a difference that chance alone gives about one time in four.
        """
        forgotten, gained = len(self.forgotten), len(self.gained)
        changed = forgotten + gained
        if not changed:
            return 1.0
        tail = sum(math.comb(changed, i) for i in range(min(forgotten, gained) + 1)) / 2 ** changed
        return min(1.0, 2 * tail)

    def summary(self) -> str:
        n = len(self.before.rows)
        p = self.p_value
        verdict = _("unlikely to be chance") if p < 0.05 else _("this could be chance: more questions would tell")
        return _("general questions right: {before}/{n} before, {after}/{n} after tuning; forgotten {forgotten}, gained {gained} "
                 "(paired test: p = {p:.2f}, {verdict})").format(before=self.before.right, after=self.after.right, n=n,
                                                                 forgotten=len(self.forgotten), gained=len(self.gained), p=p, verdict=verdict)

    def table(self, width: int = 34) -> str:
        """One line per question: before and after, with the replies cut to ``width``."""
        def cut(text: str) -> str:
            text = " ".join(text.split())
            return text if len(text) <= width else text[: width - 1] + "…"

        question, before, after = _("question"), _("before"), _("after")
        lines = [f"{question:<44} {before:<{width + 2}} {after:<{width + 2}}"]
        for b, a in zip(self.before.rows, self.after.rows):
            mark = ("  " + _("forgotten") if b["correct"] and not a["correct"] else
                    ("  " + _("gained") if a["correct"] and not b["correct"] else ""))
            lines.append(f"{cut(b['question'])[:44]:<44} {'✓' if b['correct'] else '✗'} {cut(b['reply']):<{width}} "
                         f"{'✓' if a['correct'] else '✗'} {cut(a['reply']):<{width}}{mark}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"before": asdict(self.before), "after": asdict(self.after), "forgotten": self.forgotten, "gained": self.gained}


def forgetting(adapter: str | Path, questions: Sequence[Question] | None = None) -> ForgettingReport:
    """General questions answered by the base model and by the tuned one, scored the same way."""
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise LessonError(_("{adapter} holds no adapter (adapter_config.json)").format(adapter=adapter), fix=_("train one with `lessonlib train local --out DIR`"))
    from .progress import LiveLine

    questions = list(questions) if questions is not None else load_questions()
    line = LiveLine(_("asking {n} general questions").format(n=len(questions)), total=2)
    line.update(1, _("the base model"))
    before = knowledge(None, questions)
    line.update(2, _("the tuned model"))
    after = knowledge(adapter, questions)
    line.finish(_("Asked the base model and the tuned model the same {n} questions.").format(n=len(questions)))
    return ForgettingReport(before, after)


def run_size(size: str | int | None) -> int | None:
    """A data size from the command line or a list: a count, or None for "all"."""
    if size is None or str(size).lower() == "all":
        return None
    try:
        value = int(size)
    except ValueError:
        raise LessonError(_("data size {size!r} is not a number").format(size=size), fix=_("give counts such as 10,50,all")) from None
    if value < 1:
        raise LessonError(_("data size {value} must be at least 1").format(value=value), fix=_("give counts such as 10,50,all"))
    return value


def _lines(path: str | Path) -> list[str]:
    try:
        text = settings.project_path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LessonError(_("cannot read {path}: {reason}").format(path=path, reason=exc.strerror or exc), exit_code=2) from None
    return [line for line in text.splitlines() if line.strip()]


def subset(source: str | Path | list[str], n: int | None, target: str | Path) -> Path:
    """Write the first ``n`` examples of a JSONL file (all when ``n`` is None); the course's sets are
    already shuffled, so the first ``n`` are a fair sample. ``source`` may be the file's lines, read once."""
    lines = source if isinstance(source, list) else _lines(source)
    if n is not None and n > len(lines):
        raise LessonError(_("{source} holds {n_lines} examples, fewer than the {n} asked for").format(source=source, n_lines=len(lines), n=n), fix=_("ask for at most {n_lines}").format(n_lines=len(lines)))
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines[:n] if n is not None else lines) + "\n", encoding="utf-8")
    return target


@dataclass
class SizeResult:
    """One run of the data-size study."""

    examples: int  # training examples used
    output_dir: str  # the run folder (its adapter is the best one, by validation loss)
    steps: int  # optimiser steps done
    epochs: float  # passes over the training examples in those steps
    best_step: int | None  # step of the lowest validation loss
    best_eval_loss: float | None  # the lowest validation loss
    final_train_loss: float | None  # last training loss
    early_stopped: bool  # stopped because the validation loss stopped improving
    f1: float | None = None  # held-out ingredient F1 of the best adapter (when measured)
    f1_interval: tuple[float, float] | None = None  # its 95% bootstrap interval over the recipes scored
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the run's events


def experiment_config(train_file: str | Path, output_dir: str | Path, *, valid_file: str | Path | None = None, **overrides: Any):
    """The run configuration of the limits experiments (:data:`EXPERIMENT`), for one training file."""
    from .train import RunConfig

    values = {**EXPERIMENT, "train_file": str(train_file), "output_dir": str(output_dir), "overwrite": True, **overrides}
    values["valid_file"] = str(valid_file) if valid_file else values.get("valid_file", RunConfig.valid_file)
    return RunConfig.from_dict({**RunConfig().to_dict(), **values})


def data_size_study(sizes: Sequence[int | str | None] = (10, 50, None), *, train_file: str = "data/recipes/train.jsonl",
                    valid_file: str = "data/recipes/valid.jsonl", folder: str | Path = "runs/limits",
                    valid_examples: int = VALID_EXAMPLES, f1_limit: int = 0, on_event: Callable[[Any], None] | None = None,
                    on_result: Callable[[SizeResult], None] | None = None, stop: Any = None,
                    reuse: dict[int, Any] | None = None, **overrides: Any) -> list[SizeResult]:
    """The same run (:func:`experiment_config`) on the first N training examples, for each N.

    ``reuse`` maps a size to a :class:`~lessonlib.train.RunResult` already made with the same
    settings (the notebook's overfitting run), so it is not trained twice. ``f1_limit`` > 0 also
    scores each adapter on that many held-out recipes (costs a few seconds each). ``on_result`` gets
    each size's :class:`SizeResult` as soon as it is complete (run and F1), so a view can show the
    study as it arrives (:class:`lessonlib.widgets.DataSizeStudy`). ``stop`` (a
    :class:`~lessonlib.train.StopFlag`) ends the current run after its step, keeps its adapter and
    skips the sizes left; the sizes finished before are returned.
    """
    from .train import run_in_subprocess

    folder = Path(folder)
    valid = subset(valid_file, valid_examples, folder / f"valid-{valid_examples}.jsonl")
    lines = _lines(train_file)
    results = []
    for size in sizes:
        n = run_size(size)
        count = n or len(lines)
        cfg = experiment_config(folder / f"train-{count}.jsonl", folder / f"size-{count}", valid_file=valid, **overrides)
        previous = (reuse or {}).get(count)
        if previous is None:
            subset(lines, n, cfg.train_file)
            previous = run_in_subprocess(cfg, on_event=on_event, stop=stop)  # its memory goes back when it ends
        if stop is not None and stop.is_set():
            break
        batch = cfg.batch_size * cfg.grad_accum
        result = SizeResult(
            examples=count, output_dir=previous.output_dir, steps=previous.steps,
            epochs=round(previous.steps * batch / count, 2), best_step=previous.best_step,
            best_eval_loss=previous.best_eval_loss, final_train_loss=previous.final_loss,
            early_stopped=previous.early_stopped, history=previous.history,
        )
        if f1_limit:
            from .evaluate import evaluate

            report = evaluate("recipes", ["fine-tuned"], adapter=result.output_dir, limit=f1_limit,
                              progress=False if on_event is not None else None)  # a view shows its own progress
            result.f1 = report.results[0].metrics["f1"]
            result.f1_interval = report.results[0].interval()
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def lowest_loss(results: Sequence[SizeResult]) -> str:
    """One line: which size reached the lowest validation loss, against the smallest size.

    >>> row = lambda n, loss: SizeResult(n, f"runs/size-{n}", 32, 1.0, 32, loss, 0.5, False)
    >>> lowest_loss([row(10, 0.754), row(50, 0.456), row(200, 0.393)])
    'Lowest validation loss: 200 examples (0.393); with 10 examples: 0.754.'
    """
    measured = [r for r in results if r.best_eval_loss is not None]
    if not measured:
        return _("No validation loss measured.")
    best, smallest = min(measured, key=lambda r: r.best_eval_loss), min(measured, key=lambda r: r.examples)
    return _("Lowest validation loss: {examples} examples ({loss:.3f}); with {smallest} examples: {smallest_loss:.3f}.").format(
        examples=best.examples, loss=best.best_eval_loss, smallest=smallest.examples, smallest_loss=smallest.best_eval_loss)


def size_table(results: Sequence[SizeResult]) -> str:
    """The data-size study as a text table (F1 with its 95% interval where measured: overlapping intervals may be luck)."""
    headers = [_("examples"), _("steps"), _("epochs"), _("best val loss"), _("at step"), _("last train loss"), _("early stop")]
    widths = [8, 5, 6, 13, 7, 15, 10]
    if any(r.f1 is not None for r in results):
        headers, widths = headers + ["F1", _("95% interval")], widths + [5, 12]
    widths = [max(width, len(header)) for width, header in zip(widths, headers)]  # a longer translation widens its column
    rows = [headers]
    for r in results:
        row = [str(r.examples), str(r.steps), f"{r.epochs:.1f}",
               f"{r.best_eval_loss if r.best_eval_loss is not None else float('nan'):.3f}",
               str(r.best_step if r.best_step is not None else "-"),
               f"{r.final_train_loss if r.final_train_loss is not None else float('nan'):.3f}",
               _("yes") if r.early_stopped else _("no")]
        if r.f1 is not None:
            row += [f"{r.f1:.2f}", _("{low:.2f} to {high:.2f}").format(low=r.f1_interval[0], high=r.f1_interval[1]) if r.f1_interval else ""]
        rows.append(row)
    return "\n".join(" ".join(f"{cell:>{width}}" for cell, width in zip(row, widths)) for row in rows)


def size_results_to_dicts(results: Sequence[SizeResult]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(r).items() if k != "history"} for r in results]


__all__ = [
    "EXPERIMENT",
    "ForgettingReport",
    "KnowledgeResult",
    "Question",
    "SizeResult",
    "data_size_study",
    "experiment_config",
    "forgetting",
    "knowledge",
    "load_questions",
    "lowest_loss",
    "run_size",
    "score_answer",
    "size_table",
    "subset",
]
