"""Errors the local service answers with, shaped as OpenAI's: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """An error the API returns as OpenAI does."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, fix: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code, self.fix = status, message, kind, param, code, fix

    def response(self) -> JSONResponse:
        error = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": {**error, "fix": self.fix} if self.fix else error}, status_code=self.status)
