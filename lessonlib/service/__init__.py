"""A local fine-tuning service that speaks the OpenAI API: the tutorials' SDK code runs for real, with no key.

``lessonlib serve`` runs it in the foreground; from a notebook, :func:`start` starts it in the
background (or finds it already running) and :func:`client` returns an ``openai.OpenAI`` client
pointed at it. The learner's code is the cookbook's code; only the base URL differs::

    from lessonlib import service
    client = service.client()                    # starts the service once
    file = client.files.create(file=open("data/recipes/train.jsonl", "rb"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=file.id, model="gpt-4o-mini-2024-07-18")

The ``AzureOpenAI`` client works against the same service (``azure_endpoint=service.endpoint()``),
and so do Azure's deployments (``AZURE_MANAGEMENT_ENDPOINT=service.endpoint()``).

The port and the state folder default to ``LESSONLIB_SERVICE_PORT`` (8765) and
``LESSONLIB_SERVICE_STATE`` (under the lessonlib cache); :func:`stop` ends a service this machine
started (its process id is in ``STATE/service.pid`` while it runs).

The functions a kernel calls (:func:`start`, :func:`stop`, :func:`client`, :func:`endpoint`,
:func:`base_url`, :func:`running`, :func:`release_model`) live in :mod:`lessonlib.local_service`, the
one client of the service, and are re-exported here.

Modules: :mod:`~lessonlib.service.app` (the FastAPI application), one router a resource
(:mod:`~lessonlib.service.files`, :mod:`~lessonlib.service.jobs`, :mod:`~lessonlib.service.completions`,
:mod:`~lessonlib.service.azure`, :mod:`~lessonlib.service.kernels`) over what they share
(:mod:`~lessonlib.service.context`), :mod:`~lessonlib.service.requests` (request bodies),
:mod:`~lessonlib.service.store` (SQLite records), :mod:`~lessonlib.service.scheduler` (the job queue) and
:mod:`~lessonlib.service.queue` (its fair order), :mod:`~lessonlib.service.roster` (the instructor's view),
:mod:`~lessonlib.service.worker` (one job in its own process), :mod:`~lessonlib.service.chat` (the reply worker),
:mod:`~lessonlib.service.run` (``lessonlib serve``: keys, uvicorn, the end with the Jupyter server).
Importing this package imports none of them.
"""

from __future__ import annotations

from ..local_service import base_url, client, default_port, default_state, endpoint, release_model, running, start, stop

__all__ = ["base_url", "client", "default_port", "default_state", "endpoint", "release_model", "running", "start", "stop"]
