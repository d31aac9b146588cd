"""A loopback HTTP server speaking the OpenAI (and Azure OpenAI) fine-tuning API, for tests.

Only 127.0.0.1, only what the companion uses: files, fine-tuning jobs (create, retrieve, events,
checkpoints, cancel) and chat completions, under ``/v1`` (OpenAI) or ``/openai`` (Azure, with
``/openai/deployments/NAME/chat/completions``). Jobs advance one status per retrieval
(queued -> running -> succeeded, or failed when ``job_outcome = "failed"``). ``fail_next`` holds
scripted failures (status, body) served before normal answers; ``refuse_training = True`` answers every
job creation as OpenAI has answered most organisations since 2026 (:data:`TRAINING_NOT_AVAILABLE`, a 403);
every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import Self

#: OpenAI's answer to a job from an organisation it no longer trains for (its deprecations page, "Update to OpenAI's
#: self-serve fine-tuning"): HTTP 403 with this body.
TRAINING_NOT_AVAILABLE = {"error": {
    "message": "OpenAI is winding down the fine-tuning platform and your organization is no longer able to create new fine-tuning "
               "training jobs. Learn more https://developers.openai.com/api/docs/deprecations",
    "type": "invalid_request_error", "param": None, "code": "training_not_available"}}


class FakeOpenAI:
    def __init__(self) -> None:
        self.refuse_training = False
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, dict[str, Any]]] = []
        self.job_outcome = "succeeded"
        self.valid_keys = {"sk-" + "test-good-key-000000000000", "azure-good-key-0000000000", "arm-token-good-000000000000"}  # split: not key-shaped in git
        self.deployments: dict[str, dict[str, Any]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after-ms", "10")
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                fake.requests.append({"method": method, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw[:2000]})
                key = self.headers.get("api-key") or (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                if fake.fail_next:
                    status, body = fake.fail_next.pop(0)
                    return self._send(status, body)
                if key not in fake.valid_keys:
                    return self._send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}})
                route = re.sub(r"^/(v1|openai)", "", path)
                status, body = fake.route(method, route, raw, self.headers)
                self._send(status, body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    def route(self, method: str, route: str, raw: bytes, headers: Any) -> tuple[int, dict[str, Any]]:
        now = int(time.time())
        if method == "POST" and route == "/files":
            name = re.search(rb'filename="([^"]+)"', raw)
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(raw), "created_at": now,
                                   "filename": name.group(1).decode() if name else "upload.jsonl", "purpose": "fine-tune", "status": "processed"}
            return 200, self.files[file_id]
        if method == "POST" and route == "/fine_tuning/jobs":
            if self.refuse_training:
                return 403, TRAINING_NOT_AVAILABLE
            body = json.loads(raw or b"{}")
            if body.get("training_file") not in self.files:
                return 400, {"error": {"message": f"invalid training_file: {body.get('training_file')}", "param": "training_file"}}
            job_id = f"ftjob-{len(self.jobs) + 1}"
            self.jobs[job_id] = {
                "id": job_id, "object": "fine_tuning.job", "model": body["model"], "created_at": now, "finished_at": None,
                "fine_tuned_model": None, "organization_id": "org-test", "result_files": [], "seed": body.get("seed", 0),
                "status": "queued", "trained_tokens": None, "training_file": body["training_file"],
                "validation_file": body.get("validation_file"), "hyperparameters": {"n_epochs": "auto"}, "error": None,
                "_suffix": body.get("suffix"), "_body": body,
            }
            return 200, self._public(self.jobs[job_id])
        match = re.fullmatch(r"/fine_tuning/jobs/([\w-]+)(/events|/checkpoints|/cancel)?", route)
        if match:
            job = self.jobs.get(match.group(1))
            if job is None:
                return 404, {"error": {"message": f"No fine-tuning job found with id {match.group(1)}"}}
            action = match.group(2)
            if action is None and method == "GET":
                self._advance(job)
                return 200, self._public(job)
            if action == "/events":
                return 200, {"object": "list", "has_more": False, "data": [
                    {"id": f"ev-{i}", "object": "fine_tuning.job.event", "created_at": job["created_at"] + i, "level": "info", "message": m}
                    for i, m in enumerate(self._messages(job))]}
            if action == "/checkpoints":
                done = job["status"] == "succeeded"
                return 200, {"object": "list", "has_more": False, "first_id": None, "last_id": None, "data": [
                    {"id": "ftckpt-1", "object": "fine_tuning.job.checkpoint", "created_at": now, "fine_tuning_job_id": job["id"],
                     "fine_tuned_model_checkpoint": f"{self._model_name(job)}:ckpt-step-10", "step_number": 10,
                     "metrics": {"step": 10, "train_loss": 0.42, "valid_loss": 0.5}}] if done else []}
            if action == "/cancel" and method == "POST":
                job["status"] = "cancelled"
                return 200, self._public(job)
        arm = re.fullmatch(r"/subscriptions/[\w-]+/resourceGroups/[\w-]+/providers/Microsoft.CognitiveServices/accounts/[\w-]+/deployments/([\w.-]+)", route)
        if arm:
            name = arm.group(1)
            if method == "PUT":
                body = json.loads(raw or b"{}")
                self.deployments[name] = {"name": name, "properties": {**body.get("properties", {}), "provisioningState": "Creating"}, "sku": body.get("sku")}
                return 201, self.deployments[name]
            if method == "DELETE":
                return (200, {}) if self.deployments.pop(name, None) else (404, {"error": {"message": f"deployment {name} not found"}})
        chat = re.fullmatch(r"(?:/deployments/([\w.-]+))?/chat/completions", route)
        if chat and method == "POST":
            body = json.loads(raw or b"{}")
            model = chat.group(1) or body.get("model")
            tuned = model.startswith("ft:") or (chat.group(1) is not None and "ft" in model)
            content = '["flour", "eggs", "milk"]' if tuned else "Here are the ingredients: flour, eggs and milk."
            return 200, {"id": "chatcmpl-1", "object": "chat.completion", "created": now, "model": model,
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}}
        return 404, {"error": {"message": f"no route {method} {route}"}}

    def _model_name(self, job: dict[str, Any]) -> str:
        return f"ft:{job['model']}:org-test:{job.get('_suffix') or 'x'}:abc123"

    def _advance(self, job: dict[str, Any]) -> None:
        order = ["queued", "running", self.job_outcome]
        if job["status"] in order[:-1]:
            job["status"] = order[order.index(job["status"]) + 1]
            if job["status"] == "succeeded":
                job["fine_tuned_model"], job["finished_at"], job["trained_tokens"] = self._model_name(job), int(time.time()), 12345
            if job["status"] == "failed":
                job["error"] = {"code": "invalid_training_file", "message": "The training file has 3 examples; at least 10 are required.", "param": "training_file"}

    def _messages(self, job: dict[str, Any]) -> list[str]:
        messages = ["Validating training file", "Files validated, moving job to queued state"]
        if job["status"] in {"running", "succeeded"}:
            messages += ["Fine-tuning job started", "Step 10/30: training loss=0.42"]
        if job["status"] == "succeeded":
            messages += ["New fine-tuned model created", "The job has successfully completed"]
        if job["status"] == "failed":
            messages += ["The job failed"]
        return messages

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}
