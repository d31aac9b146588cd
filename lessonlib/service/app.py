"""The local fine-tuning service: the parts of the OpenAI API that the fine-tuning tutorials call, on this machine.

A FastAPI application over :class:`~lessonlib.service.store.Store` (SQLite). Files, fine-tuning jobs
(create, list, retrieve, cancel, events, checkpoints), models and chat completions answer with the
objects ``openai`` (the SDK) parses; errors come as ``{"error": {"message", "type", "param",
"code"}}`` with the right HTTP status; request bodies and queries are checked by the pydantic models
of :mod:`lessonlib.service.requests` before any handler runs, so a malformed request gets a 400 that
names the field, never a 500. Jobs run one at a time, first in first out, each in a worker
process (:mod:`lessonlib.service.worker`) that exits when its job ends; a job that a restart
interrupted resumes from its last checkpoint. Chat loads the local model once, in a reply worker
process that exits when the model is released (:mod:`lessonlib.service.chat`): this process imports no torch.

The same routes answer under ``/v1`` (the ``OpenAI`` client) and under ``/openai`` with an
``api-version`` query (the ``AzureOpenAI`` client); :mod:`lessonlib.service.azure` adds Azure's
deployments (management plane) and the deployment-scoped chat path.

Three routes are lessonlib's own, for the notebook kernels of this machine: ``/v1/lessonlib/generate``
(replies from the one model the service holds), ``/v1/lessonlib/release`` (give it back before a
kernel trains) and ``/v1/lessonlib/plot`` (a :class:`lessonlib.plots.Chart` drawn as PNG, so that
no kernel imports matplotlib).

>>> app = create_app("/tmp/lessonlib-service-doctest")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import settings
from . import azure
from .chat import Chatter
from .errors import ApiError
from .requests import ChatRequest, GenerateRequest, JobRequest, PlotRequest
from ..i18n import _
from .store import Store, new_id, page
from .worker import LOCAL_MODEL

#: OpenAI base models the tutorials use; each is played by the local model.
BASE_MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", "gpt-3.5-turbo", "gpt-3.5-turbo-0125", "gpt-4o-2024-08-06",
               "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14", "babbage-002", "davinci-002",
               "gpt-35-turbo-0125", "gpt-35-turbo-0613", "gpt-35-turbo-1106")  # the last three: Azure's names
#: Jobs that may wait or run at once (``LESSONLIB_SERVICE_MAX_JOBS``); one more gets 429 with Retry-After.
MAX_JOBS = 8
#: The largest upload accepted (bytes).
MAX_UPLOAD = 50 << 20
#: The most items one page of a list may ask for (OpenAI's own lists stop at 10,000).
MAX_PAGE = 10_000
PRIVATE = "lessonlib_"


def public(body: dict[str, Any]) -> dict[str, Any]:
    """An object as the API shows it: the service's own bookkeeping left out."""
    return {k: v for k, v in body.items() if not k.startswith(PRIVATE)}


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
                process = subprocess.Popen([sys.executable, "-m", "lessonlib.service.worker", str(self.store.state), job["id"]],
                                           stdout=subprocess.DEVNULL, stderr=open(self.store.state / "worker.log", "ab"))
                self.current = (job["id"], process)
            code = process.wait()
            with self.lock:
                self.current = None
            after = self.store.job(job["id"])
            if after and after["status"] in ("validating_files", "queued", "running") and not self.stopping.is_set():
                self.store.add_event(job["id"], f"The training process ended unexpectedly (exit code {code})", level="error")
                self.store.update_job(job["id"], status="failed", finished_at=int(time.time()),
                                      error={"code": "server_error", "message": "the training process ended unexpectedly", "param": None})


def read_keys(path: str | Path) -> dict[str, str]:
    """``name:key`` lines (blank lines and ``#`` comments skipped) -> ``{key: name}``; a bad line names file and line."""
    from ..errors import LessonError

    keys: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LessonError(_("cannot read the keys file {path}: {reason}").format(path=path, reason=exc.strerror or exc), exit_code=2) from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _sep, key = line.partition(":")
        if not name.strip() or len(key.strip()) < 8:
            raise LessonError(_("{path}, line {number}: expected NAME:KEY with a key of 8 characters or more").format(path=path, number=number),
                              fix=_("one learner a line, e.g. ada:a-long-random-key"), exit_code=2)
        keys[key.strip()] = name.strip()
    if not keys:
        raise LessonError(_("{path} holds no NAME:KEY line").format(path=path), fix=_("one learner a line, e.g. ada:a-long-random-key"), exit_code=2)
    return keys


def create_app(state: str | Path, keys: dict[str, str] | None = None, on_start: Sequence[Callable[[], Any]] = ()) -> FastAPI:
    """The service's application, keeping everything under ``state``.

    ``keys`` (``{key: name}``): only these keys get in (401 otherwise), and each name sees only its own
    files, jobs and models. ``None``: one learner on loopback, any key accepted. ``on_start``: called
    once the application has started (after the job scheduler).
    """
    store = Store(state)

    def caller(request: Request) -> str:
        """The owner of a request: "" without keys; else the name of its key (``Authorization: Bearer`` or ``api-key``)."""
        if keys is None:
            return ""
        given = request.headers.get("api-key") or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        name = keys.get(given)
        if name is None:  # the key itself is never repeated
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        return name

    chatter = Chatter()
    scheduler = Scheduler(store, chatter, settings.get("LESSONLIB_SERVICE_IDLE_UNLOAD"))
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        for started in on_start:
            started()
        try:
            yield
        finally:
            scheduler.stop()

    app = FastAPI(title="lessonlib local fine-tuning service", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.store, app.state.scheduler = store, scheduler
    api = APIRouter()  # mounted at /v1 (OpenAI) and /openai (Azure OpenAI), below

    max_jobs = settings.get("LESSONLIB_SERVICE_MAX_JOBS")

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

    def job_or_404(job_id: str, owner: str) -> dict[str, Any]:
        job = store.job(job_id, owner)
        if job is None:
            raise ApiError(404, f"No fine-tuning job found with id {job_id}", param="fine_tuning_job_id", code="fine_tune_not_found")
        return job

    # files -------------------------------------------------------------------------------------
    @api.post("/files")
    async def upload(file: UploadFile = File(...), purpose: str = Form(...), owner: str = Depends(caller)) -> dict[str, Any]:
        if purpose != "fine-tune":
            raise ApiError(400, f"'{purpose}' is not a purpose this service accepts: use 'fine-tune'", param="purpose")
        content = await file.read(MAX_UPLOAD + 1)
        if len(content) > MAX_UPLOAD:
            raise ApiError(413, f"the file is over {MAX_UPLOAD >> 20} MB", param="file", code="file_too_large")
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, f"{file.filename} is not UTF-8 text", param="file", code="invalid_file_format") from None
        lines = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                lines += [json.loads(line)] if line.strip() else []
            except json.JSONDecodeError as exc:
                raise ApiError(400, f"{file.filename} is not valid JSONL: line {number}: {exc.msg} (column {exc.colno})",
                               param="file", code="invalid_file_format") from None
        if not lines:
            raise ApiError(400, f"{file.filename} holds no examples", param="file", code="invalid_file_format")
        body = {"id": new_id("file"), "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": file.filename, "purpose": purpose, "status": "processed", "status_details": None}
        store.file_path(body["id"]).write_bytes(content)
        return store.add_file(body, owner)

    @api.get("/files")
    def list_files(owner: str = Depends(caller)) -> dict[str, Any]:
        return {"object": "list", "data": store.files(owner), "has_more": False}

    def file_or_404(file_id: str, owner: str) -> dict[str, Any]:
        found = store.file(file_id, owner)
        if found is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id", code="file_not_found")
        return found

    @api.get("/files/{file_id}")
    def retrieve_file(file_id: str, owner: str = Depends(caller)) -> dict[str, Any]:
        return file_or_404(file_id, owner)

    @api.get("/files/{file_id}/content")
    def file_content(file_id: str, owner: str = Depends(caller)) -> PlainTextResponse:
        file_or_404(file_id, owner)
        return PlainTextResponse(store.file_path(file_id).read_text(encoding="utf-8"))

    @api.delete("/files/{file_id}")
    def delete_file(file_id: str, owner: str = Depends(caller)) -> dict[str, Any]:
        file_or_404(file_id, owner)
        store.delete_file(file_id, owner)
        store.file_path(file_id).unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}

    # fine-tuning jobs --------------------------------------------------------------------------
    @api.post("/fine_tuning/jobs")
    def create_job(body: JobRequest, request: Request, owner: str = Depends(caller)) -> dict[str, Any]:
        model = body.model
        if model not in BASE_MODELS:
            raise ApiError(400, f"Model {model} is not available for fine-tuning here; use one of: {', '.join(BASE_MODELS)}",
                           param="model", code="model_not_available")
        for param in ("training_file", "validation_file"):
            if getattr(body, param) is not None and store.file(getattr(body, param), owner) is None:
                raise ApiError(400, f"invalid {param}: no such file {getattr(body, param)}", param=param, code="invalid_file")
        if len(store.jobs(status=("validating_files", "queued", "running"))) >= max_jobs:
            raise ApiError(429, f"{max_jobs} jobs are already waiting or running here; try again when one has ended",
                           kind="rate_limit_exceeded", code="rate_limit_exceeded")
        hyper = body.settings()
        job = store.add_job({"model": model, "training_file": body.training_file, "validation_file": body.validation_file,
                             "status": "validating_files", "fine_tuned_model": None, "finished_at": None, "error": None,
                             "hyperparameters": hyper, "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
                             "organization_id": "org-lessonlib", "result_files": [], "seed": body.seed,
                             "trained_tokens": None, "estimated_finish": None, "integrations": [], "metadata": body.metadata,
                             "suffix": body.suffix, "user_provided_suffix": body.suffix,
                             "lessonlib_owner": owner, "lessonlib_surface": surface(request)}, owner)
        store.add_event(job["id"], f"Created fine-tuning job: {job['id']}")
        scheduler.wake.set()
        return public(job)

    @api.get("/fine_tuning/jobs")
    def list_jobs(after: str | None = None, limit: int = Query(20, ge=1, le=MAX_PAGE), owner: str = Depends(caller)) -> dict[str, Any]:
        return page([public(j) for j in store.jobs(owner)], after, limit)

    @api.get("/fine_tuning/jobs/{job_id}")
    def retrieve_job(job_id: str, owner: str = Depends(caller)) -> dict[str, Any]:
        return public(job_or_404(job_id, owner))

    @api.post("/fine_tuning/jobs/{job_id}/cancel")
    def cancel_job(job_id: str, owner: str = Depends(caller)) -> dict[str, Any]:
        job = job_or_404(job_id, owner)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            raise ApiError(400, f"Job {job_id} has already ended ({job['status']})", param="fine_tuning_job_id")
        job = store.update_job(job_id, status="cancelled", finished_at=int(time.time()))
        scheduler.cancel(job_id)
        store.add_event(job_id, "Fine-tuning job cancelled")
        return public(job)

    @api.get("/fine_tuning/jobs/{job_id}/events")
    def list_events(job_id: str, after: str | None = None, limit: int = Query(20, ge=1, le=MAX_PAGE),
                    owner: str = Depends(caller)) -> dict[str, Any]:
        job_or_404(job_id, owner)
        return page(store.events(job_id), after, limit)

    @api.get("/fine_tuning/jobs/{job_id}/checkpoints")
    def list_checkpoints(job_id: str, after: str | None = None, limit: int = Query(10, ge=1, le=MAX_PAGE),
                         owner: str = Depends(caller)) -> dict[str, Any]:
        job_or_404(job_id, owner)
        return page([public(c) for c in store.checkpoints(job_id) if Path(c["lessonlib_path"]).is_dir()], after, limit)

    # models and chat -----------------------------------------------------------------------------
    def adapter_for(name: str, owner: str) -> str | None:
        """The adapter folder of a tuned or checkpoint model (None for a base model); 404 when unknown (or another's)."""
        if name in BASE_MODELS:
            return None
        for job in store.jobs(owner, status=("succeeded", "running", "cancelled", "failed")):
            if job.get("fine_tuned_model") == name:
                return str(store.state / "runs" / job["id"])
            for checkpoint in store.checkpoints(job["id"]):
                if checkpoint["fine_tuned_model_checkpoint"] == name and Path(checkpoint["lessonlib_path"]).is_dir():
                    return checkpoint["lessonlib_path"]
        raise ApiError(404, f"The model `{name}` does not exist or you do not have access to it.", param="model", code="model_not_found")

    @api.get("/models")
    def list_models(owner: str = Depends(caller)) -> dict[str, Any]:
        base = [{"id": m, "object": "model", "created": 0, "owned_by": f"lessonlib ({LOCAL_MODEL})"} for m in BASE_MODELS]
        tuned = [{"id": j["fine_tuned_model"], "object": "model", "created": j["finished_at"], "owned_by": "lessonlib"}
                 for j in store.jobs(owner, status=("succeeded",))]
        return {"object": "list", "data": base + tuned}

    def complete(body: ChatRequest, name: str, owner: str) -> dict[str, Any] | StreamingResponse:
        """A chat completion by the model ``name`` (base, tuned or checkpoint), streamed when asked."""
        adapter = adapter_for(name, owner)
        limit = body.max_new_tokens()
        clean = body.conversation()
        options = {"adapter": adapter, "max_tokens": limit, "temperature": body.temperature or 0.0, "seed": body.seed or 0}
        stops = body.stops()
        made = {"id": new_id("chatcmpl"), "created": int(time.time()), "model": name, "system_fingerprint": f"lessonlib-{LOCAL_MODEL}"}
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            count = (lambda reply: chatter.tokens(clean, reply)) if usage else None
            return StreamingResponse(_sse(chatter.stream(clean, **options), made, stops, count), media_type="text/event-stream")
        reply, prompt, completion = chatter.reply(clean, **options)
        for stop in stops:
            reply = reply.split(stop)[0]
        return {**made, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": None},
                             "finish_reason": "length" if completion >= limit else "stop", "logprobs": None}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}

    @api.post("/chat/completions", response_model=None)
    def chat(body: ChatRequest, owner: str = Depends(caller)) -> dict[str, Any] | StreamingResponse:
        return complete(body, body.model, owner)

    @app.post("/v1/lessonlib/generate")
    def generate(body: GenerateRequest, owner: str = Depends(caller)) -> dict[str, Any]:
        """Not OpenAI's: ``lessonlib.models`` generation for a notebook kernel on this machine (adapters are local folders)."""
        from ..errors import LessonError, MemoryShortfall

        if keys is not None:
            raise ApiError(403, "this service serves a class: use the chat completions API", code="not_for_a_class")
        try:
            replies, seconds = chatter.generate(body.kind, body.conversations, **body.options())
        except MemoryShortfall as exc:
            raise ApiError(507, exc.message, kind="server_error", code="memory_shortfall", fix=exc.fix) from None
        except LessonError as exc:
            raise ApiError(400, exc.message, code="lesson_error", fix=exc.fix) from None
        return {"replies": replies, "seconds": seconds}

    @app.post("/v1/lessonlib/release")
    def release(owner: str = Depends(caller)) -> dict[str, Any]:
        """Not OpenAI's: give back the model held for replies, so that a notebook's own training has the room."""
        if keys is not None:
            raise ApiError(403, "this service serves a class: its model stays", code="not_for_a_class")
        held = chatter.loaded()
        chatter.release()
        return {"released": held}

    @app.post("/v1/lessonlib/plot")
    def plot(body: PlotRequest, owner: str = Depends(caller)) -> Response:
        """Not OpenAI's: draw a :class:`lessonlib.plots.Chart` (its kind and data) as a PNG image, so
        that the notebook kernels, which all stay open on Binder, import no matplotlib."""
        from .. import plots

        kind, data = body.kind, body.data
        if kind not in plots.DRAWERS:
            raise ApiError(400, f"kind must be one of {', '.join(plots.DRAWERS)}, with its data", param="kind")
        try:
            image = plots.figure_png(plots.draw(kind, data))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ApiError(400, f"cannot draw this {kind} chart: {exc!r}", param="data") from None
        return Response(image, media_type="image/png")

    app.include_router(api, prefix="/v1")
    app.include_router(api, prefix="/openai", dependencies=[Depends(azure.api_version)])
    app.include_router(azure.router(store, caller, complete, adapter_for))
    return app


def surface(request: Request) -> str:
    """Which client called: "azure" (paths under ``/openai``) or "openai" (``/v1``)."""
    return "azure" if request.url.path.startswith("/openai/") else "openai"


def _sse(pieces: Iterator[str], made: dict[str, Any], stops: list[str], count: Any = None) -> Iterator[str]:
    """A streamed reply as server-sent events of ``chat.completion.chunk`` objects, as the SDK reads them."""
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {**made, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    text = ""
    for piece in pieces:
        before, text = len(text), text + piece
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        if cut >= 0:
            if cut > before:
                yield chunk({"content": text[before:cut]})
            text = text[:cut]
            break
        yield chunk({"content": piece})
    yield chunk({}, "stop")
    if count is not None:  # stream_options.include_usage: a last chunk with the counts and no choices
        prompt, completion = count(text)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        yield f"data: {json.dumps({**made, 'object': 'chat.completion.chunk', 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def stop_when_gone(pid: int, *, every: float = 2.0) -> threading.Thread:
    """End this process as SIGTERM does (uvicorn shuts down cleanly, a running job's worker is
    ended) once process ``pid`` has ended: a service that a notebook kernel started goes with the
    Jupyter server that ran the kernel, rather than hold its port and memory for nobody."""
    import signal

    import psutil

    def started(process_id: int) -> float | None:
        try:
            process = psutil.Process(process_id)
            return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
        except psutil.Error:
            return None

    first = started(pid)

    def watch() -> None:
        while first is not None and started(pid) == first:  # the same process, not a new one with its number
            time.sleep(every)
        print(f"process {pid} has ended: the service stops", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="lessonlib-stop-with", daemon=True)
    thread.start()
    return thread


def serve(host: str = "127.0.0.1", port: int | None = None, state: str | Path | None = None, keys: str | Path | None = None,
          stop_with: int | None = None) -> None:
    """Run the service in the foreground until Ctrl-C or SIGTERM (``lessonlib serve``).

    ``keys``: a file of ``name:key`` lines; then only those keys get in and each sees only its own
    files, jobs and models (one service for a class). Without it the service only listens on loopback.
    ``stop_with``: a process id; the service ends when that process does (:func:`stop_when_gone`).
    """
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1") and keys is None:
        from ..errors import LessonError

        raise LessonError(_("the service would be reachable from other machines on {host}, with no keys to check").format(host=host),
                          fix=_("bind to 127.0.0.1 (the default), or give each learner a key: --keys FILE with NAME:KEY lines"))
    from . import default_port, default_state

    port = port or default_port()
    state = Path(state) if state else default_state()
    os.environ["LESSONLIB_GENERATE"] = "here"  # the service makes the replies kernels ask it for: never asks itself
    on_start: list[Callable[[], Any]] = [lambda: print("ready", flush=True)]
    if stop_with is not None:
        on_start.append(lambda: stop_when_gone(stop_with))
    app = create_app(state, read_keys(keys) if keys else None, on_start)
    print(f"lessonlib service: http://{host}:{port}/v1 (state in {state}); Ctrl-C stops it", flush=True)
    pid_file = state / "service.pid"
    pid_file.write_text(str(os.getpid()))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
