"""The checklist widget and the evaluation chart: views over :mod:`lessonlib.decide` and :mod:`lessonlib.evaluate`."""

from __future__ import annotations

import html
from dataclasses import fields
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..decide import Answers, Decision, decide
from ..i18n import N_, _
from .static import LeavesSummary

_LABELS = {  # translated where shown
    "use_case": N_("Use case: what should improve?"),
    "tried_prompting": N_("Tried prompt engineering (few-shot)?"),
    "tried_retrieval": N_("Tried retrieval (RAG)?"),
    "base_model_fine_tunable": N_("Can the base model be fine-tuned?"),
    "examples": N_("Quality training examples in hand"),
    "min_examples": N_("Fewest examples worth training on"),
    "effort_acceptable": N_("Effort (data, evaluation, iteration) acceptable?"),
    "monthly_budget_usd": N_("Monthly budget (USD)"),
    "fine_tune_monthly_usd": N_("Tuned model's monthly cost (USD)"),
    "stronger_model_untried": N_("A stronger base model not tried yet?"),
    "reuse_for_new_domains": N_("Reuse the base model for new domains?"),
    "target": N_("Score that is good enough"),
    "min_gain": N_("Least gain worth the cost"),
}
_SECTIONS = (
    (N_("Use case"), ("use_case",)),
    (N_("Alternatives"), ("tried_prompting", "tried_retrieval")),
    (N_("Costs"), ("base_model_fine_tunable", "effort_acceptable", "examples", "min_examples", "monthly_budget_usd", "fine_tune_monthly_usd", "stronger_model_untried")),
    (N_("Benefits"), ("reuse_for_new_domains", "target", "min_gain")),
)
_STRATEGIES = ("zero-shot", "few-shot", "rag", "fine-tuned")


class Checklist(LeavesSummary, w.VBox):
    """The lesson's checklist: answer, see measured scores, press **Decide**, export the report.

    A saved notebook shows the answers, the scores and, once decided, the recommendation and its reasons.
    """

    def __init__(self, answers: Answers | None = None, scores: dict[str, float] | None = None,
                 paired: dict[str, list[float]] | None = None) -> None:
        self.paired = paired  # per-example scores, for paired intervals (used while the scores are the measured ones)
        answers = answers or Answers()
        self.controls: dict[str, w.Widget] = {}
        style = {"description_width": "22em"}
        layout = w.Layout(width="36em")
        for f in fields(Answers):
            value = getattr(answers, f.name)
            label = _(_LABELS.get(f.name, f.name))
            if isinstance(value, bool):
                control = w.ToggleButtons(options=[(_("yes"), True), (_("no"), False)], value=value, description=label, style=style)
            elif isinstance(value, int):
                control = w.IntText(value=value, description=label, style=style, layout=layout)
            elif isinstance(value, float):
                control = w.FloatText(value=value, description=label, style=style, layout=layout)
            else:
                control = w.Text(value=value, description=label, style=style, layout=w.Layout(width="60em"))
            control.add_class(f"checklist-{f.name}")
            self.controls[f.name] = control
        scores = scores or {}
        self.scores = {s: w.BoundedFloatText(value=scores.get(s, 0.0), min=0, max=1, step=0.01, description=_("{strategy} score").format(strategy=s),
                                             style={"description_width": "10em"}, disabled=False) for s in _STRATEGIES}
        self.measured = {s: s in scores for s in _STRATEGIES}
        for strategy, box in self.scores.items():
            box.observe(lambda change, s=strategy: self.measured.__setitem__(s, True), names="value")
        self.button = w.Button(description=_("Decide"), button_style="primary", icon="balance-scale")
        self.button.add_class("checklist-decide")
        self.export = w.Button(description=_("Export report"), icon="file-text")
        self.result = w.HTML()
        self.result.add_class("checklist-result")
        self.decision: Decision | None = None
        self.button.on_click(lambda _b: self.run())
        self.export.on_click(lambda _b: self.save_report())
        sections = []
        for title, names in _SECTIONS:
            sections.append(w.HTML(f"<b>{_(title)}</b>"))
            sections += [self.controls[n] for n in names]
        sections.append(w.HTML(_("<b>Measured scores</b> (from the evaluation; 0 = not measured unless you change it)")))
        sections += list(self.scores.values())
        super().__init__(sections + [w.HBox([self.button, self.export]), self.result])

    def answers(self) -> Answers:
        return Answers(**{name: control.value for name, control in self.controls.items()})

    def current_scores(self) -> dict[str, float]:
        return {s: box.value for s, box in self.scores.items() if self.measured[s]}

    def run(self) -> Decision:
        self.decision = decide(self.answers(), self.current_scores(), self.paired)
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in self.decision.reasons)
        heading = _("Recommendation: {recommendation}").format(recommendation=_(self.decision.recommendation))
        self.result.value = f"<h3 class='recommendation'>{html.escape(heading)}</h3><ol>{reasons}</ol>"
        self.refresh_summary()
        return self.decision

    def static_summary(self) -> str | None:
        """The answers and measured scores as a table, then the recommendation once decided (HTML)."""
        def shown(value: Any) -> str:
            return (_("yes") if value else _("no")) if isinstance(value, bool) else f"{value:,}" if isinstance(value, (int, float)) else str(value)

        rows = [(_(_LABELS.get(name, name)), shown(control.value)) for name, control in self.controls.items()]
        rows += [(_("{strategy} score").format(strategy=strategy), f"{box.value:.3f}") for strategy, box in self.scores.items() if self.measured[strategy]]
        table = "<table>" + "".join(f"<tr><td>{html.escape(label)}</td><td>{html.escape(value)}</td></tr>" for label, value in rows) + "</table>"
        return ("<p><b>" + _("Checklist") + f"</b></p>{table}{self.result.value}")

    def save_report(self, path: str | Path = "runs/decision.md") -> Path:
        decision = self.decision or self.run()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(decision.markdown(self.answers()), encoding="utf-8")
        self.result.value += "<p>" + _("Report saved to {path}.").format(path=f"<code>{html.escape(str(path))}</code>") + "</p>"
        return path
