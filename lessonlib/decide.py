"""The lesson's checklist, turned into a decision with its reasons (a pure function; no I/O).

The lesson asks, before fine-tuning: the **use case** (what to improve), the **alternatives** tried
as baselines (prompt engineering, retrieval), the **costs** (is the base model fine-tunable, the
effort, the compute, the data in hand) and the **benefits** (quality over the baseline, token and
cost savings, reuse of the base model). :func:`decide` answers with one of five recommendations —
``fine-tune``, ``improve the prompt``, ``add retrieval``, ``collect more data first``, ``try a
stronger base model`` — and every reason that decided it, in order. Measured evaluation results (:mod:`lessonlib.evaluate`) take
precedence over impressions when they exist.

The rules, in the order they are applied:

1. The base model cannot be fine-tuned -> the best alternative (retrieval if it helped, else prompt).
2. No baseline measured and none tried -> ``improve the prompt`` (you need a baseline first).
3. Fewer examples than ``min_examples`` -> ``collect more data first``.
4. A tuned model was measured: it beats the best baseline by at least ``min_gain`` -> ``fine-tune``
   (unless it costs more than the budget allows); otherwise the best baseline wins.
5. No tuned model yet: the best baseline already reaches ``target`` -> keep it (retrieval if it beat
   prompting by ``min_gain``, else the prompt); below target, with a stronger base model not yet
   tried -> ``try a stronger base model`` (prompting it is cheaper than training); otherwise, with
   enough data -> ``fine-tune``.

Baselines are ``zero-shot``, ``few-shot``, ``rag`` and ``trivial`` (the most common label, or the empty answer:
what a tuned model must beat before anything else); only zero-shot and few-shot count as prompting.

A difference smaller than ``min_gain`` (retrieval against prompting, a tuned model against the best
baseline) is reported as no clear difference, never as a finding. Where the scores were measured
example by example on the same examples (``paired``: :func:`paired_from_report`), a gain counts only
when its paired bootstrap interval lies above 0 as well.

>>> decide(Answers(tried_prompting=True, examples=200), {"zero-shot": 0.2, "few-shot": 0.5, "rag": 0.55, "fine-tuned": 0.8}).recommendation
'fine-tune'
>>> decide(Answers(examples=20, tried_prompting=True), {"few-shot": 0.4}).recommendation
'collect more data first'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import LessonError
from .i18n import N_, _

#: The values ``Decision.recommendation`` takes (English: code compares them; views show ``_(recommendation)``).
RECOMMENDATIONS = (N_("fine-tune"), N_("improve the prompt"), N_("add retrieval"), N_("collect more data first"),
                   N_("try a stronger base model"))


class Recommendation(str):
    """One of :data:`RECOMMENDATIONS`: it compares (and is saved) as its English value, and shows in the learner's language.

    >>> import json
    >>> r = Recommendation("fine-tune")
    >>> r == "fine-tune", f"{r}", json.dumps(r)
    (True, 'fine-tune', '"fine-tune"')
    """

    __slots__ = ()

    def __str__(self) -> str:
        return _(str.__str__(self))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


@dataclass
class Answers:
    """The checklist's answers (defaults: a learner who has not measured anything yet)."""

    use_case: str = field(default_factory=lambda: _("answer in a fixed format (JSON list of ingredients)"))  # what you want to improve
    tried_prompting: bool = False  # have you tried prompt engineering / few-shot?
    tried_retrieval: bool = False  # have you tried retrieval-augmented generation?
    base_model_fine_tunable: bool = True  # can this base model be fine-tuned (weights or a provider's service)?
    examples: int = 0  # quality training examples in hand
    min_examples: int = 50  # the fewest worth training on
    effort_acceptable: bool = True  # can you spend the effort to prepare data, evaluate and iterate?
    monthly_budget_usd: float = 50.0  # what the solution may cost a month
    fine_tune_monthly_usd: float = 0.0  # estimated monthly cost of the tuned model (training spread + hosting + tokens)
    requests_per_month: int = 10_000  # expected volume (recorded in the report; fine_tune_monthly_usd carries its cost)
    reuse_for_new_domains: bool = False  # do you want to reuse the base model for other domains? (favours adapters)
    stronger_model_untried: bool = False  # is there a stronger base model you have not tried with prompting yet?
    target: float = 0.8  # the score that would be good enough
    min_gain: float = 0.05  # the least improvement worth its cost

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Answers:
        """Build from a mapping (a YAML file); unknown or mistyped fields are named."""
        known = {f.name: f for f in fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise LessonError(_("unknown checklist field '{key}'").format(key=key), fix=_("use some of: {names}").format(names=", ".join(known)))
            kind = type(getattr(cls(), key))
            if kind is bool and not isinstance(value, bool):
                raise LessonError(_("checklist field '{key}' must be true or false (got {value})").format(key=key, value=repr(value)))
            if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise LessonError(_("checklist field '{key}' must be a number (got {value})").format(key=key, value=repr(value)))
            if kind is str and not isinstance(value, str):
                raise LessonError(_("checklist field '{key}' must be text (got {value})").format(key=key, value=repr(value)))
            clean[key] = kind(value) if kind in (int, float) else value
        return cls(**clean)


@dataclass
class Decision:
    recommendation: str  # one of RECOMMENDATIONS (a Recommendation: printed in the learner's language)
    reasons: list[str]  # why, in the order the rules decided
    scores: dict[str, float] = field(default_factory=dict)  # the measured scores used
    best_baseline: str | None = None  # the strongest alternative to fine-tuning
    gain: float | None = None  # tuned score minus the best baseline (when both exist)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self, answers: Answers) -> str:
        """The filled checklist and the decision, as a Markdown report."""
        rows = "\n".join(f"| {f.name.replace('_', ' ')} | {getattr(answers, f.name)} |" for f in fields(answers))
        scores = "\n".join(f"| {k} | {v:.3f} |" for k, v in self.scores.items()) or ("| " + _("(none measured)") + " | |")
        reasons = "\n".join(f"{i}. {r}" for i, r in enumerate(self.reasons, 1))
        recommendation = _("Recommendation: {recommendation}").format(recommendation=_(self.recommendation))
        return ("# " + _("Should we fine-tune?") + f"\n\n**{recommendation}**\n\n## " + _("Why") + f"\n{reasons}\n\n"
                + "## " + _("Measured scores") + "\n| " + _("strategy") + " | " + _("score") + f" |\n| --- | --- |\n{scores}\n\n"
                + "## " + _("The checklist") + "\n| " + _("question") + " | " + _("answer") + f" |\n| --- | --- |\n{rows}\n")


def _baselines(scores: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in scores.items() if k in {"trivial", "zero-shot", "few-shot", "rag"} and v is not None}


def _paired_interval(paired: dict[str, Sequence[float]] | None, scores: dict[str, float], before: str,
                     after: str) -> tuple[float, float] | None:
    """The bootstrap interval of ``after - before`` over the same examples, when both were measured example
    by example and the scores are still those measurements (a learner may have typed others); else None."""
    if not paired or before not in paired or after not in paired or not paired[before] or len(paired[before]) != len(paired[after]):
        return None
    if any(abs(sum(paired[k]) / len(paired[k]) - scores[k]) > 5e-4 for k in (before, after)):
        return None
    from .evaluate import bootstrap_interval

    return bootstrap_interval([b - a for a, b in zip(paired[before], paired[after])])


def gain_counts(gain: float, interval: tuple[float, float] | None, min_gain: float) -> bool:
    """The checklist's one rule for a gain: it counts when it is at least ``min_gain`` (big enough to pay for
    itself) and its paired interval, when known, lies above 0 (real, not noise). :func:`decide` judges every
    gain with it, and so does exercise 02.2's check.

    >>> gain_counts(0.075, (0.033, 0.117), min_gain=0.05)   # big enough, and surely above 0
    True
    >>> gain_counts(0.075, (-0.010, 0.160), min_gain=0.05)  # big enough, but it may be noise
    False
    >>> gain_counts(0.030, (0.010, 0.050), min_gain=0.05)   # real, but too small to pay
    False
    """
    return gain >= min_gain and (interval is None or interval[0] > 0)


def _spread(interval: tuple[float, float] | None) -> str:
    return _(" (paired 95% interval {low:+.3f} to {high:+.3f})").format(low=interval[0], high=interval[1]) if interval else ""


def _rag_vs_prompting(gain: float, min_gain: float, interval: tuple[float, float] | None = None) -> str:
    if gain_counts(gain, interval, min_gain):
        return _("retrieval beats prompting by {gain:+.3f}{interval}").format(gain=gain, interval=_spread(interval))
    if gain >= min_gain:
        return _("retrieval vs prompting {gain:+.3f}{interval}: the interval includes 0, no clear difference").format(
            gain=gain, interval=_spread(interval))
    return _("retrieval vs prompting {gain:+.3f}, less than the {min_gain} that counts: no clear difference").format(
        gain=gain, min_gain=min_gain)


def decide(answers: Answers, scores: dict[str, float] | None = None,
           paired: dict[str, Sequence[float]] | None = None) -> Decision:
    """Apply the checklist's rules (see the module docstring) to the answers and measured scores.

    ``paired``: each strategy's per-example scores on the same examples, when measured (the gains are then
    judged by their paired bootstrap interval too).
    """
    scores = {k: float(v) for k, v in (scores or {}).items() if v is not None}
    reasons: list[str] = [_("Use case: {use_case}.").format(use_case=answers.use_case)]
    baselines = _baselines(scores)
    best = max(baselines, key=baselines.get) if baselines else None
    best_score = baselines.get(best) if best else None
    prompting = max((k for k in baselines if k not in {"rag", "trivial"}), key=baselines.get, default=None)
    rag_gain = baselines["rag"] - baselines[prompting] if "rag" in baselines and prompting else None
    rag_interval = _paired_interval(paired, scores, prompting, "rag") if rag_gain is not None else None
    rag_clear = rag_gain is not None and gain_counts(rag_gain, rag_interval, answers.min_gain)
    alternative = "add retrieval" if rag_clear or (answers.tried_retrieval and not baselines) else "improve the prompt"

    def done(recommendation: str, gain: float | None = None) -> Decision:
        return Decision(Recommendation(recommendation), reasons, scores, best, gain)

    if not answers.base_model_fine_tunable:
        reasons.append(_("The base model cannot be fine-tuned, so the choice is among the alternatives."))
        if rag_gain is not None:
            reasons.append(_rag_vs_prompting(rag_gain, answers.min_gain, rag_interval).capitalize() + ".")
        return done(alternative)
    if not baselines and not (answers.tried_prompting or answers.tried_retrieval):
        reasons.append(_("No alternative has been tried: measure prompt engineering (few-shot) first, it is the baseline any fine-tune must beat."))
        return done("improve the prompt")
    if answers.examples < answers.min_examples:
        reasons.append(_("Only {examples} examples; fine-tuning needs at least {min_examples} good ones to matter.").format(
            examples=answers.examples, min_examples=answers.min_examples))
        if best:
            reasons.append(_("Meanwhile the best measured alternative is {best} ({score:.3f}).").format(best=best, score=best_score))
        return done("collect more data first")
    if not answers.effort_acceptable:
        reasons.append(_("The effort of preparing data, evaluating and iterating is not acceptable now: stay with the alternatives."))
        return done(alternative)
    if best:
        reasons.append(_("Best baseline: {best} at {score:.3f}").format(best=best, score=best_score)
                       + (f"; {_rag_vs_prompting(rag_gain, answers.min_gain, rag_interval)}." if rag_gain is not None else "."))
    tuned = scores.get("fine-tuned")
    if tuned is not None and best_score is not None:
        gain = tuned - best_score
        interval = _paired_interval(paired, scores, best, "fine-tuned")
        if gain_counts(gain, interval, answers.min_gain):
            reasons.append(_("The tuned model scores {tuned:.3f}, {gain:+.3f} over the best baseline{interval} "
                             "(at least {min_gain} needed).").format(tuned=tuned, gain=gain, interval=_spread(interval),
                                                                      min_gain=answers.min_gain))
            if answers.fine_tune_monthly_usd > answers.monthly_budget_usd:
                reasons.append(_("But it would cost ${cost:,.2f} a month, over the ${budget:,.2f} budget.").format(
                    cost=answers.fine_tune_monthly_usd, budget=answers.monthly_budget_usd))
                return done(alternative, gain)
            if answers.reuse_for_new_domains:
                reasons.append(_("A LoRA adapter keeps the base model reusable for new domains (one small adapter each)."))
            return done("fine-tune", gain)
        if gain >= answers.min_gain:
            reasons.append(_("The tuned model scores {tuned:.3f}, {gain:+.3f} over the best baseline{interval}: the "
                             "interval includes 0, so the gain may be noise; not worth its cost yet (measure on more examples).").format(
                tuned=tuned, gain=gain, interval=_spread(interval)))
        else:
            reasons.append(_("The tuned model scores {tuned:.3f}, only {gain:+.3f} over the best baseline: not worth its cost.").format(
                tuned=tuned, gain=gain))
        return done(alternative, gain)
    if best_score is not None and best_score >= answers.target:
        reasons.append(_("{best} already reaches the target ({target}): no need to fine-tune.").format(best=best, target=answers.target))
        return done(alternative)
    if best_score is not None and answers.stronger_model_untried:
        reasons.append(_("The best baseline is below the target ({target}), and a stronger base model has not been tried: "
                         "prompting it costs no training, so measure it first.").format(target=answers.target))
        return done("try a stronger base model")
    if best_score is not None:
        reasons.append(_("The best baseline is below the target ({target}) and there are {examples} examples: fine-tuning is worth a try "
                         "(then measure it).").format(target=answers.target, examples=answers.examples))
    else:
        reasons.append(_("Alternatives were tried but not measured; with {examples} examples, fine-tune and compare on a held-out set.").format(
            examples=answers.examples))
    if answers.fine_tune_monthly_usd > answers.monthly_budget_usd:
        reasons.append(_("But it would cost ${cost:,.2f} a month, over the ${budget:,.2f} budget.").format(
                    cost=answers.fine_tune_monthly_usd, budget=answers.monthly_budget_usd))
        return done(alternative)
    return done("fine-tune")


def scores_from_report(report: Any) -> dict[str, float]:
    """Primary scores of an :class:`lessonlib.evaluate.EvalReport`, by strategy."""
    return {r.strategy: r.metrics[report.primary_metric] for r in report.results if not r.skipped}


def paired_from_report(report: Any) -> dict[str, list[float]]:
    """Per-example primary scores of an :class:`lessonlib.evaluate.EvalReport`, by strategy (same examples, same order)."""
    return {r.strategy: list(r.per_example) for r in report.results if not r.skipped and r.per_example}


def load_answers(path: str) -> Answers:
    """Answers from a YAML file; a malformed file names the field and the problem."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise LessonError(_("cannot read the answers file {path}: {problem}").format(path=path, problem=exc.strerror or exc), exit_code=2) from None
    except yaml.YAMLError as exc:
        raise LessonError(_("{path} is not valid YAML ({problem})").format(path=path, problem=str(exc).splitlines()[0]), exit_code=2) from None
    if not isinstance(values, dict):
        raise LessonError(_("{path} must hold a mapping of checklist answers").format(path=path), exit_code=2)
    try:
        return Answers.from_dict(values)
    except LessonError as exc:
        raise LessonError(_("{path}: {message}").format(path=path, message=exc.message), fix=exc.fix) from None
