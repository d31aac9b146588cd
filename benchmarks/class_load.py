"""A class on one service: N keyed learners, each through a real ``openai`` client, at the same moment.

Each learner uploads a small training file of their own, creates a tiny job (8 examples, 4 steps),
follows its events to the end and chats once with the tuned model (sampled, so never from the reply cache). Learner 1 creates ``--extra`` more jobs
first, as an eager learner would. Once the first job has succeeded, the service is killed (kill -9
of its process group, as a crashed machine would) and started again on the same state folder; the
learners' clients retry through the gap.

It reports: jobs lost (created, never succeeded; must be 0), 5xx answers (must be 0), 429 answers to a
learner under their own limit (must be 0), whether learner 1's extra jobs started after every other
learner's first (fair order), the median and 95th percentile wait for a job to start, chat latency
under load, and the service's peak resident memory (itself, its reply worker and its training worker).

    python benchmarks/class_load.py                  # 30 learners (about 10 min on 2 cores)
    python benchmarks/class_load.py --learners 2 --extra 1   # what `make test` runs (tests/test_class.py)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from jupyter_helpers import free_port

TINY_JOB = {"n_epochs": 1, "batch_size": 2}
EXAMPLES = 8


class ClassService:
    """``lessonlib serve --keys FILE --learners N`` in its own process group, with its peak memory sampled."""

    def __init__(self, state: Path, keys: Path, learners: int):
        self.state, self.keys, self.learners, self.port = state, keys, learners, free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.peak_gb, self._sampling = 0.0, threading.Event()

    def start(self) -> ClassService:
        from lessonlib import local_service

        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LESSONLIB_OFFLINE": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "lessonlib", "serve", "--port", str(self.port), "--state", str(self.state),
                                         "--keys", str(self.keys), "--learners", str(self.learners)],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while not local_service.running(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stderr.read().decode())
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not answer within 60 s")
            time.sleep(0.2)
        self._sampling.clear()
        threading.Thread(target=self._sample, args=(self.process.pid,), daemon=True).start()
        return self

    def _sample(self, pid: int) -> None:
        import psutil

        while not self._sampling.is_set():
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
                self.peak_gb = max(self.peak_gb, sum(p.memory_info().rss for p in tree) / 1e9)
            except psutil.Error:
                return
            time.sleep(0.25)

    def kill(self) -> None:
        """kill -9 of the service and what is in its process group (its training worker has a group of its own)."""
        self._sampling.set()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self._sampling.set()
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(60)

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


class Counts:
    """What the learners' clients saw, counted from every HTTP response (httpx event hooks)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: dict[int, int] = {}
        self.rate_limited_under_limit = 0

    def hook(self, response: Any) -> None:
        with self.lock:
            self.status[response.status_code] = self.status.get(response.status_code, 0) + 1

    def server_errors(self) -> int:
        return sum(n for code, n in self.status.items() if code >= 500)


def _client(svc: ClassService, key: str, counts: Counts) -> Any:
    import httpx
    from openai import OpenAI

    http = httpx.Client(event_hooks={"response": [counts.hook]}, timeout=120)
    return OpenAI(base_url=svc.base_url(), api_key=key, max_retries=8, http_client=http)


def _patient(call: Any, *args: Any, **kwargs: Any) -> Any:
    """A call that waits through the service's restart (the SDK's own retries give up after a few seconds)."""
    import openai

    deadline = time.monotonic() + 120
    while True:
        try:
            return call(*args, **kwargs)
        except openai.APIConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _learner(svc: ClassService, name: str, key: str, train: Path, jobs: int, counts: Counts, started: threading.Barrier,
             limit: int) -> dict[str, Any]:
    import openai

    client = _client(svc, key, counts)
    uploaded = _patient(client.files.create, file=train, purpose="fine-tune")
    created = []
    if jobs > 1:  # the eager learner creates their extra jobs before the others start
        created = [_patient(client.fine_tuning.jobs.create, training_file=uploaded.id, model="gpt-4o-mini", hyperparameters=TINY_JOB).id
                   for _ in range(jobs - 1)]
    started.wait()
    try:
        created.append(_patient(client.fine_tuning.jobs.create, training_file=uploaded.id, model="gpt-4o-mini",
                                hyperparameters=TINY_JOB).id)
    except openai.RateLimitError:
        if len(created) < limit:
            with counts.lock:
                counts.rate_limited_under_limit += 1
        raise
    finished, chats, places = [], [], []
    for job_id in created:
        while True:
            job = _patient(client.fine_tuning.jobs.retrieve, job_id)
            if job.status in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(1.0)
        events = _patient(client.fine_tuning.jobs.list_events, fine_tuning_job_id=job_id, limit=200).data
        places += [e.data for e in events if "queue_place" in (e.data or {})]
        finished.append(job.status)
        if job.status == "succeeded":
            began = time.perf_counter()
            reply = _patient(client.chat.completions.create, model=job.fine_tuned_model, max_tokens=16, temperature=0.7,
                             messages=[{"role": "user", "content": "Recipe: Soup\n\n- 2 carrots\n- 1 onion"}])  # sampled: never from the reply cache
            chats.append(time.perf_counter() - began)
            assert reply.choices[0].message.content is not None
    return {"learner": name, "jobs": created, "statuses": finished, "chat_s": chats, "places_told": len(places)}


def run_class(learners: int = 30, extra: int = 2, *, kill: bool = True, folder: Path | None = None) -> dict[str, Any]:
    """Play a class (see the module docstring); returns the report."""
    from lessonlib import corpora
    from lessonlib.service.roster import class_view, percentile
    from lessonlib.service.run import read_keys

    with tempfile.TemporaryDirectory() as tmp:
        folder = folder or Path(tmp)
        lines = corpora.split_path("recipes", "train").read_text(encoding="utf-8").splitlines()
        files = []
        for index in range(learners):  # each learner their own recipes (as many different sets as the split holds)
            start = index * EXAMPLES % max(1, len(lines) - EXAMPLES)
            files.append(folder / f"train-{index + 1:02d}.jsonl")
            files[-1].write_text("\n".join(lines[start:start + EXAMPLES]) + "\n", encoding="utf-8")
        keys = folder / "keys.txt"
        svc = ClassService(folder / "state", keys, learners).start()
        limit = int(os.environ.get("LESSONLIB_SERVICE_MAX_JOBS_PER_LEARNER", "3"))
        roster = sorted((name, key) for key, name in read_keys(keys).items())
        counts, barrier = Counts(), threading.Barrier(learners)
        began = time.monotonic()
        restarted = False
        try:
            with ThreadPoolExecutor(learners) as pool:
                futures = [pool.submit(_learner, svc, name, key, files[index], 1 + (extra if index == 0 else 0), counts, barrier, limit)
                           for index, (name, key) in enumerate(roster)]
                while kill and not restarted and not all(f.done() for f in futures):
                    view = class_view(svc.state)
                    if view["jobs_by_status"].get("succeeded") and view["jobs_by_status"].get("running"):
                        svc.kill()
                        svc.start()
                        restarted = True
                    time.sleep(0.5)
                results = [f.result() for f in futures]
            view = class_view(svc.state, [name for name, _key in roster])
        finally:
            svc.stop()
    jobs = {job["id"]: job for job in view["jobs"]}
    created = [job_id for r in results for job_id in r["jobs"]]
    later = results[0]["jobs"][1:]  # the eager learner's jobs after their first
    firsts = [r["jobs"][0] for r in results[1:]]
    started = {job_id: jobs[job_id]["wait_s"] + jobs[job_id]["created_at"] for job_id in created if jobs[job_id]["wait_s"] is not None}
    fair = all(started[late] >= started[first] for late in later for first in firsts if late in started and first in started)
    chats = [s for r in results for s in r["chat_s"]]
    waits = [job["wait_s"] for job in view["jobs"] if job["wait_s"] is not None]
    return {"learners": learners, "jobs": len(created), "killed_and_restarted": restarted,
            "jobs_lost": sum(1 for job_id in created if jobs.get(job_id, {}).get("status") != "succeeded"),
            "server_errors": counts.server_errors(), "rate_limited_under_limit": counts.rate_limited_under_limit,
            "responses": dict(sorted(counts.status.items())), "fair_order": fair,
            "learners_told_their_place": sum(1 for r in results if r["places_told"]),
            "wait_p50_s": percentile(waits, 0.5), "wait_p95_s": percentile(waits, 0.95),
            "chat_p50_s": round(percentile(chats, 0.5) or 0, 2), "chat_p95_s": round(percentile(chats, 0.95) or 0, 2),
            "peak_memory_gb": round(svc.peak_gb, 2), "wall_s": round(time.monotonic() - began)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--extra", type=int, default=2, help="jobs learner 1 creates before the others (within their limit of 3)")
    parser.add_argument("--no-kill", action="store_true", help="leave the service running through the class")
    args = parser.parse_args()
    os.environ.update(HF_HUB_OFFLINE="1", LESSONLIB_OFFLINE="1")
    report = run_class(args.learners, args.extra, kill=not args.no_kill)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
