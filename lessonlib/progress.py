"""A live progress line for long work: one line rewritten in place, then a one-line summary.

Scope: work that runs for more than a few seconds in a notebook cell or a terminal (a training run in
a child process, a batch of replies, a study). The line is written to standard output with carriage
returns: JupyterLab and a terminal redraw it in place as the work goes on, and a saved notebook keeps
only the final summary, because Jupyter's tools (nbclient with ``coalesce_streams``, strict nbval)
drop the text a carriage return overwrites. The summary must therefore be the same on every run: no
timings or losses in it (print those separately, where a test can ignore them).

Limits: one line, no nesting. The line shows only where someone can see it redrawn: a Jupyter kernel
or a terminal. Elsewhere (pytest, a pipe, a log file) nothing is written, not even the summary,
unless ``enabled=True`` asks for it.

>>> import io
>>> out = io.StringIO()
>>> line = LiveLine("scoring", total=2, stream=out, enabled=True)
>>> line.update(1, "few-shot")
>>> line.finish("Scored 2 strategies.")
>>> out.getvalue()
'\\rscoring: 1 of 2 · few-shot\\rScored 2 strategies.\\n'
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TextIO, TypeVar

from .i18n import _

T = TypeVar("T")


def shown_here(stream: TextIO | None = None) -> bool:
    """Whether a live line would be seen redrawn: in a Jupyter kernel, or on a terminal."""
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None and getattr(shell, "kernel", None) is not None:
                return True
        except ImportError:  # pragma: no cover - ipykernel without IPython does not happen
            pass
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


class LiveLine:
    """One progress line: :meth:`update` redraws it, :meth:`finish` replaces it with a summary."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stdout
        self.enabled = shown_here(self.stream) if enabled is None else enabled
        self._width = 0  # the longest line written: a terminal needs the rest blanked

    def _write(self, text: str, end: str = "") -> None:
        if not self.enabled:
            return
        pad = " " * max(0, self._width - len(text)) if getattr(self.stream, "isatty", lambda: False)() else ""
        self._width = max(self._width, len(text))
        self.stream.write("\r" + text + pad + end)
        self.stream.flush()

    def update(self, done: int, detail: str = "") -> None:
        """Show ``done`` (of ``total``) and a short detail: "training: 12 of 20 · loss 0.81"."""
        count = _("{done} of {total}").format(done=done, total=self.total) if self.total else str(done)
        self._write(f"{self.label}: {count}" + (f" · {detail}" if detail else ""))

    def show(self, text: str) -> None:
        """Redraw the line with any text ("Azure job: running")."""
        self._write(text)

    def finish(self, summary: str) -> None:
        """Replace the line with ``summary`` (the same on every run) and end it."""
        self._write(summary, end="\n")


def track(items: Sequence[T], label: str, *, summary: str | None = None, enabled: bool | None = None,
          stream: TextIO | None = None) -> Iterator[T]:
    """Yield each of ``items`` while a live line counts them ("replies: 3 of 16"), then print ``summary``
    (by default "label: 16 done").

    >>> import io
    >>> out = io.StringIO()
    >>> [x * 2 for x in track([1, 2], "doubling", stream=out, enabled=True)]
    [2, 4]
    >>> out.getvalue()
    '\\rdoubling: 0 of 2\\rdoubling: 1 of 2\\rdoubling: 2 of 2\\rdoubling: 2 done\\n'
    """
    line = LiveLine(label, total=len(items), stream=stream, enabled=enabled)
    line.update(0)
    for done, item in enumerate(items, start=1):
        yield item
        line.update(done)
    line.finish(summary or _("{label}: {n} done").format(label=label, n=len(items)))
