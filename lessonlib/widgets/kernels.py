"""The learner's other kernels, and a button that shuts down the idle ones (Binder's 2 GB are shared by all)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from .. import errors, jupyter
from ..errors import LessonError, MemoryShortfall
from ..i18n import _, ngettext


class KernelCleaner(w.VBox):
    """Lists the other kernels of this JupyterLab (notebook, state, memory); **Shut down idle kernels** frees them.

    ``list_kernels`` and ``shut_down`` default to :mod:`lessonlib.jupyter` on this kernel's server; a
    test passes its own. Busy kernels and this one are never shut down; notebooks and their outputs
    are saved files, so nothing is lost but the variables of those kernels.
    """

    def __init__(self, *, list_kernels: Callable[[], list[jupyter.Kernel]] | None = None,
                 shut_down: Callable[[list[jupyter.Kernel]], list[str]] | None = None) -> None:
        server = None if list_kernels and shut_down else jupyter.find_server()
        self._list = list_kernels or (lambda: jupyter.other_kernels(server) if server else [])
        self._shut_down = shut_down or (lambda kernels: jupyter.shut_down(server, kernels) if server else [])
        self.listing = w.HTML()
        self.button = w.Button(description=_("Shut down idle kernels"), icon="power-off", button_style="warning")
        self.status = w.HTML()
        self.button.on_click(lambda _: self.clean())
        super().__init__([self.listing, self.button, self.status])
        self.kernels: list[jupyter.Kernel] = []
        self.refresh()

    def idle(self) -> list[jupyter.Kernel]:
        return [k for k in self.kernels if k.state == "idle"]

    def refresh(self) -> None:
        try:
            self.kernels = self._list()
        except OSError as exc:
            self.kernels = []
            self.status.value = ("<b>" + _("Problem:") + "</b> ") + _("cannot reach the Jupyter server ({problem})").format(problem=html.escape(str(exc)))
        if not self.kernels:
            self.listing.value = _("No other kernel is running.")
        else:
            rows = "".join(f"<li>{html.escape(k.describe())}</li>" for k in self.kernels)
            self.listing.value = _("Other kernels running now:") + f"<ul>{rows}</ul>"
        self.button.disabled = not self.idle()
        idle = len(self.idle())
        self.button.description = ngettext("Shut down {n} idle kernel", "Shut down {n} idle kernels", idle).format(n=idle)

    def clean(self) -> list[str]:
        """Shut down the idle kernels listed; the notebooks whose kernels stopped."""
        done = self._shut_down(self.idle())
        self.refresh()
        self.status.value = (_("Shut down: {notebooks}. Run this notebook's cell again.").format(notebooks=html.escape(", ".join(done)))
                             if done else _("Nothing to shut down."))
        return done


def problem_html(error: LessonError, heading: str | None = None) -> str:
    """A refused step as HTML: its problem (under ``heading``, by default "Problem:") and, when it has one, its fix."""
    fix = ("<br><b>" + _("Fix:") + f"</b> {html.escape(error.fix)}") if error.fix else ""
    return f"<b>{html.escape(heading or _('Problem:'))}</b> <pre>{html.escape(error.message)}</pre>{fix}"


def cleaners_for(error: LessonError) -> list[Any]:
    """A :class:`KernelCleaner` for a memory refusal inside JupyterLab (the fix a learner can click); else nothing."""
    return [KernelCleaner()] if isinstance(error, MemoryShortfall) and jupyter.find_server() is not None else []


def show_memory_problem(error: LessonError) -> Any:
    """The problem, its fix and, inside JupyterLab, the :class:`KernelCleaner`: what a memory refusal shows."""
    return w.VBox([w.HTML(problem_html(error, _("Not enough memory:"))), *cleaners_for(error)])


def show_memory_problems_in_notebooks() -> None:
    """In IPython, show a :class:`~lessonlib.errors.MemoryShortfall` with :func:`show_memory_problem` above its message
    (the error renders itself, see ``MemoryShortfall._render_traceback_``; IPython's handlers are left as they are)."""
    errors.memory_view = show_memory_problem
