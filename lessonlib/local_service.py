"""The one client of the local service: find it, start it, stop it, and send it work.

Scope: everything outside :mod:`lessonlib.service` that talks to the local service goes through this
module (models' replies, plots' images, the notebooks' ``openai`` client), and this module imports
none of the service's code, so the basics never reach up into the server. Limits: loopback only,
one service per port; a class's service (``lessonlib serve --keys``) is reached with the ``openai``
SDK, not from here.

Where work happens is decided once, by :func:`backend`: ``"service"`` in a notebook kernel (one
process holds the model and matplotlib for every notebook left open), ``"here"`` in the service
itself, in a script, or where a setting says so. :func:`serving` is the one answer to "am I the
service?": :func:`lessonlib.service.run.serve` and its reply worker mark themselves with
:func:`mark_serving`.

A kernel never talks to the service of another checkout or version: :func:`start` reads the
service's ``/v1/lessonlib/about`` and refuses one whose package or version differs from its own.

>>> base_url(port=9999)
'http://127.0.0.1:9999/v1'
>>> running(port=1)  # nothing listens there
False
>>> release_model(port=1)
False
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

from . import __version__, settings
from .errors import LessonError, MemoryShortfall
from .i18n import _

_SERVING: list[bool] = []  # holds True in the service's process and its reply worker
_NO_SERVICE: list[bool] = []  # holds True once the service did not start in this process
_CHECKED: set[int] = set()  # the ports whose service was found to be this checkout's


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


def mark_serving() -> None:
    """Mark this process as the service (or its reply worker): it makes its replies and charts itself."""
    if not _SERVING:
        _SERVING.append(True)


def serving() -> bool:
    """Whether this process is the local service or its reply worker."""
    return bool(_SERVING)


def about() -> dict[str, str]:
    """What identifies a service: lessonlib's version and the folder its package is imported from."""
    return {"version": __version__, "package": str(Path(__file__).resolve().parent)}


def backend(kind: str) -> str:
    """Where ``kind`` of work ("replies" or "plots") is done: ``"service"`` or ``"here"``.

    The setting decides when it says ``service`` or ``here`` (``LESSONLIB_GENERATE`` for replies,
    ``LESSONLIB_PLOTS`` for plots). By default (``auto``) a Jupyter kernel asks the service, so that
    one process holds the model and matplotlib for every notebook (Binder: 2 GB for JupyterLab and
    every kernel); the service itself, the command line and scripts work here. A kernel that has
    imported torch already (notebook 04 trains in its own kernel) makes its replies here too: a
    second process holding torch and the model would cost memory and save none.

    >>> backend("replies")  # a script
    'here'
    """
    from . import system

    variable = {"replies": "LESSONLIB_GENERATE", "plots": "LESSONLIB_PLOTS"}[kind]
    if serving():
        return "here"
    choice = settings.get(variable)
    if choice in ("service", "here"):
        return choice
    if not system.in_notebook_kernel():
        return "here"
    return "here" if kind == "replies" and "torch" in sys.modules else "service"


def running(port: int | None = None, host: str = "127.0.0.1") -> bool:
    """Whether a service answers on ``host:port``."""
    try:
        with urllib.request.urlopen(base_url(port, host) + "/models", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:  # it answered: 401 from a service with keys
        return exc.code == 401
    except OSError:
        return False


def _headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {settings.get('LESSONLIB_SERVICE_KEY')}"}


def _check_identity(port: int) -> None:
    """Refuse a service on ``port`` that another checkout or version of lessonlib runs."""
    request = urllib.request.Request(base_url(port) + "/lessonlib/about", headers=_headers())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            theirs = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 401:  # a class's service, with keys: not one a kernel started
            theirs = {"version": "?", "package": _("a service with keys")}
        else:  # an older lessonlib, without the route
            theirs = {"version": "?", "package": "?"}
    except (OSError, ValueError):
        return  # it stopped meanwhile: the next request says so
    ours = about()
    if theirs.get("version") != ours["version"] or theirs.get("package") != ours["package"]:
        raise LessonError(
            _("port {port} is held by another lessonlib service ({package}, version {version}), not this one's ({ours})")
            .format(port=port, package=theirs.get("package"), version=theirs.get("version"), ours=ours["package"]),
            fix=_("stop that service (`lessonlib serve --state DIR` names its folder; its process is in DIR/service.pid), "
                  "or set LESSONLIB_SERVICE_PORT to a free port"))


def start(port: int | None = None, state: str | Path | None = None, *, timeout: float = 60.0) -> subprocess.Popen[bytes] | None:
    """Start the service in the background unless one already answers on ``port``; returns its process (or None).

    A service that answers must be this checkout's and version's (:func:`about`), else a LessonError
    says which holds the port. Its messages go to ``STATE/service.log`` (a pipe nobody reads would
    block it once full). Started from a notebook kernel, it ends with the kernel's parent, the Jupyter
    server (``--stop-with``): the kernels and JupyterLab are then gone, and nothing else would stop it.
    """
    from . import system

    port = port or default_port()
    if running(port):
        if port not in _CHECKED:
            _check_identity(port)
            _CHECKED.add(port)
        return None
    state = Path(state or default_state())
    state.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "lessonlib", "serve", "--port", str(port), "--state", str(state)]
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
            raise LessonError(_("the local service did not start: {tail}").format(tail=tail),
                              fix=_("run `lessonlib serve --port {port}` in a terminal to see why").format(port=port))
        time.sleep(0.2)
    process.terminate()
    raise LessonError(_("the local service did not answer within {timeout:.0f} s").format(timeout=timeout),
                      fix=_("run `lessonlib serve --port {port}` in a terminal").format(port=port))


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


def post(path: str, body: dict[str, Any], *, timeout: float, port: int | None = None, start_first: bool = True) -> bytes:
    """POST ``body`` as JSON to ``/v1/<path>`` of the service (started first, unless ``start_first``
    is False) and return what it answers.

    An answer in OpenAI's error shape becomes a :class:`LessonError` (a :class:`MemoryShortfall` for
    ``memory_shortfall``) with the service's message and fix; no answer is a LessonError too.
    """
    if start_first:
        start(port)
    request = urllib.request.Request(f"{base_url(port)}/{path}", data=json.dumps(body).encode(), method="POST", headers=_headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read() or b"{}").get("error") or {}
        except ValueError:
            error = {}
        kind = MemoryShortfall if error.get("code") == "memory_shortfall" else LessonError
        raise kind(error.get("message") or f"the local service answered {exc.code}", fix=error.get("fix")) from None
    except OSError as exc:
        raise LessonError(_("the local service did not answer ({exc})").format(exc=exc),
                          fix=_("`lessonlib serve` in a terminal shows why")) from None


def generate(kind: str, conversations: list[list[dict[str, str]]], **options: Any) -> tuple[list[str], float]:
    """The service's :func:`lessonlib.models.generate` (``kind`` "one") or ``generate_many_timed``: (replies, seconds).

    Folders are sent as absolute paths: the service has its own working folder.
    """
    def absolute(value: Any) -> Any:
        if isinstance(value, (str, os.PathLike)) and Path(value).expanduser().exists():
            return str(Path(value).expanduser().resolve())
        return value

    options["adapter"], options["model"] = absolute(options.get("adapter")), absolute(options.get("model"))
    answer = json.loads(post("lessonlib/generate", {"kind": kind, "conversations": conversations, **options}, timeout=3600))
    return answer["replies"], answer["seconds"]


def draw(kind: str, data: Any) -> bytes | None:
    """The PNG the service draws for a chart's ``kind`` and ``data``, or None: data that is not plain
    JSON, a service that did not start (not tried again in this process: each try takes seconds),
    no answer, or an answer that is not an image. The caller then draws the chart itself."""
    try:
        json.dumps(data)
    except (TypeError, ValueError):  # values that are not plain JSON (a numpy integer)
        return None
    if _NO_SERVICE:
        return None
    try:
        start()
    except LessonError:
        _NO_SERVICE.append(True)
        return None
    try:
        image = post("lessonlib/plot", {"kind": kind, "data": data}, timeout=60, start_first=False)
    except LessonError:
        return None
    return image if image.startswith(b"\x89PNG") else None


def release_model(port: int | None = None, *, timeout: float = 30.0) -> bool:
    """Ask a running local service to give back the model it holds for notebook replies (it reloads
    it on the next request); True when it did. Starts nothing, and never raises: a training step
    calls it to make room, and a service that is not there holds no memory. The service itself
    (its own jobs already make room) asks nobody.
    """
    if serving():
        return False
    request = urllib.request.Request(base_url(port) + "/lessonlib/release", data=b"{}", method="POST", headers=_headers())
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
