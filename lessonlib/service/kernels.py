"""lessonlib's own routes, for the notebook kernels of this machine (not OpenAI's): replies from the one model the
service holds, its memory given back before a kernel trains, charts drawn as PNG, and which lessonlib runs here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from .. import local_service
from .context import Service, caller, service
from .errors import ApiError
from .requests import GenerateRequest, PlotRequest

router = APIRouter(prefix="/v1/lessonlib")


@router.post("/generate")
def generate(body: GenerateRequest, owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    """``lessonlib.models`` generation for a notebook kernel on this machine (adapters are local folders)."""
    from ..errors import LessonError, MemoryShortfall

    if svc.keys is not None:
        raise ApiError(403, "this service serves a class: use the chat completions API", code="not_for_a_class")
    try:
        replies, seconds = svc.chatter.generate(body.kind, body.conversations, **body.options())
    except MemoryShortfall as exc:
        raise ApiError(507, exc.message, kind="server_error", code="memory_shortfall", fix=exc.fix) from None
    except LessonError as exc:
        raise ApiError(400, exc.message, code="lesson_error", fix=exc.fix) from None
    return {"replies": replies, "seconds": seconds}


@router.get("/about")
def about(owner: str = Depends(caller)) -> dict[str, str]:
    """Which lessonlib runs here (version, package folder), so that a kernel never talks to the service of
    another checkout or version (:func:`lessonlib.local_service.start`)."""
    return local_service.about()


@router.post("/release")
def release(owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    """Give back the model held for replies, so that a notebook's own training has the room."""
    if svc.keys is not None:
        raise ApiError(403, "this service serves a class: its model stays", code="not_for_a_class")
    held = svc.chatter.loaded()
    svc.chatter.release()
    return {"released": held}


@router.post("/plot")
def plot(body: PlotRequest, owner: str = Depends(caller)) -> Response:
    """Draw a :class:`lessonlib.plots.Chart` (its kind and data) as a PNG image, so that the notebook kernels,
    which all stay open on Binder, import no matplotlib."""
    from .. import plots

    kind, data = body.kind, body.data
    if kind not in plots.DRAWERS:
        raise ApiError(400, f"kind must be one of {', '.join(plots.DRAWERS)}, with its data", param="kind")
    try:
        image = plots.figure_png(plots.draw(kind, data))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ApiError(400, f"cannot draw this {kind} chart: {exc!r}", param="data") from None
    return Response(image, media_type="image/png")
