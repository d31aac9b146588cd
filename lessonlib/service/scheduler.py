"""The job queue: waiting jobs run one at a time in a fair order (:mod:`lessonlib.service.queue`), each in a worker
process (:mod:`lessonlib.service.worker`), optionally started through a launcher such as ``torchrun`` or
``accelerate launch`` so that one job uses several processes or GPUs. The chat model's memory goes back
before a job starts and after a while without requests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from .. import system
from . import queue
from .chat import Chatter
from .store import Store

WAITING = queue.WAITING
#: The free memory (GB) a job starts with beside the chat model; with less, the chat model is released first.
#: (benchmarks/class_load.py reports the peak of a class's service: itself, its chat model and a job.)
JOB_ROOM_GB = 2.0


class Scheduler:
    """Runs waiting jobs one at a time, fairly between learners, each in a worker process group; cancels by ending that group.

    ``launcher``: the command that starts a worker, e.g. ``("torchrun", "--nproc_per_node", "2")``;
    empty: this Python. Every job that waits behind another hears its place and estimated start (an
    event, and its ``estimated_finish``) when it is created and whenever its place changes.

    It also keeps the chat model's memory in check: the model is released before a job starts when
    less than :data:`JOB_ROOM_GB` is free (the worker needs the room), and after ``idle_unload`` seconds without a request
    (``LESSONLIB_SERVICE_IDLE_UNLOAD``, default 120; 0 keeps it loaded).
    """

    def __init__(self, store: Store, chatter: Chatter | None = None, idle_unload: float = 120.0, launcher: Sequence[str] = ()):
        self.store, self.chatter, self.idle_unload, self.launcher = store, chatter, idle_unload, tuple(launcher)
        self.current: tuple[str, subprocess.Popen[bytes]] | None = None
        self.lock = threading.Lock()  # guards self.current
        self.queue_lock = threading.Lock()  # one announcement of places at a time
        self.announced: dict[str, int] = {}  # job id -> the place last announced to it
        self.stopping = threading.Event()
        self.wake = threading.Event()  # set when a job is created: the loop looks at once instead of polling
        self.thread = threading.Thread(target=self._loop, name="lessonlib-jobs", daemon=True)

    def start(self) -> None:
        for job in self.store.jobs(status=("running",)):  # interrupted by a restart: resume from the last checkpoint
            self._end_orphan(job)
            self.store.add_event(job["id"], "The service restarted during this job: it will resume from its last checkpoint")
            self.store.update_job(job["id"], status="queued")
        for job in self.store.jobs(status=WAITING):  # picked but not yet running when the service stopped
            if job.get("lessonlib_worker"):
                self._end_orphan(job)
        self.thread.start()
        self.announce()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        with self.lock:
            if self.current:
                _signal(self.current[1].pid, signal.SIGTERM)

    def cancel(self, job_id: str) -> None:
        """End the job's worker, every process of it, if it is the one running; then tell the others their new places."""
        with self.lock:
            process = self.current[1] if self.current and self.current[0] == job_id else None
        if process is not None:
            _end(process)
        self.announce()

    def running_job(self) -> str | None:
        with self.lock:
            return self.current[0] if self.current else None

    # the queue ---------------------------------------------------------------------------------------------------
    def waiting(self) -> list[dict[str, Any]]:
        """The jobs that have not started, in the order they will run."""
        return queue.in_turn(self.store.jobs(), picked=self.running_job())

    def places(self) -> list[queue.Place]:
        """Where each waiting job stands and when it may start."""
        typical = queue.typical_seconds(self.store.jobs(status=("succeeded",)))
        current = self.running_job()
        finish = None
        if current:
            job = self.store.job(current) or {}
            finish = job.get("estimated_finish") or (job.get("lessonlib_started_at") or time.time()) + typical
        return queue.places(self.waiting(), running_finish=finish, typical=typical)

    def announce(self) -> None:
        """Tell each waiting job its place and estimated start when they changed (an event, ``estimated_finish``)."""
        with self.queue_lock:
            for place in self.places():
                if self.announced.get(place.job_id) == place.place:
                    continue
                if self.store.update_job(place.job_id, only_if=WAITING, status="queued", estimated_finish=place.finish_at) is None:
                    continue  # cancelled meanwhile
                self.announced[place.job_id] = place.place
                if place.ahead:  # a job that starts at once is told nothing more than that it started
                    self.store.add_event(place.job_id, place.message(), data=place.data())

    # running jobs ------------------------------------------------------------------------------------------------
    def _spawn(self, job_id: str) -> subprocess.Popen[bytes]:
        command = [*(self.launcher or (sys.executable,)), "-m", "lessonlib.service.worker", str(self.store.state), job_id,
                   "--parent", str(os.getpid())]
        with open(self.store.state / "worker.log", "ab") as log:  # the worker holds its own copy of the file
            return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)

    def _end_orphan(self, job: dict[str, Any]) -> None:
        """End the worker a killed service left behind for ``job``, so that two never train one job."""
        import psutil

        pid = job.get("lessonlib_worker")
        with contextlib.suppress(psutil.Error, TypeError):
            process = psutil.Process(pid)
            if job["id"] in " ".join(process.cmdline()):
                _signal(pid, signal.SIGKILL)
                psutil.wait_procs([process], timeout=10)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            ordered = self.waiting()
            if not ordered:
                if self.chatter and self.idle_unload and self.chatter.loaded() and self.chatter.idle_seconds() > self.idle_unload:
                    self.chatter.release(wait=False)
                self.wake.wait(5.0)
                self.wake.clear()
                continue
            job = ordered[0]
            if self.chatter and self.chatter.loaded() and system.memory_shortfall(JOB_ROOM_GB) is not None:
                self.chatter.release()  # the worker needs the room; the next chat request loads the model again
            with self.lock:
                if self.stopping.is_set():
                    break
                if self.store.update_job(job["id"], only_if=WAITING, lessonlib_started_at=int(time.time())) is None:
                    continue  # cancelled while it was picked
                process = self._spawn(job["id"])
                self.store.update_job(job["id"], lessonlib_worker=process.pid)
                self.current = (job["id"], process)
            self.announced.pop(job["id"], None)
            self.announce()
            code = process.wait()
            with self.lock:
                self.current = None
            _signal(process.pid, signal.SIGKILL)  # whatever of its process group is left (a launcher's workers)
            after = self.store.job(job["id"])
            if after and after["status"] in ("validating_files", "queued", "running") and not self.stopping.is_set():
                self.store.add_event(job["id"], f"The training process ended unexpectedly (exit code {code})", level="error")
                self.store.update_job(job["id"], status="failed", finished_at=int(time.time()),
                                      error={"code": "server_error", "message": "the training process ended unexpectedly", "param": None})


def _signal(group: int, sig: int) -> None:
    """Send ``sig`` to every process of the worker's group (its launcher and each of its processes)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's group; SIGKILL it if it has not ended within 30 s."""
    _signal(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        _signal(process.pid, signal.SIGKILL)
        process.wait()
    _signal(process.pid, signal.SIGKILL)
