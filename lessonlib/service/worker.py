"""The training worker: one fine-tuning job of the local service, run by lessonlib's runner in its own process.

The service starts ``python -m lessonlib.service.worker STATE JOB_ID --parent PID`` for one job at a
time (or the same module under a launcher: ``torchrun``, ``accelerate launch``, one process a GPU);
the process validates the files (the data doctor's findings fail the job at ``validating_files``),
trains with :func:`lessonlib.train.run` (the same recipe as ``lessonlib train local``), writes events
and checkpoints as OpenAI words them, and exits, giving all its memory back. It ends itself if the
service (``PID``) ends first. A job interrupted by a restart resumes from its last checkpoint.

"auto" hyperparameters are sized for a small CPU: 1 epoch for 50 examples or more (3 at most for
fewer, so that a run sees ~50 examples), batch 2, learning-rate multiplier 1 (2e-3 for LoRA).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path
from typing import Any

from .store import Store, new_id

#: The local model that plays every OpenAI base model.
LOCAL_MODEL = "SmolLM2-135M-Instruct"
BASE_LEARNING_RATE = 2e-3


def auto_hyperparameters(examples: int, given: dict[str, Any]) -> dict[str, Any]:
    """The job's hyperparameters: the values given, and for "auto" (or missing) ones what suits a small CPU.

    >>> auto_hyperparameters(100, {"n_epochs": "auto"})
    {'n_epochs': 1, 'batch_size': 2, 'learning_rate_multiplier': 1.0}
    >>> auto_hyperparameters(10, {"batch_size": 4})
    {'n_epochs': 3, 'batch_size': 4, 'learning_rate_multiplier': 1.0}
    """
    def value(name: str, auto: Any) -> Any:
        given_value = given.get(name, "auto")
        return auto if given_value in (None, "auto") else given_value

    return {"n_epochs": int(value("n_epochs", 1 if examples >= 50 else min(3, math.ceil(50 / max(examples, 1))))),
            "batch_size": int(value("batch_size", 2)),
            "learning_rate_multiplier": float(value("learning_rate_multiplier", 1.0))}


def model_name(job: dict[str, Any], owner: str) -> str:
    """The tuned model's name as the provider would give it.

    OpenAI: ``ft:<base>:<owner>:<suffix>:<id>``; Azure OpenAI (a job created under ``/openai``):
    ``<base>.ft-<id>[-<suffix>]``.

    >>> model_name({"model": "gpt-4o-mini-2024-07-18", "suffix": "recipes", "id": "ftjob-0123456789abcdef"}, "")
    'ft:gpt-4o-mini-2024-07-18:lessonlib:recipes:89abcdef'
    >>> model_name({"model": "gpt-35-turbo-0125", "suffix": None, "id": "ftjob-0123456789abcdef", "lessonlib_surface": "azure"}, "")
    'gpt-35-turbo-0125.ft-0123456789abcdef'
    """
    if job.get("lessonlib_surface") == "azure":
        return f"{job['model']}.ft-{job['id'].removeprefix('ftjob-')}" + (f"-{job['suffix']}" if job.get("suffix") else "")
    return f"ft:{job['model']}:{owner or 'lessonlib'}:{job.get('suffix') or ''}:{job['id'][-8:]}"


def _fail(store: Store, job_id: str, code: str, message: str, param: str | None = None) -> None:
    store.add_event(job_id, message, level="error")
    store.update_job(job_id, status="failed", finished_at=int(time.time()), error={"code": code, "message": message, "param": param})


def _validate(store: Store, job: dict[str, Any]) -> int | None:
    """Check the job's files with the data doctor; the number of training examples, or None when it failed."""
    from .. import data

    examples = None
    for param in ("training_file", "validation_file"):
        file_id = job.get(param)
        if not file_id:
            continue
        store.add_event(job["id"], f"Validating {param.split('_')[0]} file: {file_id}")
        report = data.validate(store.file_path(file_id), model="smollm2", min_examples=1)
        if not report.ok:
            _fail(store, job["id"], f"invalid_{param}", f"The {param.replace('_', ' ')} {file_id} has errors: "
                  + report.summary(max_lines=3).replace(str(store.file_path(file_id)), file_id), param)
            return None
        if param == "training_file":
            examples = report.examples
    return examples


class _LeftToFirst:
    """The store as every worker process but the first sees it (a launcher's processes): it reads; process 0 writes."""

    def __init__(self, store: Store):
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("add_", "update_")):
            return lambda *args, **kwargs: {}
        return getattr(self._store, name)


def _threads_each() -> int:
    """torch threads for each of this machine's worker processes: its usable cores shared out (0: the plan decides)."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if local <= 1:
        return 0
    from ..system import usable_cores

    return max(1, usable_cores() // local)


def run_job(state: str | Path, job_id: str) -> None:
    """Run one job to its end (or its failure); see the module docstring.

    Under a launcher (``torchrun``, ``accelerate launch``) every process runs this and trains its share
    of each batch (``WORLD_SIZE`` processes, each ``batch_size / WORLD_SIZE`` examples a step, so the
    job's batch size holds); only process 0 (``RANK``) writes events, checkpoints and results.
    """
    from ..errors import LessonError
    from ..train import RunConfig, last_checkpoint, run

    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    store: Any = Store(state) if rank == 0 else _LeftToFirst(Store(state))
    job = store.job(job_id)
    owner = job.get("lessonlib_owner", "")
    out = store.state / "runs" / job_id
    resume = last_checkpoint(out) is not None
    examples = _validate(store, job)
    if examples is None:
        return
    hyper = auto_hyperparameters(examples, job.get("hyperparameters") or {})
    per_process = max(1, hyper["batch_size"] // world)
    steps_per_epoch = math.ceil(examples / (per_process * world))
    total = steps_per_epoch * hyper["n_epochs"]
    name = model_name(job, owner)
    if world > 1:
        store.add_event(job_id, f"Training on {world} processes, {per_process} example(s) each a step")
    cfg = RunConfig(train_file=str(store.file_path(job["training_file"])),
                    valid_file=str(store.file_path(job["validation_file"])) if job.get("validation_file") else None,
                    output_dir=str(out), max_steps=total, batch_size=per_process,
                    learning_rate=BASE_LEARNING_RATE * hyper["learning_rate_multiplier"], seed=job.get("seed") or 18,
                    save_every=steps_per_epoch, eval_every=steps_per_epoch if job.get("validation_file") else 0, overwrite=not resume,
                    threads=_threads_each())
    if resume:
        store.add_event(job_id, f"Resuming from {last_checkpoint(out).name} after an interruption")
    else:
        store.add_event(job_id, f"The base model {job['model']} is played by the local model {LOCAL_MODEL} on this machine")
        store.add_event(job_id, f"Hyperparameters: {hyper['n_epochs']} epoch(s), batch size {hyper['batch_size']}, learning rate "
                        f"{cfg.learning_rate:g} ({total} steps)")
    store.update_job(job_id, status="running", hyperparameters=hyper, seed=cfg.seed)
    last: dict[str, Any] = {"loss": None, "eval": None}
    started = time.time()

    def on_event(event: Any) -> None:
        if event.kind == "start":
            store.add_event(job_id, "Fine-tuning job started")
        elif event.kind == "step":
            last["loss"] = event.loss
            store.add_event(job_id, f"Step {event.step}/{event.total}: training loss={event.loss:.2f}", kind="metrics",
                            data={"step": event.step, "train_loss": event.loss, "total_steps": event.total})
            if event.eta_s is not None:
                store.update_job(job_id, estimated_finish=int(time.time() + event.eta_s))
        elif event.kind == "eval":
            last["eval"] = event.eval_loss
            store.add_event(job_id, f"Step {event.step}/{event.total}: validation loss={event.eval_loss:.2f}", kind="metrics",
                            data={"step": event.step, "valid_loss": event.eval_loss, "total_steps": event.total})
        elif event.kind == "save" and event.step:
            snapshot = f"{name}:ckpt-step-{event.step}"
            store.add_checkpoint(job_id, event.step, {
                "fine_tuned_model_checkpoint": snapshot,
                "metrics": {"step": event.step, "train_loss": last["loss"], "valid_loss": last["eval"]},
                "lessonlib_path": str(out / f"checkpoint-{event.step}"),
            })
            store.add_event(job_id, f"Checkpoint created at step {event.step} with Snapshot ID: {snapshot}")

    try:
        result = run(cfg, on_event=on_event, resume=resume, owns_process=True)
    except LessonError as exc:
        _fail(store, job_id, "training_failed", exc.message)
        return
    if rank != 0:
        return
    results = _metrics_file(store, job_id, owner, result.history)
    store.add_event(job_id, f"New fine-tuned model created: {name}")
    tokens = round((result.tokens_per_s or 0) * result.train_seconds)
    store.update_job(job_id, status="succeeded", fine_tuned_model=name, finished_at=int(time.time()), trained_tokens=tokens,
                     result_files=[results], estimated_finish=None, lessonlib_seconds=round(time.time() - started, 1))
    store.add_event(job_id, "The job has successfully completed")


def _metrics_file(store: Store, job_id: str, owner: str, history: list[dict[str, Any]]) -> str:
    """A results file like OpenAI's (``step,train_loss,valid_loss,…`` CSV); returns its file id."""
    rows: dict[int, dict[str, Any]] = {}
    for event in history:
        if event["kind"] == "step":
            rows.setdefault(event["step"], {})["train_loss"] = event["loss"]
        elif event["kind"] == "eval":
            rows.setdefault(event["step"], {})["valid_loss"] = event["eval_loss"]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["step", "train_loss", "valid_loss"])
    for step in sorted(rows):
        writer.writerow([step, rows[step].get("train_loss", ""), rows[step].get("valid_loss", "")])
    file_id = new_id("file")
    store.file_path(file_id).write_text(text.getvalue(), encoding="utf-8")
    store.add_file({"id": file_id, "object": "file", "bytes": len(text.getvalue().encode()), "created_at": int(time.time()),
                    "filename": "step_metrics.csv", "purpose": "fine-tune-results", "status": "processed",
                    "status_details": None}, owner)
    return file_id


def end_with(parent: int, *, every: float = 1.0) -> None:
    """End this process when process ``parent`` (the service) has ended: a killed service leaves no job training alone."""
    import threading

    import psutil

    try:
        born = psutil.Process(parent).create_time()
    except psutil.Error:
        os._exit(3)

    def watch() -> None:
        while True:
            try:
                if psutil.Process(parent).create_time() != born:
                    break
            except psutil.Error:
                break
            time.sleep(every)
        os._exit(3)

    threading.Thread(target=watch, name="lessonlib-end-with-service", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """``python -m lessonlib.service.worker STATE JOB_ID [--parent PID]`` (the scheduler's command, under its launcher)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lessonlib.service.worker")
    parser.add_argument("state")
    parser.add_argument("job_id")
    parser.add_argument("--parent", type=int, default=None)  # the service's process id: end when it ends
    args = parser.parse_args(argv)
    if args.parent is not None:
        end_with(args.parent)
    run_job(args.state, args.job_id)


if __name__ == "__main__":
    main()
