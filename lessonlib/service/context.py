"""What every route of the service shares: the :class:`Service` on ``app.state``, the caller's identity, the base
models, and the API's view of a stored object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from .chat import Chatter
from .errors import ApiError
from .scheduler import Scheduler
from .store import Store

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


@dataclass
class Service:
    """The service's state, one per application (``app.state.service``)."""

    store: Store  # SQLite records and files under the state folder
    scheduler: Scheduler  # the job queue and its worker
    chatter: Chatter  # the reply worker's handle
    keys: dict[str, str] | None  # {key: learner's name}; None: one learner on loopback, any key accepted
    max_jobs: int  # jobs that may wait or run at once


def service(request: Request) -> Service:
    """The :class:`Service` of the application that received ``request`` (a FastAPI dependency)."""
    return request.app.state.service


def caller(request: Request) -> str:
    """The owner of a request: "" without keys; else the name of its key (``Authorization: Bearer`` or ``api-key``)."""
    keys = service(request).keys
    if keys is None:
        return ""
    given = request.headers.get("api-key") or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    name = keys.get(given)
    if name is None:  # the key itself is never repeated
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
    return name


def public(body: dict[str, Any]) -> dict[str, Any]:
    """An object as the API shows it: the service's own bookkeeping left out."""
    return {k: v for k, v in body.items() if not k.startswith(PRIVATE)}


def surface(request: Request) -> str:
    """Which client called: "azure" (paths under ``/openai``) or "openai" (``/v1``)."""
    return "azure" if request.url.path.startswith("/openai/") else "openai"
