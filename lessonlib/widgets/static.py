"""What a widget leaves in a saved notebook: a static summary beside the live view.

A widget's output cell holds a reference to its live view, which only a running kernel can draw.
GitHub, nbviewer and a notebook opened without its kernel show the output's ``text/html`` or
``text/plain`` instead: by default an unreadable ``VBox(children=(…`` line. A widget that mixes in
:class:`LeavesSummary` and returns HTML from ``static_summary()`` leaves that summary there (the
state when the cell ran); JupyterLab still draws the live widget, which it ranks above both.

>>> import html, re
>>> re.sub(r"<[^>]+>", "", "<p>pays off above <b>2,302</b> requests</p>")
'pays off above 2,302 requests'
"""

from __future__ import annotations

import html
import re
from typing import Any


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


def plain_text(fragment: str) -> str:
    """An HTML fragment as plain lines: tags dropped, table cells separated, entities decoded."""
    text = re.sub(r"</(p|h\d|tr|li|div)>|<br\s*/?>", "\n", fragment)
    text = re.sub(r"</t[dh]>", " | ", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return "\n".join(line.strip(" |") for line in text.splitlines() if line.strip(" |"))
