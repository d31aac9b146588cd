"""The training launcher and the before/after view: thin widgets over :mod:`lessonlib.train`."""

from __future__ import annotations

import html
import threading
import weakref
from typing import Any

import ipywidgets as w

from .. import plots
from ..errors import LessonError
from ..i18n import _
from ..train import (
    MachinePlan,
    ProgressEvent,
    RunConfig,
    RunResult,
    StopFlag,
    run,
    run_in_subprocess,
)
from ..train.compare import before_after, is_json_list
from ..train.machine import record_trained_here
from ..train.replay_trainer import shared_progress_callback
from .kernels import cleaners_for, problem_html
from .static import LeavesSummary, png_tag, problem_line


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class TrainingMonitor(LeavesSummary, w.VBox):
    """Watch a run learn (progress, losses, tokens/s, ETA, memory), and launch or stop it.

    Two ways to use it:

    * with your own trainer: ``monitor = TrainingMonitor()``, then
      ``SFTTrainer(..., callbacks=[monitor.callback()])`` and ``trainer.train()``: the view follows
      the run (the cell is busy until it ends, so Stop waits for the next cell; interrupt the kernel
      to stop at once);
    * with lessonlib's runner: ``TrainingMonitor(config)``; ``start()`` launches ``lessonlib.train.run``
      in a child process (``run_in_subprocess``: the kernel keeps none of the training's memory),
      followed by a thread so the **Stop** button stays responsive; ``join()`` waits for it (what a
      script or a test does). ``in_child=False`` runs it in this process instead, for a kernel that
      holds the libraries already (a child beside it would hold them twice).

    ``events`` holds every event received. When the run ends, the saved notebook's output of the
    monitor becomes its last state (status, figures, loss chart): see :mod:`lessonlib.widgets.static`.
    """

    def __init__(self, config: RunConfig | None = None, *, resume: bool = False, plot_every: int = 2,
                 in_child: bool = True) -> None:
        self.config, self.resume, self.plot_every, self.in_child = config, resume, plot_every, in_child
        self.stop_flag = StopFlag()
        self.events: list[ProgressEvent] = []
        self.result: RunResult | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._own_plan: MachinePlan | None = None  # the plan of a trainer of the learner's own (callback(plan))
        self.launch = w.Button(description=_("Train"), button_style="primary", icon="play", disabled=config is None)
        self.stop = w.Button(description=_("Stop"), button_style="danger", icon="stop", disabled=True)
        steps = config.max_steps if config is not None else 0
        self.progress = w.IntProgress(value=0, min=0, max=max(steps, 1), description=_("Step {step}").format(step=0), layout=w.Layout(width="60%"))
        self.stats = w.HTML()
        self.plan = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(max_width="640px"))
        self.status = w.HTML()
        self.launch.on_click(lambda _b: self.start())
        self.stop.on_click(lambda _b: self.request_stop())
        super().__init__([w.HBox([self.launch, self.stop]), self.progress, self.stats, self.chart, self.plan, self.status])

    def callback(self, plan: MachinePlan | None = None) -> object:
        """A ``TrainerCallback`` that feeds this view: pass it to any trainer (``callbacks=[monitor.callback()]``).

        The training about to run gets the room: the local service, if one runs, gives back the model
        it holds for replies (it reloads it when next asked). ``plan``: the machine plan the trainer
        follows; when the run ends, a later run in this kernel counts on what this one measured
        (:func:`lessonlib.train.machine.needed_gb`)."""
        from .. import models

        models.make_room_for_training()
        self._own_plan = plan
        self.stop_flag.clear()
        self.events.clear()
        self.stop.disabled = False
        return shared_progress_callback(self.on_event, self.stop_flag)

    # actions ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Launch ``lessonlib.train.run(config)`` (in a child process unless ``in_child=False``), followed by a thread."""
        if self.config is None:
            raise LessonError(_("this monitor has no run configuration to launch"),
                              fix=_("TrainingMonitor(RunConfig(...)), or pass monitor.callback() to your trainer"))
        if self._thread is not None and self._thread.is_alive():
            return
        self.stop_flag.clear()
        self.events.clear()
        self.result, self.error = None, None
        self.launch.disabled, self.stop.disabled = True, False
        self.status.value = ("<i>" + _("Loading the model and the data…") + "</i>")
        self._thread = self.start_in_background(self._work, "lessonlib-train")

    def request_stop(self) -> None:
        self.stop_flag.request()
        self.stop.disabled = True
        self.status.value = ("<i>" + _("Stopping after this step, then saving…") + "</i>")

    def join(self, timeout: float | None = None) -> RunResult | None:
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.refresh_summary()
        return self.result

    def static_summary(self) -> str | None:
        """The monitor's state as HTML: status, last figures, loss chart and the plan (what a saved notebook shows)."""
        if not self.events and not self.status.value:
            return ("<p><i>" + _("Training monitor: no run yet.") + "</i></p>")
        parts = [f"<p>{self.status.value}</p>" if self.status.value else "",
                 "<p>" + _("{step} of {total}").format(step=self.progress.description, total=self.progress.max) + f" · {self.stats.value}</p>" if self.stats.value else "",
                 png_tag(self.chart.value, _("loss curve")) if self.chart.value else "",
                 f"<p>{self.plan.value}</p>" if self.plan.value else ""]
        return "".join(parts)

    # work ------------------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            if self.in_child:
                self.result = run_in_subprocess(self.config, on_event=self.on_event, stop=self.stop_flag, resume=self.resume)
            else:
                from .. import models

                models.make_room_for_training()
                self.result = run(self.config, on_event=self.on_event, stop=self.stop_flag, resume=self.resume)
            self.status.value = self.summary(self.result)
            if self.result.best_step is not None:
                self.chart.value = plots.png(plots.loss_curves(self.events, best_step=self.result.best_step))
        except LessonError as exc:
            self.error = str(exc)
            self.status.value = problem_html(exc)
            self.children = (*self.children, *cleaners_for(exc))
        finally:
            self.launch.disabled, self.stop.disabled = False, True
            self.refresh_summary()

    @staticmethod
    def summary(r: Any) -> str:
        """The status line for a finished run (HTML)."""
        verb = _("Stopped:") if r.stopped else (_("Early stopping:") if r.early_stopped else _("Done:"))
        evl = _(", validation loss {loss:.3f}").format(loss=r.eval_loss) if r.eval_loss is not None else ""
        if r.early_stopped:
            evl += _(" (best {loss:.3f} at step {step}: that adapter is the one saved)").format(loss=r.best_eval_loss, step=r.best_step)
        loss = _(", loss {first:.3f} → {last:.3f}").format(first=r.first_loss, last=r.final_loss) if r.first_loss is not None else ""
        saved = _("Saved in {folder}").format(folder=f"<code>{html.escape(r.output_dir)}</code>")
        resume = _(" — continue it with {resume}.").format(resume="<code>resume=True</code>") if r.stopped else "."
        return f"<b>{verb}</b> " + _("{steps} steps in {seconds:.0f} s").format(steps=r.steps, seconds=r.train_seconds) + f"{loss}{evl}. {saved}{resume}"

    def on_event(self, event: ProgressEvent) -> None:
        """Update the view from one progress event (called from the training thread)."""
        self.events.append(event)
        if event.kind == "plan":
            self.plan.value = "<small>" + _("Chosen for this machine:") + " " + html.escape(event.message) + "</small>"
            return
        if event.total:
            self.progress.max = event.total
        self.progress.value = event.step
        self.progress.description = _("Step {step}").format(step=event.step)
        self.stats.value = _("tokens/s <b>{speed:.0f}</b> · elapsed {elapsed} · ETA {eta} · memory {memory:.2f} GB").format(
            speed=event.tokens_per_s or 0, elapsed=_fmt_seconds(event.elapsed_s), eta=_fmt_seconds(event.eta_s), memory=event.rss_gb or 0)
        if event.kind == "start":
            self.status.value = ("<i>" + _("Training…") + "</i>")
        if event.kind in {"end", "stopped"} or (event.step and event.step >= event.total and self._thread is None):
            self.stop.disabled = True
            if self._thread is None:  # a trainer of the learner's own: the summary line comes from the events
                last = next((e for e in reversed(self.events) if e.loss is not None), None)
                verb = _("Stopped:") if self.stop_flag.is_set() else _("Done:")
                self.status.value = (f"<b>{verb}</b> " + _("{steps} steps in {time}").format(steps=event.step, time=_fmt_seconds(event.elapsed_s))
                                     + (_(", last loss {loss:.3f}").format(loss=last.loss) if last else "") + ".")
        if event.kind == "eval" or (event.kind == "step" and (event.step % self.plot_every == 0 or event.step >= event.total)) or event.kind in {"end", "stopped"}:
            self.chart.value = plots.png(plots.loss_curves(self.events))
        if self._thread is None and (event.kind in {"end", "stopped"} or (event.step and event.step >= event.total)):
            self.refresh_summary()  # a trainer of the learner's own has finished: the saved output keeps its state
            if self._own_plan is not None and not self.stop_flag.is_set():
                record_trained_here(self._own_plan.estimated_peak_gb)


class BeforeAfter(LeavesSummary, w.VBox):
    """Base and tuned answers side by side for the same prompts (greedy, so reproducible).

    Either ``adapter`` (a folder: lessonlib loads the model without and with it), or ``tuned`` (a
    ``PeftModel`` already loaded) and its ``tokenizer``: see :func:`lessonlib.train.compare.before_after`.
    The view keeps no reference to ``tuned``: ``del`` on the learner's variables gives its memory back.
    """

    def __init__(self, examples: list[dict[str, Any]], *, adapter: str | None = None, max_new_tokens: int = 60,
                 tuned: Any = None, tokenizer: Any = None) -> None:
        self.examples, self.adapter, self.max_new_tokens = examples, adapter, max_new_tokens
        self._tuned = weakref.ref(tuned) if tuned is not None else None
        self.tokenizer = tokenizer
        self.button = w.Button(description=_("Compare"), button_style="primary", icon="columns")
        self.table = w.HTML()
        self.rows: list[dict[str, Any]] = []
        self.button.on_click(lambda _b: self.compare(progress=False))
        super().__init__([self.button, self.table])

    def static_summary(self) -> str | None:
        """The comparison table, once compared (for GitHub and nbviewer)."""
        return self.table.value if self.rows else None

    def compare(self, *, progress: bool | None = None) -> list[dict[str, Any]]:
        """Ask the base and the tuned model every prompt, then show the table. While it works, the view
        (and, called from a cell, a live line under it) says which model is answering."""
        from ..progress import LiveLine

        self.button.disabled = True
        self.table.value = ("<i>" + _("Asking both models…") + "</i>")
        line = LiveLine(_("asking"), total=2, enabled=progress)
        stages: list[str] = []

        def on_stage(name: str) -> None:
            stages.append(name)
            self.table.value = "<i>" + _("Asking the {model} ({n} of 2)…").format(model=_(name), n=len(stages)) + "</i>"
            line.update(len(stages) - 1, _(name))
        try:
            tuned = self._tuned() if self._tuned is not None else None
            if self._tuned is not None and tuned is None:
                raise LessonError(_("the tuned model given to this comparison has been deleted"),
                                  fix=_("load it again and make a new BeforeAfter, or pass adapter='runs/...'"))
            self.rows = before_after(self.examples, adapter=self.adapter, max_new_tokens=self.max_new_tokens,
                                     tuned=tuned, tokenizer=self.tokenizer, on_stage=on_stage)
        finally:
            self.button.disabled = False
        line.finish(_("Asked the base and the tuned model the same {n} prompts.").format(n=len(self.examples)))
        cells = "".join(
            f"<tr><td><pre>{html.escape(r['prompt'])}</pre></td><td><code>{html.escape(r['expected'])}</code></td>"
            f"<td>{'✅' if is_json_list(r['base']) else '❌'} <code>{html.escape(r['base'][:200])}</code></td>"
            f"<td>{'✅' if is_json_list(r['tuned']) else '❌'} <code>{html.escape(r['tuned'][:200])}</code></td></tr>"
            for r in self.rows
        )
        self.table.value = (
            ("<table><tr><th>" + _("prompt") + "</th><th>" + _("expected") + "</th><th>" + _("base model") + "</th><th>" + _("tuned model") + "</th></tr>")
            + cells + "</table><small>" + _("✅ = the answer is a JSON list (the trained format)") + "</small>"
        )
        self.refresh_summary()  # a view displayed before it compared keeps the table in the saved notebook
        return self.rows


class JobMonitor(w.VBox):
    """Follow a cloud fine-tuning job: status and events as they come (a thread polls the API)."""

    def __init__(self, job_id: str, *, provider: str = "openai", interval: float = 10.0) -> None:
        self.job_id, self.provider, self.interval = job_id, provider, interval
        self.status = w.HTML(f"<b>{html.escape(job_id)}</b>: " + _("not followed yet"))
        self.event_log = w.HTML()
        self.events: list[dict[str, Any]] = []
        self.job: dict[str, Any] | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        super().__init__([self.status, self.event_log])

    def _on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if event["kind"] == "status":
            self.status.value = f"<b>{html.escape(self.job_id)}</b>: {html.escape(event['status'])}"
        lines = [html.escape(e.get("message", "")) for e in self.events[-12:]]
        self.event_log.value = "<pre>" + "\n".join(lines) + "</pre>"

    def _work(self) -> None:
        from ..cloud import jobs

        try:
            self.job = jobs.follow(self.job_id, provider=self.provider, on_event=self._on_event, interval=self.interval)
            model = self.job.get("fine_tuned_model")
            self.status.value = f"<b>{html.escape(self.job_id)}</b>: {self.job['status']}" + (f" → <code>{html.escape(model)}</code>" if model else "")
        except LessonError as exc:
            self.error = str(exc)
            self.status.value = problem_line(exc)

    def follow(self) -> None:
        """Start polling in the background (returns at once)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="lessonlib-job", daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> dict[str, Any] | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.job
