"""One service for a class: fair order, limits per learner, places in the queue, a crash that loses no job,
and the instructor's view. The whole class runs as ``benchmarks/class_load.py`` plays it, with 2 learners."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lessonlib.service import queue
from lessonlib.service.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

pytestmark = pytest.mark.usefixtures("model_dir")


def _job(store: Store, owner: str) -> dict:
    return store.add_job({"model": "gpt-4o-mini", "status": "queued", "lessonlib_owner": owner}, owner)


def test_one_learners_jobs_wait_behind_every_other_learners_first(tmp_path):
    store = Store(tmp_path)
    order = [_job(store, who)["id"] for who in ("ada", "ada", "ada", "bob", "cy", "bob")]
    waiting = list(reversed(store.jobs(status=("queued",))))
    ran = [job["id"] for job in queue.fair_order(waiting)]
    assert ran == [order[0], order[3], order[4], order[1], order[5], order[2]]  # ada1 bob1 cy1 ada2 bob2 ada3
    assert [job["id"] for job in queue.fair_order(waiting, started=["bob"])][:2] == [order[0], order[4]]  # bob had one: cy first
    store.update_job(order[0], status="succeeded", lessonlib_started_at=store.job(order[0])["created_at"])
    assert [job["id"] for job in queue.in_turn(store.jobs())] == [order[3], order[4], order[1], order[5], order[2]]  # ada1 ran
    told = queue.places(queue.fair_order(waiting), running_finish=1000.0, typical=60.0, now=940.0)
    assert [p.place for p in told] == [1, 2, 3, 4, 5, 6] and [p.ahead for p in told][:2] == [1, 2]
    assert told[0].message(now=940.0) == "Queued: place 1 of 6 (1 job ahead); estimated start in about 1 min"
    assert told[1].start_at - told[0].start_at == 60 and told[0].finish_at == told[1].start_at


def test_the_keys_file_is_made_for_n_learners_and_never_printed(tmp_path):
    keys = tmp_path / "class.txt"
    from lessonlib.service.run import make_keys, read_keys

    assert make_keys(keys, 2) == (2, 2) and make_keys(keys, 4) == (2, 4) and make_keys(keys, 3) == (0, 4)
    assert sorted(read_keys(keys).values()) == ["learner01", "learner02", "learner03", "learner04"]
    assert keys.stat().st_mode & 0o077 == 0  # readable by its owner only
    missing = subprocess.run([sys.executable, "-m", "lessonlib", "class", "--state", str(tmp_path / "state")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "holds no service" in missing.stderr and not (tmp_path / "state").exists()
    Store(tmp_path / "state")  # a service's folder before its first job
    done = subprocess.run([sys.executable, "-m", "lessonlib", "class", "--state", str(tmp_path / "state"), "--keys", str(keys), "--json"],
                          capture_output=True, text=True, check=True)
    view = json.loads(done.stdout)
    assert [row["learner"] for row in view["learners"]] == ["learner01", "learner02", "learner03", "learner04"]
    assert view["memory_gb"] is None and not any(key in done.stdout + done.stderr for key in read_keys(keys))


def test_a_class_loses_no_job_to_a_crash_gets_no_5xx_and_takes_turns(tmp_path):
    """2 learners through real ``openai`` clients; learner 1 creates an extra job first, so their second waits behind
    learner 2's first; kill -9 of the service mid-class."""
    from class_load import run_class

    from lessonlib.service.roster import class_view, render

    report = run_class(learners=2, extra=1, folder=tmp_path)
    assert report["killed_and_restarted"] and report["jobs"] == 3
    assert report["jobs_lost"] == 0 and report["server_errors"] == 0 and report["rate_limited_under_limit"] == 0, report
    assert report["fair_order"], report
    assert report["learners_told_their_place"] == 2
    view = class_view(tmp_path / "state")
    assert view["jobs_by_status"] == {"succeeded": 3} and view["wait_p95_s"] is not None
    text = render(view)
    assert all(name in text for name in ("learner01", "learner02")) and "3 succeeded" in text
