"""A local fine-tuning service that speaks the OpenAI API: the tutorials' SDK code runs for real, with no key.

``lessonlib serve`` runs it in the foreground; from a notebook, :func:`start` starts it in the
background (or finds it already running) and :func:`client` returns an ``openai.OpenAI`` client
pointed at it. The learner's code is the cookbook's code; only the base URL differs::

    from lessonlib import service
    client = service.client()                    # starts the service once
    file = client.files.create(file=open("data/recipes/train.jsonl", "rb"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=file.id, model="gpt-4o-mini-2024-07-18")

The ``AzureOpenAI`` client works against the same service (``azure_endpoint=service.endpoint()``),
and so do Azure's deployments (``AZURE_MANAGEMENT_ENDPOINT=service.endpoint()``).

The port and the state folder default to ``LESSONLIB_SERVICE_PORT`` (8765) and
``LESSONLIB_SERVICE_STATE`` (under the lessonlib cache); :func:`stop` ends a service this machine
started (its process id is in ``STATE/service.pid`` while it runs).

Modules: :mod:`~lessonlib.service.store` (SQLite records), :mod:`~lessonlib.service.app` (the HTTP
API, FastAPI), :mod:`~lessonlib.service.azure` (deployments), :mod:`~lessonlib.service.chat` (the
model), :mod:`~lessonlib.service.worker` (one job in its own process, with lessonlib's runner).
Importing this package imports none of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from .. import settings
from ..i18n import _



def default_port() -> int:
    """``LESSONLIB_SERVICE_PORT``, else 8765."""
    return settings.get("LESSONLIB_SERVICE_PORT")


def default_state() -> Path:
    """``LESSONLIB_SERVICE_STATE``, else ``service/`` in the lessonlib cache."""
    return settings.get("LESSONLIB_SERVICE_STATE") or settings.cache_dir() / "service"


def endpoint(port: int | None = None, host: str = "127.0.0.1") -> str:
    """The service's root URL: ``azure_endpoint`` for ``AzureOpenAI`` and ``AZURE_MANAGEMENT_ENDPOINT``."""
    return f"http://{host}:{port or default_port()}"


def base_url(port: int | None = None, host: str = "127.0.0.1") -> str:
    """The OpenAI API's base URL on the service (``…/v1``)."""
    return endpoint(port, host) + "/v1"


def running(port: int | None = None, host: str = "127.0.0.1") -> bool:
    """Whether a service answers on ``host:port``."""
    try:
        with urllib.request.urlopen(base_url(port, host) + "/models", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:  # it answered: 401 from a service with keys
        return exc.code == 401
    except OSError:
        return False


def start(port: int | None = None, state: str | Path | None = None, *, timeout: float = 60.0) -> subprocess.Popen[bytes] | None:
    """Start the service in the background unless one already answers on ``port``; returns its process (or None).

    Its messages go to ``STATE/service.log`` (a pipe nobody reads would block it once full). Started
    from a notebook kernel, it ends with the kernel's parent, the Jupyter server (``--stop-with``):
    the kernels and JupyterLab are then gone, and nothing else would stop it.
    """
    from ..errors import LessonError

    port = port or default_port()
    if running(port):
        return None
    state = Path(state or default_state())
    state.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "lessonlib", "serve", "--port", str(port), "--state", str(state)]
    from .. import system

    if system.in_notebook_kernel():  # the service goes when the Jupyter server that runs this kernel does
        command += ["--stop-with", str(os.getppid())]
    with open(state / "service.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(port):
            return process
        if process.poll() is not None:
            tail = (state / "service.log").read_text(encoding="utf-8", errors="replace")[-500:]
            raise LessonError(_("the local service did not start: {tail}").format(tail=tail), fix=_("run `lessonlib serve --port {port}` in a terminal to see why").format(port=port))
        time.sleep(0.2)
    process.terminate()
    raise LessonError(_("the local service did not answer within {timeout:.0f} s").format(timeout=timeout), fix=_("run `lessonlib serve --port {port}` in a terminal").format(port=port))


def stop(state: str | Path | None = None, *, timeout: float = 30.0) -> bool:
    """End the service whose state folder is ``state`` (default: :func:`default_state`); False when none runs."""
    pid_file = Path(state or default_state()) / "service.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # started by this process: reap it, or it lingers as a zombie
                return True
        except ChildProcessError:  # someone else's child
            pass
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.1)
    return False


def release_model(port: int | None = None, state: str | Path | None = None, *, timeout: float = 30.0) -> bool:
    """Ask a running local service to give back the model it holds for notebook replies (it reloads
    it on the next request); True when it did. Starts nothing, and never raises: a training step
    calls it to make room, and a service that is not there holds no memory.

    >>> release_model(port=1)  # nothing listens there
    False
    """
    pid_file = Path(state or default_state()) / "service.pid"
    try:
        if int(pid_file.read_text().strip()) == os.getpid():  # the service itself: its own jobs already make room
            return False
    except (OSError, ValueError):
        pass
    request = urllib.request.Request(base_url(port) + "/lessonlib/release", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {settings.get('LESSONLIB_SERVICE_KEY')}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(json.loads(response.read()).get("released"))
    except (OSError, ValueError):
        return False


def client(port: int | None = None, **options: Any) -> Any:
    """An ``openai.OpenAI`` client for the local service, started if needed (any key is accepted on loopback)."""
    from openai import OpenAI

    start(port)
    return OpenAI(base_url=base_url(port), api_key=settings.get("LESSONLIB_SERVICE_KEY"), **options)
