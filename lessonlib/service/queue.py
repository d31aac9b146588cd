"""A class's queue: the order waiting jobs run in, where each stands, and when it may start.

Scope: pure functions over job records (the JSON objects :class:`~lessonlib.service.store.Store`
keeps); the scheduler calls them, tests call them without a service. Limits: the estimate of a
wait is the typical length of the jobs this service has run (their median), so it is rough until a
few jobs have ended, and it knows nothing of a job's size before that job starts.

Fair order: a learner's second job goes after every other learner's first, their third after every
second, and so on; within a round, the oldest first. A learner's jobs that started since the oldest
waiting job was created (running or ended) count in their rounds. One learner who creates five jobs
cannot hold the queue for a class.

>>> jobs = [{"id": "a1", "lessonlib_owner": "ada"}, {"id": "a2", "lessonlib_owner": "ada"},
...         {"id": "b1", "lessonlib_owner": "bob"}]                     # oldest first
>>> [j["id"] for j in fair_order(jobs)]
['a1', 'b1', 'a2']
>>> [j["id"] for j in fair_order(jobs, started=["ada"])]               # a job of ada's has started already
['b1', 'a1', 'a2']
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: The statuses of a job that has not started.
WAITING = ("validating_files", "queued")
#: The length of a job (seconds) assumed until this service has run one: a tutorial-sized job on a small CPU.
FIRST_GUESS_S = 60.0
#: How many of the latest finished jobs the typical length is the median of.
RECENT = 20


def owner(job: dict[str, Any]) -> str:
    return job.get("lessonlib_owner", "")


def fair_order(waiting: Iterable[dict[str, Any]], started: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``waiting`` (oldest first) in the order they run: by the learner's round, then by age (see the module).

    ``started``: the owner of each job that started since the oldest waiting job was created.
    """
    seen = Counter(started)
    ranked = []
    for age, job in enumerate(waiting):
        ranked.append((seen[owner(job)], age, job))
        seen[owner(job)] += 1
    return [job for _round, _age, job in sorted(ranked, key=lambda r: (r[0], r[1]))]


def in_turn(jobs: Iterable[dict[str, Any]], picked: str | None = None) -> list[dict[str, Any]]:
    """The waiting jobs among ``jobs`` (all of a service's, newest first as the store lists them), in the order they run.

    ``picked``: a job the scheduler has started whose record still says it waits.
    """
    everyone = list(jobs)[::-1]
    waiting = [job for job in everyone if job["status"] in WAITING and job["id"] != picked]
    if not waiting:
        return []
    since, ids = min(job["created_at"] for job in waiting), {job["id"] for job in waiting}
    started = [owner(job) for job in everyone
               if job["id"] not in ids and job.get("lessonlib_started_at") is not None and job["lessonlib_started_at"] >= since]
    return fair_order(waiting, started)


def typical_seconds(finished: Iterable[dict[str, Any]]) -> float:
    """The median length of the latest finished jobs (``lessonlib_seconds``), or :data:`FIRST_GUESS_S` without one.

    >>> typical_seconds([{"lessonlib_seconds": 30}, {"lessonlib_seconds": 50}, {"lessonlib_seconds": 400}])
    50
    """
    lengths = [job["lessonlib_seconds"] for job in finished if job.get("lessonlib_seconds")][:RECENT]
    return statistics.median(lengths) if lengths else FIRST_GUESS_S


@dataclass(frozen=True)
class Place:
    """Where a waiting job stands: ``place`` 1 runs next; ``ahead`` jobs (the running one included) go first."""

    job_id: str
    place: int
    waiting: int
    ahead: int
    start_at: int  # estimated start, Unix seconds
    finish_at: int  # estimated finish, Unix seconds

    def message(self, now: float | None = None) -> str:
        """The job event a learner reads, e.g. ``Queued: place 2 of 5 (3 jobs ahead); estimated start in about 2 min``."""
        wait = max(0.0, self.start_at - (time.time() if now is None else now))
        when = "now" if wait < 30 else f"in about {max(1, round(wait / 60))} min"
        ahead = f"{self.ahead} job{'s' if self.ahead != 1 else ''} ahead"
        return f"Queued: place {self.place} of {self.waiting} ({ahead}); estimated start {when}"

    def data(self) -> dict[str, Any]:
        return {"queue_place": self.place, "queue_length": self.waiting, "jobs_ahead": self.ahead,
                "estimated_start": self.start_at, "estimated_finish": self.finish_at}


def places(ordered: list[dict[str, Any]], *, running_finish: float | None, typical: float, now: float | None = None) -> list[Place]:
    """The :class:`Place` of each job of ``ordered`` (as :func:`fair_order` gives them).

    ``running_finish``: when the running job should end (None: nothing runs); ``typical``: a job's length.

    >>> [p.start_at for p in places([{"id": "x"}, {"id": "y"}], running_finish=130, typical=60, now=100)]
    [130, 190]
    """
    now = time.time() if now is None else now
    start = max(now, running_finish) if running_finish is not None else now
    busy = running_finish is not None
    out = []
    for index, job in enumerate(ordered):
        out.append(Place(job["id"], index + 1, len(ordered), index + busy, round(start), round(start + typical)))
        start += typical
    return out
