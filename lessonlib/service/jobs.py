"""``/fine_tuning/jobs``: create, list, retrieve and cancel jobs, and read their events and checkpoints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from .context import BASE_MODELS, MAX_PAGE, Service, caller, public, service, surface
from .errors import ApiError
from .requests import JobRequest
from .store import page

router = APIRouter()


def job_or_404(svc: Service, job_id: str, owner: str) -> dict[str, Any]:
    job = svc.store.job(job_id, owner)
    if job is None:
        raise ApiError(404, f"No fine-tuning job found with id {job_id}", param="fine_tuning_job_id", code="fine_tune_not_found")
    return job


@router.post("/fine_tuning/jobs")
def create_job(body: JobRequest, request: Request, owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    store, model = svc.store, body.model
    if model not in BASE_MODELS:
        raise ApiError(400, f"Model {model} is not available for fine-tuning here; use one of: {', '.join(BASE_MODELS)}",
                       param="model", code="model_not_available")
    for param in ("training_file", "validation_file"):
        if getattr(body, param) is not None and store.file(getattr(body, param), owner) is None:
            raise ApiError(400, f"invalid {param}: no such file {getattr(body, param)}", param=param, code="invalid_file")
    svc.check_room(owner)
    hyper = body.settings()
    job = store.add_job({"model": model, "training_file": body.training_file, "validation_file": body.validation_file,
                         "status": "validating_files", "fine_tuned_model": None, "finished_at": None, "error": None,
                         "hyperparameters": hyper, "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
                         "organization_id": "org-lessonlib", "result_files": [], "seed": body.seed,
                         "trained_tokens": None, "estimated_finish": None, "integrations": [], "metadata": body.metadata,
                         "suffix": body.suffix, "user_provided_suffix": body.suffix,
                         "lessonlib_owner": owner, "lessonlib_surface": surface(request)}, owner)
    store.add_event(job["id"], f"Created fine-tuning job: {job['id']}")
    svc.scheduler.announce()
    svc.scheduler.wake.set()
    return public(job)


@router.get("/fine_tuning/jobs")
def list_jobs(after: str | None = None, limit: int = Query(20, ge=1, le=MAX_PAGE), owner: str = Depends(caller),
              svc: Service = Depends(service)) -> dict[str, Any]:
    return page([public(j) for j in svc.store.jobs(owner)], after, limit)


@router.get("/fine_tuning/jobs/{job_id}")
def retrieve_job(job_id: str, owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    return public(job_or_404(svc, job_id, owner))


@router.post("/fine_tuning/jobs/{job_id}/cancel")
def cancel_job(job_id: str, owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    job = job_or_404(svc, job_id, owner)
    if job["status"] in ("succeeded", "failed", "cancelled"):
        raise ApiError(400, f"Job {job_id} has already ended ({job['status']})", param="fine_tuning_job_id")
    job = svc.store.update_job(job_id, status="cancelled", finished_at=int(time.time()))
    svc.scheduler.cancel(job_id)
    svc.store.add_event(job_id, "Fine-tuning job cancelled")
    return public(job)


@router.get("/fine_tuning/jobs/{job_id}/events")
def list_events(job_id: str, after: str | None = None, limit: int = Query(20, ge=1, le=MAX_PAGE),
                owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    job_or_404(svc, job_id, owner)
    return page(svc.store.events(job_id), after, limit)


@router.get("/fine_tuning/jobs/{job_id}/checkpoints")
def list_checkpoints(job_id: str, after: str | None = None, limit: int = Query(10, ge=1, le=MAX_PAGE),
                     owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    job_or_404(svc, job_id, owner)
    return page([public(c) for c in svc.store.checkpoints(job_id) if Path(c["lessonlib_path"]).is_dir()], after, limit)
