"""A function run in a fresh child process that talks with its parent: the one harness for the service's reply
worker and for a training run in its own process.

Scope: :class:`Child` starts ``target(channel, *args)`` in a new Python process (``multiprocessing``'s *spawn*:
nothing of the parent's memory is copied, and everything the child holds goes back to the system when it exits).
Parent and child exchange ``(kind, body)`` messages of plain values over a pipe. An error raised in the child comes
back as a message: a :class:`~lessonlib.errors.LessonError` keeps its message and fix, anything else is reported by
its type and text. The child watches its parent: once the parent has gone, :meth:`Channel.parent_gone` turns true
and the pipe is closed, so a child waiting for work or checking between training steps ends by itself.

Limits: one message at a time each way; messages must pickle; the parent receives on one thread at a time.

>>> def echo(channel, greeting):
...     channel.send("result", greeting + ", " + channel.receive()[1])
>>> child = Child(echo, "hello", name="lessonlib-echo")   # doctest: +SKIP
>>> child.send("name", "world"); child.receive()          # doctest: +SKIP
('result', 'hello, world')
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import LessonError, error_from_dict, error_to_dict
from .i18n import _


class ChildFailed(Exception):
    """An error other than a LessonError in the child, raised in the parent with the child's type and text."""


class Channel:
    """The child's side: :meth:`send` to the parent, :meth:`receive` from it, :meth:`parent_gone` to stop early."""

    def __init__(self, connection: Any, parent: int) -> None:
        self._connection, self._parent = connection, parent
        self._gone = threading.Event()
        threading.Thread(target=self._watch, name="lessonlib-parent-watch", daemon=True).start()

    def _watch(self) -> None:
        while os.getppid() == self._parent:
            time.sleep(0.2)
        self._gone.set()

    def parent_gone(self) -> bool:
        """Whether the parent process has ended (a kernel shut down, a service stopped)."""
        return self._gone.is_set()

    def send(self, kind: str, body: Any = None) -> None:
        self._connection.send((kind, body))

    def send_error(self, exc: BaseException) -> None:
        """Report ``exc`` to the parent, which raises it (a LessonError keeps its message and fix)."""
        if isinstance(exc, LessonError):
            self.send("error", error_to_dict(exc))
        else:
            self.send("error", {"message": f"{type(exc).__name__}: {exc}", "fix": None, "other": True})

    def receive(self) -> tuple[str, Any]:
        """The next message from the parent; ``("exit", None)`` when the parent has gone or closed the pipe."""
        while not self._connection.poll(0.5):
            if self.parent_gone():
                return "exit", None
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            return "exit", None


def _main(target: Callable[..., None], connection: Any, parent: int, args: tuple[Any, ...]) -> None:
    channel = Channel(connection, parent)
    try:
        target(channel, *args)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        channel.send_error(exc)


class Child:
    """The parent's side: a running child, :meth:`send` and :meth:`receive` messages, :meth:`stop` it."""

    def __init__(self, target: Callable[..., None], *args: Any, name: str, ended: str | None = None) -> None:
        """Start ``target(channel, *args)`` in a process called ``name``. ``ended``: the message when it ends without a
        word (its ``{code}`` is the exit code), in the learner's language."""
        import multiprocessing

        self._ended = ended
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self.process = context.Process(target=_main, args=(target, child_end, os.getpid(), args), name=name, daemon=True)
        self.process.start()
        child_end.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, kind: str, body: Any = None) -> None:
        self._connection.send((kind, body))

    def receive(self, timeout: float | None = None) -> tuple[str, Any] | None:
        """The next message; None when ``timeout`` seconds pass without one. An ``("error", …)`` message is
        raised (a LessonError, or :class:`ChildFailed`); a child that ended without a word is a LessonError."""
        try:
            if timeout is not None and not self._connection.poll(timeout):
                if self.process.is_alive():
                    return None
                raise EOFError
            kind, body = self._connection.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            ended = self._ended or _("the {name} process ended unexpectedly (exit code {code})")
            raise LessonError(ended.format(name=self.process.name, code=self.process.exitcode),
                              fix=_("it may have run out of memory: `lessonlib doctor` shows what the machine allows")) from None
        if kind == "error":
            if body.get("other"):
                raise ChildFailed(body["message"])
            raise error_from_dict(body)
        return kind, body

    def stop(self, *, timeout: float = 30.0, message: tuple[str, Any] | None = ("exit", None)) -> None:
        """Ask the child to end (``message``), wait up to ``timeout`` seconds, then kill it."""
        if message is not None:
            try:
                self.send(*message)
            except (OSError, ValueError):
                pass
        self.process.join(timeout=timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._connection.close()
