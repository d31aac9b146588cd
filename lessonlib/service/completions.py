"""``/models`` and ``/chat/completions``: the base models (each played by the local model), the tuned and checkpoint
models of the caller's jobs, and chat completions by any of them, streamed when asked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from .context import BASE_MODELS, Service, caller, service
from .errors import ApiError
from .requests import ChatRequest
from .store import new_id
from .worker import LOCAL_MODEL

router = APIRouter()


def adapter_for(svc: Service, name: str, owner: str) -> str | None:
    """The adapter folder of a tuned or checkpoint model (None for a base model); 404 when unknown (or another's)."""
    if name in BASE_MODELS:
        return None
    for job in svc.store.jobs(owner, status=("succeeded", "running", "cancelled", "failed")):
        if job.get("fine_tuned_model") == name:
            return str(svc.store.state / "runs" / job["id"])
        for checkpoint in svc.store.checkpoints(job["id"]):
            if checkpoint["fine_tuned_model_checkpoint"] == name and Path(checkpoint["lessonlib_path"]).is_dir():
                return checkpoint["lessonlib_path"]
    raise ApiError(404, f"The model `{name}` does not exist or you do not have access to it.", param="model", code="model_not_found")


@router.get("/models")
def list_models(owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    base = [{"id": m, "object": "model", "created": 0, "owned_by": f"lessonlib ({LOCAL_MODEL})"} for m in BASE_MODELS]
    tuned = [{"id": j["fine_tuned_model"], "object": "model", "created": j["finished_at"], "owned_by": "lessonlib"}
             for j in svc.store.jobs(owner, status=("succeeded",))]
    return {"object": "list", "data": base + tuned}


def complete(svc: Service, body: ChatRequest, name: str, owner: str) -> dict[str, Any] | StreamingResponse:
    """A chat completion by the model ``name`` (base, tuned or checkpoint), streamed when asked."""
    chatter = svc.chatter
    adapter = adapter_for(svc, name, owner)
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


@router.post("/chat/completions", response_model=None)
def chat(body: ChatRequest, owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any] | StreamingResponse:
    return complete(svc, body, body.model, owner)


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
