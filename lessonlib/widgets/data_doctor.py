"""The data-doctor and break-even widgets: views over :mod:`lessonlib.data` and :mod:`lessonlib.costs`."""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as w

from .. import costs, plots
from ..data import CODES, DataReport, validate
from ..errors import LessonError
from ..i18n import _, ngettext
from ..settings import data_dir, display_path, project_path
from .static import LeavesSummary, problem_line

_SENSITIVE = {"secret", "personal_data"}  # never show these lines' text


def _model_choices(current: str) -> list[str]:
    """Model families of the price table (date suffixes dropped), the local model, and ``current``."""
    names = [re.sub(r"-(\d{4}-\d{2}-\d{2}|\d{4})$", "", p.model) for p in costs.load_prices() if p.provider == "openai"]
    return list(dict.fromkeys([current, *names, "smollm2"]))


def _line_text(path: Path, lines: set[int], width: int = 110) -> dict[int, str]:
    """The text of a few lines of a file (truncated), read in one pass."""
    wanted, found = set(lines), {}
    if not wanted:
        return found
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number in wanted:
                text = raw.decode("utf-8", errors="replace").rstrip("\n")
                found[number] = text if len(text) <= width else text[:width] + "…"
            if number >= max(wanted):
                break
    return found


def findings_html(report: DataReport, path: Path, per_code: int = 5) -> str:
    """Findings grouped by code, each with its offending lines (sensitive lines are not shown)."""
    if not report.findings:
        return ("<p>✅ " + _("No findings: the file follows the format.") + "</p>")
    groups = report.by_code()
    shown_lines = {f.line for code, items in groups.items() if code not in _SENSITIVE for f in items[:per_code] if f.line}
    texts = _line_text(path, shown_lines)
    icon = {"error": "❌", "warning": "⚠️", "note": "ℹ️"}
    parts = []
    for code, items in groups.items():
        severity, meaning = CODES[code]
        rows = []
        for f in items[:per_code]:
            where = _("line {line}").format(line=f.line) if f.line is not None else _("file")
            snippet = "" if code in _SENSITIVE or f.line not in texts else f"<br><code>{html.escape(texts[f.line])}</code>"
            rows.append(f"<li>{where}: {html.escape(f.message)}{snippet}</li>")
        more = report.counts[code] - min(len(items), per_code)
        if more > 0:
            rows.append("<li><i>" + _("... and {n} more").format(n=more) + "</i></li>")
        parts.append(f"<details{' open' if severity == 'error' else ''}><summary>{icon[severity]} <b>{code}</b> ×{report.counts[code]} — {html.escape(_(meaning))}</summary><ul>{''.join(rows)}</ul></details>")
    return "".join(parts)


class DataDoctor(LeavesSummary, w.VBox):
    """Pick (or upload) a chat JSONL file, check it, see findings, token lengths and training cost."""

    def __init__(self, path: str | Path | None = None, *, model: str = "gpt-4o-mini", epochs: int = 0) -> None:
        files = sorted(str(p.relative_to(data_dir().parent)) for p in data_dir().glob("**/*.jsonl"))
        default = "data/recipes/train.jsonl"
        start = display_path(path) if path else (default if default in files else (files[0] if files else ""))
        if start and start not in files:
            files.insert(0, start)
        self.file = w.Combobox(value=start, options=files, description=_("File:"), layout=w.Layout(width="60%"), ensure_option=False)
        self.upload = w.FileUpload(accept=".jsonl,.json,.txt", multiple=False, description=_("Upload"))
        self.model = w.Dropdown(options=_model_choices(model), value=model, description=_("Model:"))
        self.epochs = w.BoundedIntText(value=epochs, min=0, max=50, description=_("Epochs:"), tooltip=_("0 = OpenAI's default rule"))
        self.check = w.Button(description=_("Check"), button_style="primary", icon="stethoscope")
        self.verdict = w.HTML()
        self.findings = w.HTML()
        self.histogram = w.Image(format="png", layout=w.Layout(max_width="640px"))
        self.cost = w.HTML()
        self.report: DataReport | None = None
        self.check.on_click(self._on_check)
        self.upload.observe(self._on_upload, names="value")
        super().__init__([
            w.HBox([self.file, self.upload]),
            w.HBox([self.model, self.epochs, self.check]),
            self.verdict, self.findings, self.histogram, self.cost,
        ])
        if path:  # a file named up front is checked at once (pick another, or press Check again, to re-check)
            self._on_check()

    def _resolve(self) -> Path:
        return project_path(self.file.value)

    def _on_upload(self, change: dict[str, Any]) -> None:
        value = change["new"]
        if not value:
            return
        item = value[0]
        folder = Path(tempfile.mkdtemp(prefix="lessonlib-upload-"))
        target = folder / Path(item["name"]).name
        target.write_bytes(bytes(item["content"]))
        self.file.value = display_path(target)
        self._on_check()

    def static_summary(self) -> str | None:
        """The verdict, the findings and the cost, as they stood when the cell ran (for GitHub and nbviewer)."""
        return self.verdict.value + self.findings.value + self.cost.value if self.verdict.value else None

    def _on_check(self, _button: Any = None) -> None:
        path = self._resolve()
        self.check.disabled = True
        self.verdict.value = ("<i>" + _("Checking…") + "</i>")
        try:
            report = validate(path, model=self.model.value, epochs=self.epochs.value or None)
        except LessonError as exc:
            self.report = None
            self.verdict.value = problem_line(exc)
            self.findings.value = self.cost.value = ""
            self.histogram.value = b""
            return
        finally:
            self.check.disabled = False
        self.report = report
        status = ("✅ " + _("ready to upload") if report.ok else
                  "❌ " + ngettext("{n} error to fix first", "{n} errors to fix first", report.error_count).format(n=report.error_count))
        examples = ngettext("{n} example", "{n} examples", report.examples).format(n=report.examples)
        warnings = ngettext("{n} warning", "{n} warnings", report.warning_count).format(n=report.warning_count)
        self.verdict.value = f"<h4>{html.escape(path.name)}: {examples} — {status}; {warnings}</h4>"
        self.findings.value = findings_html(report, path)
        context = report.cost.price.training_context if report.cost else None
        if len(report.tokens.per_example):
            stats = report.tokens.summary()
            fig = plots.token_histogram(list(report.tokens.per_example), context=context,
                                        title=_("Tokens per example ({model}: min {min}, mean {mean}, max {max})").format(model=report.model, **stats))
            self.histogram.value = plots.png(fig)
        else:
            self.histogram.value = b""
        if report.cost is not None:
            c = report.cost
            cost = _("<b>Training cost:</b> {tokens:,} tokens × {epochs} epochs = {billed:,} billed tokens → <b>${usd:,.2f}</b>").format(
                tokens=c.billed_tokens_per_epoch, epochs=c.epochs, billed=c.billed_tokens, usd=c.usd)
            source = _("{provider}/{model}, prices of {date} from {source} — check before you spend.").format(
                provider=html.escape(c.price.provider), model=html.escape(c.price.model), date=c.price.as_of,
                source=html.escape(c.price.source))
            self.cost.value = f"<p>{cost}<br><small>{source}</small></p>"
        else:
            self.cost.value = "<p><i>" + _("No price known for {model}.").format(model=html.escape(report.model)) + "</i></p>"


class BreakEvenExplorer(LeavesSummary, w.VBox):
    """Sliders over :func:`lessonlib.costs.break_even`: when does a fine-tuned model pay off?"""

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        provider: str = "openai",
        example_tokens: float = 150,
        prompt_tokens: float = 100,
        completion_tokens: float = 40,
        training_tokens: int = 30_000,
        requests: int = 20_000,
        shots: int = 10,
    ) -> None:
        self.example_tokens, self.prompt_tokens = example_tokens, prompt_tokens
        self.completion_tokens, self.training_tokens = completion_tokens, training_tokens
        rows = [p for p in costs.load_prices() if p.provider != "local"]
        self.price = w.Dropdown(options=[(f"{p.provider}/{p.model}", p) for p in rows], value=costs.get_price(model, provider), description=_("Model:"), layout=w.Layout(width="50%"))
        self.requests = w.IntSlider(value=requests, min=0, max=500_000, step=1_000, description=_("Requests/mo"), continuous_update=False, style={"description_width": "initial"})
        self.shots = w.IntSlider(value=shots, min=0, max=50, description=_("Examples/prompt"), continuous_update=False, style={"description_width": "initial"})
        self.months = w.IntSlider(value=1, min=1, max=24, description=_("Spread training over (months)"), continuous_update=False, style={"description_width": "initial"})
        self.text = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(max_width="640px"))
        self.result: costs.BreakEven | None = None
        for control in (self.price, self.requests, self.shots, self.months):
            control.observe(self.update, names="value")
        super().__init__([self.price, self.requests, self.shots, self.months, self.text, self.chart])
        self.update()

    def static_summary(self) -> str | None:
        """The break-even line for the settings the cell left (for GitHub and nbviewer)."""
        settings = _("{shots} examples per prompt, {requests:,} requests a month:").format(shots=self.shots.value, requests=self.requests.value)
        return f"<p><b>{html.escape(f'{self.price.value.provider}/{self.price.value.model}')}</b>, {settings}</p>" + self.text.value

    def compute(self, requests: int) -> costs.BreakEven:
        return costs.break_even(
            price=self.price.value, requests_per_month=requests, base_prompt_tokens=self.prompt_tokens,
            example_tokens=self.example_tokens, shots=self.shots.value, completion_tokens=self.completion_tokens,
            training_tokens=self.training_tokens, months=self.months.value,
        )

    def update(self, _change: Any = None) -> None:
        self.result = result = self.compute(self.requests.value)
        self.text.value = f"<p>{html.escape(str(result))}</p>"
        top = max(self.requests.value * 2, int(result.break_even_requests or 0) * 2, 10_000)
        points = [self.compute(int(top * i / 40)) for i in range(41)]
        self.chart.value = plots.png(plots.break_even_curve(points, marker=result))
