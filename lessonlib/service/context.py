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
#: Jobs that may wait or run at once for one learner on loopback (``LESSONLIB_SERVICE_MAX_JOBS``).
MAX_JOBS = 8
#: Jobs that each learner of a class (``--keys``) may have waiting or running at once
#: (``LESSONLIB_SERVICE_MAX_JOBS_PER_LEARNER``); one more gets 429 with Retry-After.
MAX_JOBS_PER_LEARNER = 3
#: The statuses of a job that holds a place in the queue.
ACTIVE = ("validating_files", "queued", "running")
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
    max_jobs: int | None = None  # jobs that may wait or run at once, all learners together (None: see total_limit)
    max_per_learner: int = MAX_JOBS_PER_LEARNER  # jobs one learner may have waiting or running at once (with keys)

    def total_limit(self) -> int:
        """The class's limit: as set, else :data:`MAX_JOBS` for one learner, each learner's limit times the learners with keys."""
        if self.max_jobs is not None:
            return self.max_jobs
        return MAX_JOBS if self.keys is None else self.max_per_learner * len(set(self.keys.values()))

    def check_room(self, owner: str) -> None:
        """Raise a 429 that says which limit is reached, when ``owner`` may not create one more job now."""
        if self.keys is not None:
            mine = len(self.store.jobs(owner, status=ACTIVE))
            if mine >= self.max_per_learner:
                raise ApiError(429, f"You already have {mine} job{'s' if mine != 1 else ''} waiting or running, the most each learner may have here; "
                               "try again when one of yours has ended", kind="rate_limit_exceeded", code="rate_limit_exceeded")
        total = self.total_limit()
        if len(self.store.jobs(status=ACTIVE)) >= total:
            whose = "the class's" if self.keys is not None else "this service's"
            raise ApiError(429, f"{total} jobs are already waiting or running here ({whose} limit); try again when one has ended",
                           kind="rate_limit_exceeded", code="rate_limit_exceeded")


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
