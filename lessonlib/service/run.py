"""Running the service in the foreground (``lessonlib serve``): the keys file of a class, the watch that ends a
service with the Jupyter server that started it, and uvicorn."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import local_service
from ..i18n import _
from .app import create_app


def read_keys(path: str | Path) -> dict[str, str]:
    """``name:key`` lines (blank lines and ``#`` comments skipped) -> ``{key: name}``; a bad line names file and line."""
    from ..errors import LessonError

    keys: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LessonError(_("cannot read the keys file {path}: {reason}").format(path=path, reason=exc.strerror or exc), exit_code=2) from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _sep, key = line.partition(":")
        if not name.strip() or len(key.strip()) < 8:
            raise LessonError(_("{path}, line {number}: expected NAME:KEY with a key of 8 characters or more").format(path=path, number=number),
                              fix=_("one learner a line, e.g. ada:a-long-random-key"), exit_code=2)
        keys[key.strip()] = name.strip()
    if not keys:
        raise LessonError(_("{path} holds no NAME:KEY line").format(path=path), fix=_("one learner a line, e.g. ada:a-long-random-key"), exit_code=2)
    return keys


def make_keys(path: str | Path, learners: int) -> tuple[int, int]:
    """Write a keys file for ``learners`` learners (``learner01:<random key>`` lines, readable by its owner only).

    An existing file keeps its lines; only the learners it lacks are added. Returns (added, total).
    The keys are never printed: hand each learner their own line.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "keys.txt")
    >>> make_keys(path, 3), make_keys(path, 5), len(read_keys(path))
    ((3, 3), (2, 5), 5)
    """
    import secrets

    path = Path(path)
    known = read_keys(path) if path.exists() else {}
    names = set(known.values())
    width = max(2, len(str(learners)))
    lines = [f"learner{number:0{width}d}:lessonlib-{secrets.token_urlsafe(24)}" for number in range(1, learners + 1)
             if f"learner{number:0{width}d}" not in names]
    lines = lines[:max(0, learners - len(known))]
    if lines:
        header = "" if path.exists() else "# lessonlib serve --keys: one learner a line, NAME:KEY; hand each learner their own line\n"
        path.touch(mode=0o600)
        with path.open("a", encoding="utf-8") as out:
            out.write(header + "".join(line + "\n" for line in lines))
    return len(lines), len(known) + len(lines)


def stop_when_gone(pid: int, *, every: float = 2.0) -> threading.Thread:
    """End this process as SIGTERM does (uvicorn shuts down cleanly, a running job's worker is
    ended) once process ``pid`` has ended: a service that a notebook kernel started goes with the
    Jupyter server that ran the kernel, rather than hold its port and memory for nobody."""
    import signal

    import psutil

    def started(process_id: int) -> float | None:
        try:
            process = psutil.Process(process_id)
            return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
        except psutil.Error:
            return None

    first = started(pid)

    def watch() -> None:
        while first is not None and started(pid) == first:  # the same process, not a new one with its number
            time.sleep(every)
        print(f"process {pid} has ended: the service stops", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="lessonlib-stop-with", daemon=True)
    thread.start()
    return thread


def serve(host: str = "127.0.0.1", port: int | None = None, state: str | Path | None = None, keys: str | Path | None = None,
          stop_with: int | None = None, launcher: str | None = None) -> None:
    """Run the service in the foreground until Ctrl-C or SIGTERM (``lessonlib serve``).

    ``keys``: a file of ``name:key`` lines; then only those keys get in and each sees only its own
    files, jobs and models (one service for a class). Without it the service only listens on loopback.
    ``stop_with``: a process id; the service ends when that process does (:func:`stop_when_gone`).
    ``launcher``: the command that starts each job, e.g. ``"torchrun --nproc_per_node 2"`` (default:
    ``LESSONLIB_SERVICE_LAUNCHER``, else one Python process).
    """
    import shlex

    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1") and keys is None:
        from ..errors import LessonError

        raise LessonError(_("the service would be reachable from other machines on {host}, with no keys to check").format(host=host),
                          fix=_("bind to 127.0.0.1 (the default), or give each learner a key: --keys FILE with NAME:KEY lines"))
    from . import default_port, default_state

    port = port or default_port()
    state = Path(state) if state else default_state()
    local_service.mark_serving()  # the service makes the replies and charts kernels ask it for: never asks itself
    on_start: list[Callable[[], Any]] = [lambda: print("ready", flush=True)]
    if stop_with is not None:
        on_start.append(lambda: stop_when_gone(stop_with))
    from .. import settings

    launcher = launcher or settings.get("LESSONLIB_SERVICE_LAUNCHER")
    app = create_app(state, read_keys(keys) if keys else None, on_start, launcher=shlex.split(launcher) if launcher else ())
    print(f"lessonlib service: http://{host}:{port}/v1 (state in {state}); Ctrl-C stops it", flush=True)
    pid_file = state / "service.pid"
    pid_file.write_text(str(os.getpid()))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
