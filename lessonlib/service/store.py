"""The service's records in SQLite: files, fine-tuning jobs, their events and checkpoints, Azure deployments.

One database file in the state folder (``service.sqlite3``), opened afresh by each call (WAL mode,
so the web server and the training worker, two processes, read and write it at once). Rows are
kept as the JSON objects the OpenAI API returns, plus the columns the service queries on.

>>> import tempfile
>>> store = Store(tempfile.mkdtemp())
>>> job = store.add_job({"model": "gpt-4o-mini", "status": "queued"})
>>> store.job(job["id"])["status"]
'queued'
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, owner TEXT, created_at INTEGER, body TEXT);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, owner TEXT, created_at INTEGER, status TEXT, body TEXT);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, job TEXT, body TEXT);
CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, job TEXT, step INTEGER, body TEXT);
CREATE INDEX IF NOT EXISTS events_job ON events (job, seq);
CREATE TABLE IF NOT EXISTS deployments (owner TEXT, name TEXT, body TEXT, PRIMARY KEY (owner, name));
"""


def new_id(prefix: str) -> str:
    """An id shaped like OpenAI's: ``file-…``, ``ftjob-…``, ``ftevent-…``, ``ftckpt-…``."""
    return f"{prefix}-{secrets.token_hex(12)}"


class Store:
    """Files, jobs, events and checkpoints of one service, in ``STATE/service.sqlite3``."""

    def __init__(self, state: str | Path):
        self.state = Path(state)
        (self.state / "files").mkdir(parents=True, exist_ok=True)
        (self.state / "runs").mkdir(parents=True, exist_ok=True)
        self.path = self.state / "service.sqlite3"
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self._db() as db:
            return [json.loads(row[0]) for row in db.execute(sql, args)]

    # files ------------------------------------------------------------------------------------
    def add_file(self, body: dict[str, Any], owner: str = "") -> dict[str, Any]:
        with self._db() as db:
            db.execute("INSERT INTO files VALUES (?, ?, ?, ?)", (body["id"], owner, body["created_at"], json.dumps(body)))
        return body

    def file(self, file_id: str, owner: str = "") -> dict[str, Any] | None:
        rows = self._rows("SELECT body FROM files WHERE id = ? AND owner = ?", file_id, owner)
        return rows[0] if rows else None

    def files(self, owner: str = "") -> list[dict[str, Any]]:
        return self._rows("SELECT body FROM files WHERE owner = ? ORDER BY created_at DESC, rowid DESC", owner)

    def delete_file(self, file_id: str, owner: str = "") -> bool:
        with self._db() as db:
            return db.execute("DELETE FROM files WHERE id = ? AND owner = ?", (file_id, owner)).rowcount > 0

    def file_path(self, file_id: str) -> Path:
        return self.state / "files" / f"{file_id}.jsonl"

    # jobs -------------------------------------------------------------------------------------
    def add_job(self, body: dict[str, Any], owner: str = "") -> dict[str, Any]:
        body = {"id": new_id("ftjob"), "object": "fine_tuning.job", "created_at": int(time.time()), **body}
        with self._db() as db:
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?)", (body["id"], owner, body["created_at"], body["status"], json.dumps(body)))
        return body

    def job(self, job_id: str, owner: str | None = None) -> dict[str, Any] | None:
        if owner is None:
            rows = self._rows("SELECT body FROM jobs WHERE id = ?", job_id)
        else:
            rows = self._rows("SELECT body FROM jobs WHERE id = ? AND owner = ?", job_id, owner)
        return rows[0] if rows else None

    def jobs(self, owner: str | None = None, status: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Jobs, newest first (``owner=None``: everyone's; ``status``: only these)."""
        sql, args = "SELECT body FROM jobs WHERE 1", []
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        if status:
            sql += f" AND status IN ({','.join('?' * len(status))})"
            args += list(status)
        return self._rows(sql + " ORDER BY created_at DESC, rowid DESC", *args)

    def update_job(self, job_id: str, *, only_if: tuple[str, ...] = (), **changes: Any) -> dict[str, Any] | None:
        """Change the job's fields; with ``only_if``, only while its status is one of these (else None, nothing changed)."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            body = json.loads(db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
            if only_if and body["status"] not in only_if:
                db.execute("ROLLBACK")
                return None
            body.update(changes)
            db.execute("UPDATE jobs SET status = ?, body = ? WHERE id = ?", (body["status"], json.dumps(body), job_id))
            db.execute("COMMIT")
        return body

    # events and checkpoints -------------------------------------------------------------------
    def add_event(self, job_id: str, message: str, *, level: str = "info", kind: str = "message",
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"id": new_id("ftevent"), "object": "fine_tuning.job.event", "created_at": int(time.time()), "level": level,
                "message": message, "data": data or {}, "type": kind}
        with self._db() as db:
            db.execute("INSERT INTO events (id, job, body) VALUES (?, ?, ?)", (body["id"], job_id, json.dumps(body)))
        return body

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's events, newest first (as the API lists them)."""
        return self._rows("SELECT body FROM events WHERE job = ? ORDER BY seq DESC", job_id)

    def add_checkpoint(self, job_id: str, step: int, body: dict[str, Any]) -> dict[str, Any]:
        body = {"id": new_id("ftckpt"), "object": "fine_tuning.job.checkpoint", "created_at": int(time.time()),
                "fine_tuning_job_id": job_id, "step_number": step, **body}
        with self._db() as db:
            db.execute("INSERT INTO checkpoints (id, job, step, body) VALUES (?, ?, ?, ?)", (body["id"], job_id, step, json.dumps(body)))
        return body

    def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        """The job's checkpoints, newest first."""
        return self._rows("SELECT body FROM checkpoints WHERE job = ? ORDER BY step DESC", job_id)

    # deployments (Azure) ------------------------------------------------------------------------
    def put_deployment(self, name: str, body: dict[str, Any], owner: str = "") -> dict[str, Any]:
        """Create or replace the deployment ``name`` (as Azure's PUT does)."""
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO deployments VALUES (?, ?, ?)", (owner, name, json.dumps(body)))
        return body

    def deployment(self, name: str, owner: str = "") -> dict[str, Any] | None:
        rows = self._rows("SELECT body FROM deployments WHERE name = ? AND owner = ?", name, owner)
        return rows[0] if rows else None

    def deployments(self, owner: str = "") -> list[dict[str, Any]]:
        return self._rows("SELECT body FROM deployments WHERE owner = ? ORDER BY name", owner)

    def delete_deployment(self, name: str, owner: str = "") -> bool:
        with self._db() as db:
            return db.execute("DELETE FROM deployments WHERE name = ? AND owner = ?", (name, owner)).rowcount > 0


def page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    """An OpenAI list page: the items after the one with id ``after``, at most ``limit``."""
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}
