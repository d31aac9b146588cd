"""Progress events, the stop flag, and the ``TrainerCallback`` that turns a trainer's hooks into events.

Any ``transformers.Trainer`` (TRL's ``SFTTrainer`` included) reports to the callbacks it is given.
:func:`progress_callback` makes one that sends a :class:`ProgressEvent` for each start, logged step,
evaluation and checkpoint to any function, and ends training cleanly after the current step when
its :class:`StopFlag` is set. The notebook widget, the command line's progress line, the runner and
the tests all consume the same events. Importing this module imports no heavy library; the
callback class is built from ``transformers.TrainerCallback`` on first use.

>>> events = []
>>> callback = progress_callback(events.append)                  # doctest: +SKIP
>>> trainer = SFTTrainer(..., callbacks=[callback])              # doctest: +SKIP
>>> trainer.train(); events[-1].kind                             # doctest: +SKIP
'step'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

EventHandler = Callable[["ProgressEvent"], None]


class StopFlag(threading.Event):
    """Set it (``flag.request()``, or the widget's Stop button) to end a run after the current step."""

    def request(self) -> None:
        self.set()


@dataclass
class ProgressEvent:
    """One thing that happened during a run; plain values only (serialisable, easy to test)."""

    kind: str  # "plan", "start", "step", "eval", "save", "end" or "stopped"
    step: int = 0  # optimiser steps done
    total: int = 0  # optimiser steps planned
    loss: float | None = None  # training loss of the last logged step(s)
    eval_loss: float | None = None  # validation loss (kind "eval")
    learning_rate: float | None = None  # current learning rate
    tokens_per_s: float | None = None  # real (non-padding) training tokens per second so far
    elapsed_s: float = 0.0  # seconds since training started
    eta_s: float | None = None  # estimated seconds left
    rss_gb: float | None = None  # resident memory of this process
    message: str = ""  # a line for humans

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_gb() -> float:
    """Resident memory of this process now (GB)."""
    import psutil

    return psutil.Process().memory_info().rss / 1e9


def peak_rss_gb() -> float:
    """The most resident memory this process has held since it started (GB; Linux counts it in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


class Progress:
    """Trainer hooks -> :class:`ProgressEvent`; honours the stop flag; keeps every event in ``history``."""

    def __init__(self, emit: EventHandler, stop: StopFlag | None = None, history: list[dict[str, Any]] | None = None):
        self.emit, self.stop = emit, stop or StopFlag()
        self.history = history if history is not None else []
        self.started = time.perf_counter()
        self.start_step = 0
        self.start_tokens = 0
        self.stopped = False

    def event(self, kind: str, state: Any, **values: Any) -> ProgressEvent:
        """Send one event built from the trainer's ``state`` (and keep it in ``history``)."""
        elapsed = time.perf_counter() - self.started
        done = state.global_step - self.start_step
        tokens = (getattr(state, "num_input_tokens_seen", 0) or 0) - self.start_tokens
        eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
        event = ProgressEvent(kind=kind, step=state.global_step, total=state.max_steps,
                              tokens_per_s=tokens / elapsed if elapsed > 0 and tokens else None,
                              elapsed_s=elapsed, eta_s=eta, rss_gb=rss_gb(), **values)
        self.history.append(event.to_dict())
        self.emit(event)
        return event

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        self.start_step = state.global_step
        self.start_tokens = getattr(state, "num_input_tokens_seen", 0) or 0
        self.event("start", state, message=f"training from step {state.global_step} to {state.max_steps}")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.event("step", state, loss=logs["loss"], learning_rate=logs.get("learning_rate"))
        if "eval_loss" in logs:
            self.event("eval", state, eval_loss=logs["eval_loss"])
        self.honour_stop(state, control)  # a stop asked while this step's event was shown

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.honour_stop(state, control)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.event("save", state, message=f"checkpoint at step {state.global_step}")

    def honour_stop(self, state: Any, control: Any) -> None:
        """End after the current step and save it (the trainer checks these flags right after)."""
        if self.stop.is_set() and not self.stopped and state.global_step < state.max_steps:
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True


_callback_class: type | None = None


def progress_callback(emit: EventHandler, stop: StopFlag | None = None, history: list[dict[str, Any]] | None = None) -> Any:
    """A ``transformers.TrainerCallback`` sending :class:`ProgressEvent` objects to ``emit``.

    Pass it to any trainer: ``SFTTrainer(..., callbacks=[progress_callback(print)])``. Its
    ``progress`` attribute is the :class:`Progress` behind it (``progress.stopped``, ``progress.history``).
    """
    global _callback_class
    if _callback_class is None:
        from transformers import TrainerCallback

        class ProgressCallback(TrainerCallback):
            """Trainer hooks -> lessonlib progress events (see :mod:`lessonlib.train.events`)."""

            def __init__(self, progress: Progress):
                self.progress = progress

            def on_train_begin(self, *a: Any, **k: Any) -> None:
                self.progress.on_train_begin(*a, **k)

            def on_log(self, *a: Any, **k: Any) -> None:
                self.progress.on_log(*a, **k)

            def on_step_end(self, *a: Any, **k: Any) -> None:
                self.progress.on_step_end(*a, **k)

            def on_save(self, *a: Any, **k: Any) -> None:
                self.progress.on_save(*a, **k)

        _callback_class = ProgressCallback
    return _callback_class(Progress(emit, stop, history))
