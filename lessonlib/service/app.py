"""The local fine-tuning service: the parts of the OpenAI API that the fine-tuning tutorials call, on this machine.

A FastAPI application over :class:`~lessonlib.service.store.Store` (SQLite). Files, fine-tuning jobs
(create, list, retrieve, cancel, events, checkpoints), models and chat completions answer with the
objects ``openai`` (the SDK) parses; errors come as ``{"error": {"message", "type", "param",
"code"}}`` with the right HTTP status; request bodies and queries are checked by the pydantic models
of :mod:`lessonlib.service.requests` before any handler runs, so a malformed request gets a 400 that
names the field, never a 500. Jobs run one at a time, fairly between the learners of a class
(:mod:`lessonlib.service.queue`), each in a worker process (:mod:`lessonlib.service.worker`) that
exits when its job ends; a job that a restart interrupted resumes from its last checkpoint. Chat loads the local model once, in a reply worker
process that exits when the model is released (:mod:`lessonlib.service.chat`): this process imports no torch.

The same routes answer under ``/v1`` (the ``OpenAI`` client) and under ``/openai`` with an
``api-version`` query (the ``AzureOpenAI`` client); :mod:`lessonlib.service.azure` adds Azure's
deployments (management plane) and the deployment-scoped chat path.

Three routes are lessonlib's own, for the notebook kernels of this machine: ``/v1/lessonlib/generate``
(replies from the one model the service holds), ``/v1/lessonlib/release`` (give it back before a
kernel trains) and ``/v1/lessonlib/plot`` (a :class:`lessonlib.plots.Chart` drawn as PNG, so that
no kernel imports matplotlib).

One router a resource: :mod:`~lessonlib.service.files`, :mod:`~lessonlib.service.jobs`,
:mod:`~lessonlib.service.completions` (models and chat), :mod:`~lessonlib.service.azure` and
:mod:`~lessonlib.service.kernels`; what they share (the :class:`~lessonlib.service.context.Service` on
``app.state``, the caller) is in :mod:`~lessonlib.service.context`.

>>> app = create_app("/tmp/lessonlib-service-doctest")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import settings
from . import azure, completions, files, jobs, kernels
from .chat import Chatter
from .context import Service
from .errors import ApiError
from .scheduler import Scheduler
from .store import Store


def create_app(state: str | Path, keys: dict[str, str] | None = None, on_start: Sequence[Callable[[], Any]] = (),
               launcher: Sequence[str] = ()) -> FastAPI:
    """The service's application, keeping everything under ``state``.

    ``keys`` (``{key: name}``): only these keys get in (401 otherwise), and each name sees only its own
    files, jobs and models. ``None``: one learner on loopback, any key accepted. ``on_start``: called
    once the application has started (after the job scheduler). ``launcher``: the command that starts
    each job's worker (:class:`~lessonlib.service.scheduler.Scheduler`).
    """
    store = Store(state)
    chatter = Chatter()
    scheduler = Scheduler(store, chatter, settings.get("LESSONLIB_SERVICE_IDLE_UNLOAD"), launcher=launcher)
    chatter.training = lambda: scheduler.running_job() is not None
    service = Service(store=store, scheduler=scheduler, chatter=chatter, keys=keys, max_jobs=settings.get("LESSONLIB_SERVICE_MAX_JOBS"),
                      max_per_learner=settings.get("LESSONLIB_SERVICE_MAX_JOBS_PER_LEARNER"))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.scheduler.start()
        for started in on_start:
            started()
        try:
            yield
        finally:
            service.scheduler.stop()

    app = FastAPI(title="lessonlib local fine-tuning service", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = exc.response()
        if exc.status == 429:
            response.headers["Retry-After"] = "30"  # the SDK waits this long before it retries
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A body or query that does not fit its model (requests.py): 400, naming the first field at fault."""
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = str(first.get("msg", "bad value")).removeprefix("Value error, ")
        return ApiError(400, f"invalid request: {message}" + (f" ({param})" if param else ""), param=param).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """What Starlette refuses itself (an unknown path, a wrong method, a body it cannot parse), shaped as OpenAI's errors."""
        return ApiError(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None).response()

    for router in (files.router, jobs.router, completions.router):  # OpenAI's API, and Azure OpenAI's data plane
        app.include_router(router, prefix="/v1")
        app.include_router(router, prefix="/openai", dependencies=[Depends(azure.api_version)])
    app.include_router(azure.router)
    app.include_router(kernels.router)
    return app
