"""One exception type for every problem a learner can fix.

A :class:`LessonError` carries a one-line ``message`` (what is wrong) and an optional
``fix`` (the exact thing to do about it). The command line prints both on one line each and
exits non-zero; notebooks show them without a traceback. Anything that is *not* a
``LessonError`` is a bug in ``lessonlib`` and keeps its traceback.

>>> err = LessonError("no adapter at runs/x", fix="train one with `lessonlib train local`")
>>> str(err)
'no adapter at runs/x (fix: train one with `lessonlib train local`)'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LessonError(Exception):
    """A problem with the learner's input or environment, with the way to fix it."""

    exit_code: int = 1

    def __init__(self, message: str, *, fix: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        from .i18n import _

        return _("{message} (fix: {fix})").format(message=self.message, fix=self.fix) if self.fix else self.message

    def _repr_markdown_(self) -> str:  # pragma: no cover - shown by Jupyter only
        from .i18n import _

        text = "**" + _("Problem:") + f"** {self.message}"
        return text + ("  \n**" + _("Fix:") + f"** {self.fix}" if self.fix else "")

    def _render_traceback_(self) -> list[str]:
        """What a notebook shows for this error instead of a traceback (IPython's own protocol): the problem, and the fix."""
        from .i18n import _

        return [f"{type(self).__name__}: {self.message}"] + ([_("fix: {fix}").format(fix=self.fix)] if self.fix else [])


class MemoryShortfall(LessonError):
    """A step refused because it would not fit in the memory the container has left (the message has the numbers).

    In JupyterLab, once ``lessonlib.widgets`` is imported, it shows with a button that shuts down the learner's other
    idle kernels (:data:`memory_view`), through IPython's own protocol for exceptions (``_render_traceback_``): no
    exception handler of IPython's is replaced.
    """

    def _render_traceback_(self) -> list[str]:
        """The lines IPython shows for this error instead of a traceback; before them, :data:`memory_view`'s view."""
        if memory_view is not None:
            from IPython.display import display

            display(memory_view(self))
        return [f"{type(self).__name__}: {self}"]


#: What a notebook shows for a :class:`MemoryShortfall` above its message (``lessonlib.widgets`` sets it: the problem,
#: its fix and the button that frees the idle kernels); None shows the message alone.
memory_view: Callable[[MemoryShortfall], Any] | None = None


def error_to_dict(exc: LessonError) -> dict[str, Any]:
    """A :class:`LessonError` as plain values, for a child process to send back (see :func:`error_from_dict`)."""
    return {"message": exc.message, "fix": exc.fix, "exit_code": exc.exit_code, "memory": isinstance(exc, MemoryShortfall)}


def error_from_dict(body: dict[str, Any]) -> LessonError:
    """The error a child process sent: a :class:`MemoryShortfall` stays one, so the notebook still offers its button.

    >>> error = error_from_dict(error_to_dict(MemoryShortfall("needs 1.2 GB more", fix="shut down a kernel")))
    >>> type(error).__name__, error.fix
    ('MemoryShortfall', 'shut down a kernel')
    """
    kind = MemoryShortfall if body.get("memory") else LessonError
    return kind(body["message"], fix=body.get("fix"), exit_code=body.get("exit_code", 1))
