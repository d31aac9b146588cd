"""The instructor's view of a class's service: learners, their jobs, states, waits, and the service's memory.

Read from the service's state folder (its SQLite records and ``service.pid``), so it works from any
terminal of the machine that runs ``lessonlib serve``, while the service runs or after it stopped;
``lessonlib class`` prints it, ``--json`` gives the same as JSON.

>>> import tempfile
>>> from lessonlib.service.store import Store
>>> state = Store(tempfile.mkdtemp()).state          # a service's folder, no job yet
>>> view = class_view(state, ["ada"])
>>> view["jobs_by_status"], [row["learner"] for row in view["learners"]]
({}, ['ada'])
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import queue
from .store import Store


def percentile(values: list[float], share: float) -> float | None:
    """The ``share`` percentile of ``values`` (nearest rank), or None when there are none.

    >>> percentile([1, 2, 3, 4, 100], 0.95), percentile([], 0.5)
    (100, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def service_memory_gb(state: Path) -> float | None:
    """The resident memory of the service and all its processes (reply worker, training workers), or None when it is not running."""
    import psutil

    try:
        process = psutil.Process(int((state / "service.pid").read_text()))
        return round(sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 1e9, 2)
    except (OSError, ValueError, psutil.Error):
        return None


def class_view(state: str | Path, names: list[str] | None = None, *, now: float | None = None) -> dict[str, Any]:
    """Learners (``names``: from the keys file, so that those without a job show too), jobs and the service's memory."""
    now = time.time() if now is None else now
    state = Path(state)
    if not (state / "service.sqlite3").is_file():  # read a service's folder; never make one
        from ..errors import LessonError
        from ..i18n import _

        raise LessonError(_("{state} holds no service: no service.sqlite3 there").format(state=state),
                          fix=_("pass --state the folder `lessonlib serve` uses (it prints it when it starts)"), exit_code=2)
    store = Store(state)
    everyone = list(reversed(store.jobs()))  # oldest first
    place = {job["id"]: index + 1 for index, job in enumerate(queue.in_turn(reversed(everyone)))}
    jobs = []
    for job in everyone:
        started, finished = job.get("lessonlib_started_at"), job.get("finished_at")
        waited = started or (now if job["status"] in ("validating_files", "queued") else None)  # a job cancelled before it started: None
        jobs.append({"id": job["id"], "learner": queue.owner(job), "status": job["status"], "created_at": job["created_at"],
                     "wait_s": round(waited - job["created_at"]) if waited else None, "finished_at": finished,
                     "run_s": job.get("lessonlib_seconds"), "queue_place": place.get(job["id"]),
                     "estimated_finish": job.get("estimated_finish"), "fine_tuned_model": job.get("fine_tuned_model")})
    learners = []
    for name in dict.fromkeys([*(names or []), *(job["learner"] for job in jobs)]):
        own = [job for job in jobs if job["learner"] == name]
        waits = [job["wait_s"] for job in own if job["wait_s"] is not None]
        learners.append({"learner": name, "jobs": len(own), "by_status": dict(Counter(job["status"] for job in own)),
                         "longest_wait_s": max(waits) if waits else None, "latest": own[-1]["id"] if own else None})
    started_waits = [job["wait_s"] for job in jobs if job["wait_s"] is not None and job["status"] not in ("validating_files", "queued")]
    return {"state": str(state), "service_running": (state / "service.pid").exists(), "memory_gb": service_memory_gb(state),
            "jobs_by_status": dict(Counter(job["status"] for job in jobs)),
            "wait_p50_s": percentile(started_waits, 0.5), "wait_p95_s": percentile(started_waits, 0.95),
            "typical_job_s": queue.typical_seconds(reversed([j for j in everyone if j["status"] == "succeeded"])),
            "learners": learners, "jobs": jobs}


def render(view: dict[str, Any]) -> str:
    """The view as text for a terminal: one line a learner, then the queue."""
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} s"

    memory = "not running" if view["memory_gb"] is None else f"{view['memory_gb']:.2f} GB resident"
    lines = [f"service in {view['state']}: {memory}",
             "jobs: " + (", ".join(f"{n} {status}" for status, n in sorted(view["jobs_by_status"].items())) or "none"),
             (f"wait to start: median {seconds(view['wait_p50_s'])}, 95th percentile {seconds(view['wait_p95_s'])}; "
              f"a job takes about {seconds(view['typical_job_s'])}"), ""]
    width = max([len("learner"), *(len(row["learner"] or "(no key)") for row in view["learners"])])
    lines.append(f"{'learner':<{width}}  jobs  {'states':<34}  longest wait")
    for row in view["learners"]:
        states = ", ".join(f"{n} {status}" for status, n in sorted(row["by_status"].items())) or "-"
        lines.append(f"{row['learner'] or '(no key)':<{width}}  {row['jobs']:>4}  {states:<34}  {seconds(row['longest_wait_s'])}")
    queued = sorted((job for job in view["jobs"] if job["queue_place"]), key=lambda job: job["queue_place"])
    if queued:
        lines += ["", "queue: " + ", ".join(f"{job['queue_place']}. {job['learner'] or '(no key)'} ({job['id'][-8:]})" for job in queued)]
    return "\n".join(lines)
