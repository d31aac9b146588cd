"""A Jupyter server on loopback, driven through its own REST API and kernel websockets (tests and benchmarks).

:class:`Server` starts ``jupyter server`` (or JupyterLab) with a token, opens sessions as JupyterLab
does (``POST /api/sessions``: the kernel starts in the notebook's folder) and runs code in a kernel
through ``/api/kernels/{id}/channels``, collecting what the kernel sends back.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A Jupyter server on loopback, with its REST API at hand."""

    def __init__(self, env: dict[str, str], *, root: Path | None = None, cpus: int | None = None, lab: bool = False,
                 prefix: list[str] | None = None, options: list[str] | None = None):
        """``prefix``: a command the server's command line is appended to (one that ``exec``s it, e.g. to
        move it into a cgroup first); ``options``: more ``--Name.trait=value`` options for the server."""
        self.port, self.token = free_port(), uuid.uuid4().hex
        self.root = root or Path(__file__).resolve().parent.parent
        command = [sys.executable, "-m", "jupyterlab" if lab else "jupyter_server", "--no-browser", f"--port={self.port}",
                   f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root}", "--ServerApp.open_browser=False",
                   "--ServerApp.allow_root=True"] + (["--LabApp.news_url=None"] if lab else []) + (options or [])
        if cpus:
            command = ["taskset", "-c", f"0-{cpus - 1}", *command]
        command = [*(prefix or []), *command]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the Jupyter server did not start")
                time.sleep(0.3)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def open(self, path: str | Path) -> Kernel:
        """A session for the notebook at ``path`` (relative to the server's root), as JupyterLab opens one."""
        path = Path(path)
        session = self.api("POST", "/api/sessions", {"path": path.as_posix(), "type": "notebook", "name": path.name,
                                                     "kernel": {"name": "python3"}})
        return Kernel(self, session["kernel"]["id"])

    def run_notebook(self, path: Path, root: Path, timeout: float,
                     around_cell: Any = None) -> tuple[str, float, str | None, float]:
        """Open a session for ``path``, run its code cells in order, leave the kernel running.

        Returns (kernel id, seconds of Run All, first error, seconds the work it left in the background
        took after that: ``lessonlib.memory_shares.AFTER_RUN_ALL`` run in the kernel). ``around_cell(number, source, run)``, when
        given, is called for each code cell and must call ``run()``."""
        kernel = self.open(path.relative_to(root))
        cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
        started, error, background = time.monotonic(), None, 0.0
        try:
            for number, cell in enumerate(cells, start=1):
                source = "".join(cell["source"])
                if around_cell is None:
                    error = kernel.run(source, timeout).error
                else:
                    error = around_cell(number, source, lambda source=source: kernel.run(source, timeout)).error
                if error:
                    break
            seconds = time.monotonic() - started
            if not error:
                from lessonlib.memory_shares import AFTER_RUN_ALL

                error = kernel.run(AFTER_RUN_ALL, timeout).error
                background = time.monotonic() - started - seconds
        finally:
            kernel.close()
        return kernel.id, seconds, error, background

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Reply:
    """What a cell sent back: its messages, the first error (``"Name: value"``) or None, and the printed text."""

    def __init__(self, messages: list[dict[str, Any]]):
        self.messages = messages
        errors = [m["content"] for m in messages if m["msg_type"] == "error"]
        self.error = f"{errors[0]['ename']}: {errors[0]['evalue']}" if errors else None
        self.text = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")

    def displayed(self) -> list[dict[str, Any]]:
        return [m["content"]["data"] for m in self.messages if m["msg_type"] in ("display_data", "execute_result")]


class Kernel:
    """One kernel of a :class:`Server`, reached through its websocket."""

    def __init__(self, server: Server, kernel_id: str):
        import websocket

        self.id = kernel_id
        self.channel = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
            header=[f"Authorization: token {server.token}"], timeout=600)

    def run(self, code: str, timeout: float = 600) -> Reply:
        """Run one cell and collect its messages until its ``execute_reply``."""
        msg_id = uuid.uuid4().hex
        self.channel.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": msg_id, "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False,
                        "stop_on_error": True}}))
        deadline, messages, replied, idle = time.monotonic() + timeout, [], None, False
        while time.monotonic() < deadline and not (replied and idle):  # the reply (shell) and the outputs (iopub) race
            message = _decode(self.channel.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            messages.append(message)
            replied = replied or (message if message["msg_type"] == "execute_reply" else None)
            idle = idle or (message["msg_type"] == "status" and message["content"]["execution_state"] == "idle")
        reply = Reply(messages)
        if replied is None:
            reply.error = f"timed out after {timeout:.0f} s"
        elif reply.error is None and replied["content"]["status"] != "ok":
            reply.error = f"{replied['content'].get('ename', 'error')}: {replied['content'].get('evalue', '')}"
        return reply

    def close(self) -> None:
        self.channel.close()


def _decode(frame: str | bytes) -> dict[str, Any]:
    """A websocket frame as a message: text is JSON; binary (a message with buffers) starts with their offsets."""
    if isinstance(frame, str):
        return json.loads(frame)
    count = int.from_bytes(frame[:4], "big")
    offsets = [int.from_bytes(frame[4 + 4 * i:8 + 4 * i], "big") for i in range(count)] + [len(frame)]
    return json.loads(frame[offsets[0]:offsets[1]])


