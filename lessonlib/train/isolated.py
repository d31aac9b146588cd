"""One training run in a child process, so that the process that asked for it keeps no training memory.

:func:`run_in_subprocess` runs :func:`lessonlib.train.run` in a fresh Python process
(``multiprocessing``'s *spawn*: nothing of this process is copied) and hands its progress events to
``on_event`` here as they come; a Stop flag set here ends the run after the child's current step.
When the run ends the child exits, and everything it held — torch and TRL, the model, the optimiser
state, the C heap — goes back to the system. A notebook kernel that trains in-process keeps most
of that until it is shut down (Binder gives JupyterLab and every kernel 2 GB together: see
:mod:`lessonlib.memory_shares`); notebook 04 trains in-process on purpose, to show the code.

Costs and limits: the child imports torch afresh (a few seconds); ``callbacks`` cannot cross the
process boundary (use ``on_event``); the child's own messages go to the parent's standard error.

>>> from lessonlib.train import RunConfig
>>> result = run_in_subprocess(RunConfig(max_steps=2), on_event=print)   # doctest: +SKIP
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

from ..child import Child
from ..errors import LessonError
from ..i18n import _
from .config import RunConfig
from .events import EventHandler, ProgressEvent, StopFlag
from .machine import MachinePlan
from .runner import RunResult


def _child(channel: Any, config: dict[str, Any], resume: bool) -> None:
    """The child's side: run, sending ("event", dict) messages, then ("result", dict); a ("stop", None) from the
    parent, or the parent gone (a kernel shut down), ends the run after its current step."""
    from .runner import run

    flag = StopFlag()

    def watch() -> None:
        while channel.receive()[0] not in ("stop", "exit"):
            pass
        flag.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        result = run(RunConfig(**config), on_event=lambda event: channel.send("event", event.to_dict()), stop=flag,
                     resume=resume, owns_process=True)
    except LessonError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the parent raises it as a LessonError
        raise LessonError(_("training failed: {kind}: {problem}").format(kind=type(exc).__name__, problem=exc)) from None
    channel.send("result", result.to_dict())


def _result(body: dict[str, Any]) -> RunResult:
    return RunResult(**{**body, "plan": MachinePlan(**body["plan"])})


def run_in_subprocess(cfg: RunConfig, *, on_event: EventHandler | None = None, stop: StopFlag | None = None,
                      resume: bool = False, progress: bool | None = None) -> RunResult:
    """:func:`lessonlib.train.run` in a child process that exits when the run ends; returns its ``RunResult``.

    ``progress``: a live line with the step and the loss, replaced at the end by "Trained N steps." By default it
    shows where someone sees it (a notebook or a terminal) unless ``on_event`` is given: a view that follows the
    events (the training monitor, the data-size study) shows the progress itself, often from another thread.
    """

    from .. import models
    from ..progress import LiveLine

    cfg.check()
    models.make_room_for_training()  # the child needs the room more than this process's (or the service's) idle model
    child = Child(_child, asdict(cfg), resume, name="lessonlib-train",
                  ended=_("the training process ended unexpectedly (exit code {code})"))
    line = LiveLine(_("training"), enabled=progress if progress is not None or on_event is None else False)
    line.update(0, _("starting (loading the model)"))
    asked_to_stop = False
    try:
        while True:
            if stop is not None and stop.is_set() and not asked_to_stop:
                child.send("stop")
                asked_to_stop = True
            message = child.receive(timeout=0.2)
            if message is None:
                continue
            kind, body = message
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
    finally:
        child.stop(timeout=60, message=("stop", None))
