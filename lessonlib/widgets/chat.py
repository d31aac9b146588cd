"""A chat box over :func:`lessonlib.models.chat`: a prompt, a Send button, the reply."""

from __future__ import annotations

import html
import time

import ipywidgets as w

from .. import models
from ..errors import LessonError
from ..i18n import _
from .static import LeavesSummary, problem_line


class ChatBox(LeavesSummary, w.VBox):
    """Ask the local model (optionally with a LoRA adapter) and see the reply and its timing.

    A saved notebook shows the last question and reply (or how to use the box, before the first one).
    """

    def __init__(
        self,
        *,
        system: str | None = None,
        adapter: str | None = None,
        model: str | None = None,
        max_new_tokens: int = 80,
        prompt: str | None = None,
    ) -> None:
        self.system = system
        self.adapter = adapter
        self.model_name = model
        self.prompt = w.Textarea(value=_("Give me a recipe for pancakes.") if prompt is None else prompt, description=_("You:"), layout=w.Layout(width="100%", height="4em"))
        self.max_new_tokens = w.IntSlider(value=max_new_tokens, min=8, max=256, step=8, description=_("Max tokens"))
        self.send = w.Button(description=_("Send"), button_style="primary", icon="paper-plane")
        self.status = w.HTML(value="")
        self.reply = w.Textarea(value="", description=_("Model:"), disabled=True, layout=w.Layout(width="100%", height="10em"))
        self.send.on_click(self._on_send)
        super().__init__([self.prompt, w.HBox([self.max_new_tokens, self.send]), self.status, self.reply])

    def _on_send(self, _button: w.Button | None = None) -> None:
        text = self.prompt.value.strip()
        if not text:
            self.status.value = ("<i>" + _("Type a question first.") + "</i>")
            return
        self.send.disabled = True
        self.status.value = ("<i>" + _("Thinking... (the first reply also loads the model, a few seconds)") + "</i>")
        started = time.perf_counter()
        try:
            self.reply.value = models.chat(
                text,
                system=self.system,
                model=self.model_name,
                adapter=self.adapter,
                max_new_tokens=self.max_new_tokens.value,
            )
            self.status.value = "<small>" + _("answered in {seconds:.1f} s").format(seconds=time.perf_counter() - started) + "</small>"
        except LessonError as exc:
            self.reply.value = ""
            self.status.value = problem_line(exc)
        finally:
            self.send.disabled = False
            self.refresh_summary()

    def static_summary(self) -> str | None:
        """The last question and reply as HTML, or how to use the box before the first one."""
        if not self.reply.value:
            return ("<p><i>" + _("Chat box: type a question and press Send (in JupyterLab, with the kernel running).") + "</i></p>")
        return ("<p><b>" + _("You:") + f"</b> {html.escape(self.prompt.value)}</p><p><b>" + _("Model:")
                + f"</b> {html.escape(self.reply.value)}</p><p>{self.status.value}</p>")
