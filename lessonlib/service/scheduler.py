"""The job queue: queued jobs run one at a time, each in a worker process (:mod:`lessonlib.service.worker`), and
the chat model's memory goes back before a job starts and after a while without requests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from .chat import Chatter
from .store import Store


class Scheduler:
    """Runs queued jobs one at a time, each in a worker process; cancels by ending that process.

    It also keeps the chat model's memory in check: the model is released before a job starts (the
    worker needs the room) and after ``idle_unload`` seconds without a request
    (``LESSONLIB_SERVICE_IDLE_UNLOAD``, default 120; 0 keeps it loaded).
    """

    def __init__(self, store: Store, chatter: Chatter | None = None, idle_unload: float = 120.0):
        self.store, self.chatter, self.idle_unload = store, chatter, idle_unload
        self.current: tuple[str, subprocess.Popen[bytes]] | None = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.wake = threading.Event()  # set when a job is created: the loop looks at once instead of polling
        self.thread = threading.Thread(target=self._loop, name="lessonlib-jobs", daemon=True)

    def start(self) -> None:
        for job in self.store.jobs(status=("running",)):  # interrupted by a restart: resume from the last checkpoint
            self.store.add_event(job["id"], "The service restarted during this job: it will resume from its last checkpoint")
            self.store.update_job(job["id"], status="queued")
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        with self.lock:
            if self.current:
                self.current[1].terminate()

    def cancel(self, job_id: str) -> None:
        with self.lock:
            if self.current and self.current[0] == job_id:
                self.current[1].terminate()
                self.current[1].wait()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            waiting = self.store.jobs(status=("validating_files", "queued"))
            if not waiting:
                if self.chatter and self.idle_unload and self.chatter.loaded() and self.chatter.idle_seconds() > self.idle_unload:
                    self.chatter.release(wait=False)
                self.wake.wait(5.0)
                self.wake.clear()
                continue
            job = waiting[-1]  # the oldest first
            if self.chatter:
                self.chatter.release()  # the worker needs the room; the next chat request loads the model again
            with self.lock:
                with open(self.store.state / "worker.log", "ab") as log:  # the worker holds its own copy of the file
                    process = subprocess.Popen([sys.executable, "-m", "lessonlib.service.worker", str(self.store.state), job["id"]],
                                               stdout=subprocess.DEVNULL, stderr=log)
                self.current = (job["id"], process)
            code = process.wait()
            with self.lock:
                self.current = None
            after = self.store.job(job["id"])
            if after and after["status"] in ("validating_files", "queued", "running") and not self.stopping.is_set():
                self.store.add_event(job["id"], f"The training process ended unexpectedly (exit code {code})", level="error")
                self.store.update_job(job["id"], status="failed", finished_at=int(time.time()),
                                      error={"code": "server_error", "message": "the training process ended unexpectedly", "param": None})
