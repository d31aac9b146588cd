"""What a widget leaves in a saved notebook: a static summary beside the live view.

A widget's output cell holds a reference to its live view, which only a running kernel can draw.
GitHub, nbviewer and a notebook opened without its kernel show the output's ``text/html`` or
``text/plain`` instead: by default an unreadable ``VBox(children=(…`` line. A widget that mixes in
:class:`LeavesSummary` and returns HTML from ``static_summary()`` leaves that summary there (the
state when the cell ran); JupyterLab still draws the live widget, which it ranks above both. A
widget whose result comes later (a training run, a decision made in a later cell) calls
``refresh_summary()`` then: every output showing it is updated in place (IPython's display ids), so
the saved notebook keeps the result, not the empty form.

Work a view runs in the background (:meth:`LeavesSummary.start_in_background`: a training run, the
data-size study) goes on after *Run All* has finished. :func:`wait_for_background` waits for all of
it in a kernel and then refreshes each view's summary: what a tool that saves or measures a notebook
after its last cell runs in its kernel (``tests/execute_notebooks.py``, ``benchmarks/binder_walk.py``).
The test run's memory check (``conftest.py``) calls :func:`stop_background` instead: each view's
first result, then a stop.

>>> import html, re
>>> re.sub(r"<[^>]+>", "", "<p>pays off above <b>2,302</b> requests</p>")
'pays off above 2,302 requests'
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from ..i18n import _

#: Views with work in a background thread (pruned when it ends): see :func:`wait_for_background`.
_BACKGROUND: list[tuple[threading.Thread, LeavesSummary]] = []


class LeavesSummary:
    """Mixin for ``ipywidgets`` widgets: ``static_summary()`` (HTML, or None) goes into the saved output."""

    def static_summary(self) -> str | None:
        return None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        summary = self.static_summary()
        if summary and isinstance(bundle, dict):
            bundle["text/html"] = summary
            bundle["text/plain"] = plain_text(summary)
        return bundle

    def _ipython_display_(self, **kwargs: Any) -> None:
        """Display the live view with a display id, kept so that :meth:`refresh_summary` can update the output."""
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if not isinstance(bundle, dict):
            return
        handle = display(bundle, raw=True, display_id=True)
        if handle is not None:
            self.__dict__.setdefault("_summary_handles", []).append(handle)

    def start_in_background(self, work: Callable[[], None], name: str) -> threading.Thread:
        """Run ``work`` in a daemon thread, known to :func:`wait_for_background`."""
        thread = threading.Thread(target=work, name=name, daemon=True)
        _BACKGROUND[:] = [(t, view) for t, view in _BACKGROUND if t.is_alive()]
        _BACKGROUND.append((thread, self))
        self.__dict__["_background"] = thread
        thread.start()
        return thread

    def running(self) -> bool:
        """Whether this view's background work is still going."""
        thread = self.__dict__.get("_background")
        return thread is not None and thread.is_alive()

    def wait_for_background_work(self, timeout: float | None = None) -> bool:
        """Wait for this view's background work (at most ``timeout`` s); True when none is left."""
        thread = self.__dict__.get("_background")
        if thread is not None:
            thread.join(timeout)
        return not self.running()

    def refresh_summary(self) -> None:
        """Put the current summary into every output that shows this widget (what a saved notebook keeps)."""
        handles = self.__dict__.get("_summary_handles", [])
        if handles:
            bundle = self._repr_mimebundle_()
            for handle in handles:
                handle.update(bundle, raw=True)


def wait_for_background(timeout: float | None = None) -> int:
    """Wait for every view's background work in this process to end, then refresh their saved outputs.

    Returns how many views were waited for. ``timeout`` bounds the whole wait (seconds); views still
    working then are left running and counted.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    views = []
    for thread, view in _BACKGROUND.copy():
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not any(view is seen for seen in views):
            views.append(view)
    for view in views:
        if not view.running():
            view.refresh_summary()
    _BACKGROUND[:] = [(t, view) for t, view in _BACKGROUND if t.is_alive()]
    return len(views)


def stop_background(after_results: int = 1, timeout: float | None = None) -> list[str]:
    """Let each view's background work reach ``after_results`` results, stop it there, and wait for the end.

    What a test does instead of :func:`wait_for_background` when the whole of the work (the data-size
    study: several training runs) would cost minutes and its later results add nothing to check: a
    view with a ``results`` list and ``request_stop()`` is asked to stop after its current step once it
    has that many results. Returns the errors the views recorded (``view.error``), empty when all
    went well; their saved outputs are refreshed as :func:`wait_for_background` does.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    views: list[LeavesSummary] = []
    for thread, view in _BACKGROUND.copy():
        if hasattr(view, "request_stop") and hasattr(view, "results"):
            while thread.is_alive() and len(view.results) < after_results and (deadline is None or time.monotonic() < deadline):
                thread.join(0.2)
            if thread.is_alive():
                view.request_stop()
        if not any(view is seen for seen in views):
            views.append(view)
    wait_for_background(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return [str(view.error) for view in views if getattr(view, "error", None)]


def plain_text(fragment: str) -> str:
    """An HTML fragment as plain lines: tags dropped, table cells separated, entities decoded."""
    text = re.sub(r"</(p|h\d|tr|li|div|pre)>|<br\s*/?>", "\n", fragment)
    text = re.sub(r"</t[dh]>", " | ", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return "\n".join(line.strip(" |") for line in text.splitlines() if line.strip(" |"))


def problem_line(error: Any) -> str:
    """A :class:`~lessonlib.errors.LessonError` as one HTML line: its problem and, when it has one, its fix."""
    fix = ("<br><b>" + _("Fix:") + f"</b> {html.escape(error.fix)}") if error.fix else ""
    return ("<b>" + _("Problem:") + f"</b> {html.escape(error.message)}{fix}")


def png_tag(data: bytes, alt: str) -> str:
    """An ``<img>`` with PNG bytes inline (a saved notebook has no other place for a widget's image)."""
    import base64

    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode('ascii')}'>"
