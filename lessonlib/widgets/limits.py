"""The data-size study in the background: the notebook reads on while its runs train, and shows them as they end."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w

from .. import limits, plots
from ..errors import LessonError
from ..i18n import _
from ..train import ProgressEvent, StopFlag
from .kernels import cleaners_for, problem_html
from .static import LeavesSummary, png_tag


class DataSizeStudy(LeavesSummary, w.VBox):
    """:func:`lessonlib.limits.data_size_study` run in the background, its table and curves filled in as each run ends.

    ``start()`` runs the study in a thread (each run in a child process, as the function does), so
    the next cells run meanwhile: a study of two runs takes a few minutes on two cores, longer than a
    notebook should keep its learner waiting. The view shows the run in progress, the table so far,
    the validation curves and, at the end, which size reached the lowest validation loss. ``join()``
    waits for the end and returns the results (what a script or a test does); **Stop** ends the run in
    progress after its step and skips the sizes left. Options are those of ``data_size_study``;
    ``study`` replaces that function (tests pass a fake one that needs no model).

    >>> view = DataSizeStudy([10, 50, "all"], folder="runs/08", f1_limit=6)   # doctest: +SKIP
    >>> view.start(); view                                                      # doctest: +SKIP
    >>> sizes = view.join()                                                     # doctest: +SKIP
    """

    def __init__(self, sizes: Sequence[int | str | None], *, study: Callable[..., list[limits.SizeResult]] | None = None,
                 **options: Any) -> None:
        self.sizes, self.options = list(sizes), options
        self._study = study or limits.data_size_study
        self.results: list[limits.SizeResult] = []
        self.error: str | None = None
        self.stop_flag = StopFlag()
        self._started: float | None = None
        self.stop = w.Button(description=_("Stop"), button_style="danger", icon="stop", disabled=True)
        self.status = w.HTML("<i>" + _("Not started yet: {start} runs it in the background.").format(start="<code>start()</code>") + "</i>")
        self.table = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(max_width="640px"))
        self.conclusion = w.HTML()
        self.stop.on_click(lambda _b: self.request_stop())
        super().__init__([self.status, self.stop, self.table, self.chart, self.conclusion])

    def start(self) -> None:
        """Run the study in a background thread; the cell returns at once."""
        if self.running():
            return
        self.stop_flag.clear()
        self.results, self.error, self._started = [], None, time.monotonic()
        self.stop.disabled = False
        self.table.value = self.conclusion.value = ""
        self.chart.value = b""
        self.status.value = "<i>" + _("Running in the background: {n} sizes, one run after the other. Read on; the table fills in here.").format(
            n=len(self.sizes)) + "</i>"
        self.start_in_background(self._work, "lessonlib-study")

    def request_stop(self) -> None:
        self.stop_flag.request()
        self.stop.disabled = True
        self.status.value = ("<i>" + _("Stopping after this step…") + "</i>")

    def join(self, timeout: float | None = None) -> list[limits.SizeResult]:
        """Wait for the study to end (or ``timeout`` seconds); the results so far."""
        self.wait_for_background_work(timeout)
        return self.results

    def static_summary(self) -> str:
        parts = [f"<p>{self.status.value}</p>", self.table.value,
                 png_tag(self.chart.value, _("validation loss by data size")) if self.chart.value else "",
                 f"<p>{self.conclusion.value}</p>" if self.conclusion.value else ""]
        return "".join(parts)

    # work ------------------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            self._study(self.sizes, on_event=self._on_event, on_result=self._on_result, stop=self.stop_flag, **self.options)
            seconds = time.monotonic() - (self._started or time.monotonic())
            done, of = len(self.results), len(self.sizes)
            self.status.value = (_("<b>Stopped:</b> {done} of {of} sizes finished.").format(done=done, of=of) if self.stop_flag.is_set()
                                 else _("<b>Done:</b> {done} of {of} sizes in {minutes:.1f} min.").format(done=done, of=of, minutes=seconds / 60))
            self.conclusion.value = html.escape(limits.lowest_loss(self.results)) if self.results else ""
        except LessonError as exc:  # a memory refusal also gets the button that shuts down idle kernels
            self.error = str(exc)
            self.status.value = problem_html(exc)
            self.children = (*self.children, *cleaners_for(exc))
        finally:
            from .. import models

            models.unload()  # the token encodings the scoring loaded in this kernel go back (as the notebook's last cell does)
            self.stop.disabled = True
            self.refresh_summary()

    def _label(self) -> str:
        """The size being worked on: the next one without a result."""
        size = self.sizes[min(len(self.results), len(self.sizes) - 1)]
        n = limits.run_size(size)
        return _("{n} examples").format(n=n) if n else _("all examples")

    def _on_event(self, event: ProgressEvent) -> None:
        if event.kind in {"step", "eval"} and event.total:
            eta = _(" · about {seconds:.0f} s left in this run").format(seconds=event.eta_s) if event.eta_s else ""
            self.status.value = "<i>" + _("Training on {size}: step {step} of {total}{eta}.").format(
                size=self._label(), step=event.step, total=event.total, eta=eta) + "</i>"
        elif event.kind == "end" and self.options.get("f1_limit"):
            self.status.value = "<i>" + _("Scoring the adapter of {size} on {n} held-out recipes…").format(
                size=self._label(), n=self.options["f1_limit"]) + "</i>"

    def _on_result(self, result: limits.SizeResult) -> None:
        self.results.append(result)
        self.table.value = f"<pre>{html.escape(limits.size_table(self.results))}</pre>"
        self.chart.value = plots.png(plots.data_size_curves(self.results))
        if len(self.results) < len(self.sizes):
            self.status.value = "<i>" + _("{done} of {of} sizes done; next: {size}.").format(
                done=len(self.results), of=len(self.sizes), size=self._label()) + "</i>"
        self.refresh_summary()
