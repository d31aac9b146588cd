"""``/files``: upload a JSONL file for fine-tuning, list, retrieve, read back and delete it."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import PlainTextResponse

from .context import MAX_UPLOAD, Service, caller, service
from .errors import ApiError
from .store import new_id

router = APIRouter()


def file_or_404(svc: Service, file_id: str, owner: str) -> dict[str, Any]:
    found = svc.store.file(file_id, owner)
    if found is None:
        raise ApiError(404, f"No such File object: {file_id}", param="id", code="file_not_found")
    return found


@router.post("/files")
async def upload(file: UploadFile = File(...), purpose: str = Form(...), owner: str = Depends(caller),
                 svc: Service = Depends(service)) -> dict[str, Any]:
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
    svc.store.file_path(body["id"]).write_bytes(content)
    return svc.store.add_file(body, owner)


@router.get("/files")
def list_files(owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    return {"object": "list", "data": svc.store.files(owner), "has_more": False}


@router.get("/files/{file_id}")
def retrieve_file(file_id: str, owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    return file_or_404(svc, file_id, owner)


@router.get("/files/{file_id}/content")
def file_content(file_id: str, owner: str = Depends(caller), svc: Service = Depends(service)) -> PlainTextResponse:
    file_or_404(svc, file_id, owner)
    return PlainTextResponse(svc.store.file_path(file_id).read_text(encoding="utf-8"))


@router.delete("/files/{file_id}")
def delete_file(file_id: str, owner: str = Depends(caller), svc: Service = Depends(service)) -> dict[str, Any]:
    file_or_404(svc, file_id, owner)
    svc.store.delete_file(file_id, owner)
    svc.store.file_path(file_id).unlink(missing_ok=True)
    return {"id": file_id, "object": "file", "deleted": True}
