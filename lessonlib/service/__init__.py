"""A local fine-tuning service that speaks the OpenAI API: the tutorials' SDK code runs for real, with no key.

``lessonlib serve`` runs it in the foreground; from a notebook, :func:`start` starts it in the
background (or finds it already running) and :func:`client` returns an ``openai.OpenAI`` client
pointed at it. The learner's code is the cookbook's code; only the base URL differs::

    from lessonlib import service
    client = service.client()                    # starts the service once
    file = client.files.create(file=open("data/recipes/train.jsonl", "rb"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=file.id, model="gpt-4o-mini-2024-07-18")

Modules: :mod:`~lessonlib.service.store` (SQLite records), :mod:`~lessonlib.service.app` (the HTTP
API, FastAPI), :mod:`~lessonlib.service.worker` (one job in its own process, with lessonlib's runner).
Importing this package imports none of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8765


def base_url(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}/v1"


def running(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> bool:
    """Whether a service answers on ``host:port``."""
    try:
        with urllib.request.urlopen(base_url(port, host) + "/models", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:  # it answered: 401 from a service with keys
        return exc.code == 401
    except OSError:
        return False


def start(port: int = DEFAULT_PORT, state: str | Path | None = None, *, timeout: float = 60.0) -> subprocess.Popen[bytes] | None:
    """Start the service in the background unless one already answers on ``port``; returns its process (or None)."""
    if running(port):
        return None
    command = [sys.executable, "-m", "lessonlib", "serve", "--port", str(port)] + (["--state", str(state)] if state else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(port):
            return process
        if process.poll() is not None:
            from ..errors import LessonError

            raise LessonError(f"the local service did not start: {process.stderr.read().decode(errors='replace')[-500:]}",
                              fix=f"run `lessonlib serve --port {port}` in a terminal to see why")
        time.sleep(0.2)
    process.terminate()
    from ..errors import LessonError

    raise LessonError(f"the local service did not answer within {timeout:.0f} s", fix=f"run `lessonlib serve --port {port}` in a terminal")


def client(port: int = DEFAULT_PORT, **options: Any) -> Any:
    """An ``openai.OpenAI`` client for the local service, started if needed (any key is accepted on loopback)."""
    from openai import OpenAI

    start(port)
    return OpenAI(base_url=base_url(port), api_key=os.environ.get("LESSONLIB_SERVICE_KEY", "local"), **options)
