"""The learner's kernels, through the Jupyter server's own REST API: list them, shut down the idle ones, or this one.

Closing a notebook's tab in JupyterLab does not stop its kernel, and on Binder JupyterLab and every
kernel share 2 GB. When a step would not fit, the way out that loses nothing is to shut down the
kernels of notebooks the learner has finished (their outputs are saved in the notebooks). This
module finds the server this kernel belongs to (``jupyter_server``'s runtime files: URL and token),
lists the sessions (``GET /api/sessions``) with each kernel's state and memory, and shuts kernels
down (``DELETE /api/kernels/{id}``); :func:`shut_down` never touches this kernel, nor a busy one.
:func:`shut_down_this_kernel` asks the server to end this kernel, once its notebook is done: the only
way to give back what imported libraries hold (JupyterLab then shows it disconnected, and the next
cell run starts a new one).

Outside a Jupyter server (a script, the command line, ``nbclient`` or ``pytest --nbval``)
:func:`find_server` returns ``None``, and :func:`shut_down_this_kernel` does nothing.

>>> Kernel("k1", "notebooks/01-what-is-fine-tuning.ipynb", "idle", 0.31).describe()
'notebooks/01-what-is-fine-tuning.ipynb (idle, 0.31 GB)'
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Server:
    """A running Jupyter server: where its API is and the token it wants."""

    url: str  # e.g. "http://127.0.0.1:8888/" (with the base URL)
    token: str  # "" when the server asks for none

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url.rstrip("/") + path, method=method,
                                         headers={"Authorization": f"token {self.token}"} if self.token else {})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


@dataclass
class Kernel:
    """One kernel of the server, as the learner knows it: by its notebook."""

    id: str  # the kernel id
    name: str  # the notebook's path (or the kernel id when it has no session)
    state: str  # "idle", "busy", "starting", ...
    rss_gb: float | None  # its resident memory with its children, when this machine can read it

    def describe(self) -> str:
        memory = f", {self.rss_gb:.2f} GB" if self.rss_gb is not None else ""
        return f"{self.name} ({self.state}{memory})"


def this_kernel_id() -> str | None:
    """This process's kernel id (from its connection file), or None outside a kernel."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).stem
    except (ImportError, RuntimeError, AttributeError):
        return None
    return name.removeprefix("kernel-") or None


def find_server() -> Server | None:
    """The Jupyter server that runs this kernel: the one of the running servers whose kernels include it."""
    mine = this_kernel_id()
    if mine is None:
        return None
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    for info in list_running_servers():
        # Under JupyterHub (Binder) the server's own token is empty and the hub's token for this user opens its API.
        server = Server(info["url"], info.get("token") or os.environ.get("JUPYTERHUB_API_TOKEN", ""))
        try:
            if any(k["id"] == mine for k in server.api("GET", "/api/kernels")):
                return server
        except (OSError, ValueError):
            continue
    return None


def _rss_gb(kernel_id: str) -> float | None:
    """Resident memory of the kernel whose command line names its connection file, with its children."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        if any(kernel_id in part for part in process.info["cmdline"] or ()):
            try:
                tree = [process, *process.children(recursive=True)]
                return round(sum(p.memory_info().rss for p in tree) / 1e9, 2)
            except psutil.Error:
                return None
    return None


def other_kernels(server: Server, *, mine: str | None = None) -> list[Kernel]:
    """Every kernel of ``server`` but ``mine`` (default: this one), named by its notebook."""
    mine = mine if mine is not None else this_kernel_id()
    names = {s["kernel"]["id"]: s.get("path") or s.get("name") for s in server.api("GET", "/api/sessions") if s.get("kernel")}
    return [Kernel(k["id"], names.get(k["id"]) or k["id"], k.get("execution_state", "?"), _rss_gb(k["id"]))
            for k in server.api("GET", "/api/kernels") if k["id"] != mine]


def shut_down(server: Server, kernels: list[Kernel]) -> list[str]:
    """Shut down these kernels unless busy; the names of those shut down."""
    done = []
    for kernel in kernels:
        if kernel.state == "busy":
            continue
        try:
            server.api("DELETE", f"/api/kernels/{kernel.id}")
            done.append(kernel.name)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: already gone
                raise
    return done


def shut_down_this_kernel(*, after: float = 1.0) -> bool:
    """Ask this kernel's server to shut it down ``after`` seconds from now; whether it was asked.

    The delay lets the cell that asks finish first, so *Run All* ends cleanly. JupyterLab then shows
    the kernel disconnected, and the next cell run starts a new one. (A restart through the API
    would leave JupyterLab 4 showing "Starting" until the page reloads.) Variables go; files (the
    notebook, a saved adapter) stay. Outside a Jupyter server (nbclient, ``pytest --nbval``, a
    script) nothing happens: ``False``.
    """
    server, mine = find_server(), this_kernel_id()
    if server is None or mine is None:
        return False

    def ask() -> None:
        time.sleep(after)
        try:
            server.api("DELETE", f"/api/kernels/{mine}")
        except OSError:
            pass  # the server ends this process before its reply can arrive

    threading.Thread(target=ask, name="lessonlib-shut-down", daemon=True).start()
    return True
