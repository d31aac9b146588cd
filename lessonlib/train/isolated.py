"""One training run in a child process, so that the process that asked for it keeps no training memory.

:func:`run_in_subprocess` runs :func:`lessonlib.train.run` in a fresh Python process
(``multiprocessing``'s *spawn*: nothing of this process is copied) and hands its progress events to
``on_event`` here as they come; a Stop flag set here ends the run after the child's current step.
When the run ends the child exits, and everything it held — torch and TRL, the model, the optimiser
state, the C heap — goes back to the system. A notebook kernel that trains in-process keeps most
of that until it is shut down (Binder gives JupyterLab and every kernel 2 GB together: see
:mod:`lessonlib.binder`); notebook 04 trains in-process on purpose, to show the code.

Costs and limits: the child imports torch afresh (a few seconds); ``callbacks`` cannot cross the
process boundary (use ``on_event``); the child's own messages go to the parent's standard error.

>>> from lessonlib.train import RunConfig
>>> result = run_in_subprocess(RunConfig(max_steps=2), on_event=print)   # doctest: +SKIP
"""

from __future__ import annotations

import queue
import threading
from dataclasses import asdict
from typing import Any

from ..errors import LessonError, error_from_dict, error_to_dict
from ..i18n import _
from .config import RunConfig
from .events import EventHandler, ProgressEvent, StopFlag
from .machine import MachinePlan
from .runner import RunResult


def _child(config: dict[str, Any], resume: bool, events: Any, stop: Any) -> None:
    """The child's side: run, sending ("event", dict) messages, then ("result", dict) or ("error", dict).

    ``stop`` is a lock-free shared byte the parent sets to 1: a lock shared with a process that may
    exit at any moment could stay locked for good.
    """
    import os
    import time

    from .runner import run

    flag, parent = StopFlag(), os.getppid()

    def watch() -> None:  # a Stop from the parent, or the parent gone (a kernel shut down): stop after this step
        while not stop.value and os.getppid() == parent:
            time.sleep(0.1)
        flag.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        result = run(RunConfig(**config), on_event=lambda event: events.put(("event", event.to_dict())), stop=flag,
                     resume=resume, owns_process=True)
        events.put(("result", result.to_dict()))
    except LessonError as exc:
        events.put(("error", error_to_dict(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it as a LessonError
        events.put(("error", {"message": f"training failed: {type(exc).__name__}: {exc}", "fix": None, "exit_code": 1}))


def _result(body: dict[str, Any]) -> RunResult:
    return RunResult(**{**body, "plan": MachinePlan(**body["plan"])})


def run_in_subprocess(cfg: RunConfig, *, on_event: EventHandler | None = None, stop: StopFlag | None = None,
                      resume: bool = False, progress: bool | None = None) -> RunResult:
    """:func:`lessonlib.train.run` in a child process that exits when the run ends; returns its ``RunResult``.

    ``progress``: a live line with the step and the loss, replaced at the end by "Trained N steps." By default it
    shows where someone sees it (a notebook or a terminal) unless ``on_event`` is given: a view that follows the
    events (the training monitor, the data-size study) shows the progress itself, often from another thread.
    """
    import multiprocessing

    from .. import models
    from ..progress import LiveLine

    cfg.check()
    models.make_room_for_training()  # the child needs the room more than this process's (or the service's) idle model
    context = multiprocessing.get_context("spawn")
    events, child_stop = context.Queue(), context.RawValue("b", 0)
    process = context.Process(target=_child, args=(asdict(cfg), resume, events, child_stop), name="lessonlib-train", daemon=True)
    process.start()
    line = LiveLine(_("training"), enabled=progress if progress is not None or on_event is None else False)
    line.update(0, _("starting (loading the model)"))
    try:
        while True:
            if stop is not None and stop.is_set():
                child_stop.value = 1
            try:
                kind, body = events.get(timeout=0.2)
            except queue.Empty:
                if not process.is_alive():
                    raise LessonError(_("the training process ended unexpectedly (exit code {exitcode})").format(exitcode=process.exitcode),
                                      fix=_("it may have run out of memory: `lessonlib doctor` shows what the machine allows")) from None
                continue
            if kind == "event":
                event = ProgressEvent(**body)
                if event.kind == "step" and event.total:
                    line.total = event.total
                    line.update(event.step, _("loss {loss:.2f}").format(loss=event.loss) if event.loss is not None else "")
                if on_event is not None:
                    on_event(event)
            elif kind == "result":
                result = _result(body)
                line.finish(_("Trained {n} steps.").format(n=result.steps))
                return result
            else:
                raise error_from_dict(body)
    finally:
        child_stop.value = 1
        process.join(timeout=60)
        if process.is_alive():
            process.terminate()
            process.join()
