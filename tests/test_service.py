"""The local fine-tuning service, for real: a uvicorn server on loopback, the real ``openai`` SDK, real training jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jupyter_helpers import free_port

from lessonlib import corpora, service
from lessonlib.corpora import recipes
from lessonlib.errors import LessonError

pytestmark = pytest.mark.usefixtures("model_dir")


class Service:
    """``lessonlib serve`` in its own process group (so a test can kill it and its worker at once)."""

    def __init__(self, state: Path, *extra: str, **env: str):
        self.state, self.port, self.process, self.extra, self.env = state, free_port(), None, extra, env

    def start(self) -> Service:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LESSONLIB_OFFLINE": "1", **self.env}
        self.process = subprocess.Popen([sys.executable, "-m", "lessonlib", "serve", "--port", str(self.port), "--state", str(self.state),
                                         *self.extra],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while not service.running(self.port):
            if self.process.poll() is not None:
                pytest.fail(self.process.stderr.read().decode())
            assert time.monotonic() < deadline, "the service did not answer within 60 s"
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the service and its training worker, at once
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)

    def client(self, key: str = "local"):
        from openai import OpenAI

        return OpenAI(base_url=service.base_url(self.port), api_key=key, max_retries=0)


def _wait(client, job_id: str, until=lambda job: job.status in ("succeeded", "failed", "cancelled"), timeout: float = 300):
    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.5)


def _data(folder: Path, train: int, valid: int = 0) -> tuple[Path, Path]:
    lines = corpora.split_path("recipes", "train").read_text(encoding="utf-8").splitlines()
    (folder / "train.jsonl").write_text("\n".join(lines[:train]) + "\n", encoding="utf-8")
    (folder / "valid.jsonl").write_text("\n".join(lines[train:train + valid]) + "\n", encoding="utf-8")
    return folder / "train.jsonl", folder / "valid.jsonl"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("service")).start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def finished(running, tmp_path_factory):
    """The cookbook's steps, unchanged SDK code: upload, create, follow to succeeded."""
    train, valid = _data(tmp_path_factory.mktemp("data"), 16, 4)
    client = running.client()
    training = client.files.create(file=Path(train), purpose="fine-tune")
    validation = client.files.create(file=Path(valid), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=training.id, validation_file=validation.id, model="gpt-4o-mini-2024-07-18",
                                         suffix="recipes", hyperparameters={"n_epochs": 1})
    assert job.status == "validating_files" and job.id.startswith("ftjob-")
    return client, _wait(client, job.id), training


def test_a_job_runs_to_a_tuned_model_that_answers(finished):
    client, job, training = finished
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:lessonlib:recipes:{job.id[-8:]}"
    assert job.trained_tokens > 0 and job.finished_at >= job.created_at and job.hyperparameters.n_epochs == 1
    assert job.hyperparameters.batch_size == 2  # "auto", sized for the machine
    assert client.files.retrieve(training.id).filename == "train.jsonl"
    assert any(m.id == job.fine_tuned_model for m in client.models.list().data)
    metrics = client.files.content(job.result_files[0]).text.splitlines()
    assert metrics[0] == "step,train_loss,valid_loss" and len(metrics) == 1 + 8
    reply = client.chat.completions.create(model=job.fine_tuned_model, temperature=0, max_tokens=30, messages=[
        {"role": "system", "content": recipes.SYSTEM_PROMPT},
        {"role": "user", "content": "Recipe: Toast\n\n- 2 slices bread\n- 1 tbsp butter"}])
    assert reply.choices[0].message.content.startswith("[") and reply.usage.prompt_tokens > 10
    base = client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
    assert base.choices[0].message.content and base.usage.completion_tokens <= 6


def test_events_read_like_openais_and_page_newest_first(finished):
    client, job, _ = finished
    events = client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=100).data
    messages = [e.message for e in reversed(events)]
    assert messages[0] == f"Created fine-tuning job: {job.id}" and messages[1].startswith("Validating training file: file-")
    assert any("played by the local model" in m for m in messages[:6])
    assert "Step 8/8: training loss=" in " ".join(messages) and messages[-1] == "The job has successfully completed"
    assert messages[-2] == f"New fine-tuned model created: {job.fine_tuned_model}"
    assert any(e.type == "metrics" and e.data["step"] == 3 for e in events)
    first, second = (client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=2, after=after).data
                     for after in (None, events[1].id))
    assert [e.id for e in first] == [e.id for e in events[:2]] and [e.id for e in second] == [e.id for e in events[2:4]]


def test_checkpoints_are_models_too(finished):
    client, job, _ = finished
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [8]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-8"
    assert checkpoints[0].metrics.valid_loss is not None
    reply = client.chat.completions.create(model=checkpoints[0].fine_tuned_model_checkpoint, max_tokens=5,
                                           messages=[{"role": "user", "content": "Recipe: Tea\n\n- 1 tea bag"}])
    assert reply.choices[0].message.content


def test_bad_input_gets_openai_shaped_errors(running, tmp_path):
    import openai

    client = running.client()
    with pytest.raises(openai.BadRequestError, match="notes.jsonl is not valid JSONL: line 2: Expecting value"):
        client.files.create(file=("notes.jsonl", b'{"messages": []}\nthis is not json\n'), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("a.jsonl", b'{"messages": []}\n'), purpose="assistants")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-nothere")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="ft:gpt-4o-mini:nobody::x", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="not available for fine-tuning"):
        client.fine_tuning.jobs.create(training_file="file-x", model="gpt-9")
    # a file whose examples have errors: the job fails at validating_files, naming the line
    broken = client.files.create(file=("broken.jsonl", b'{"messages": [{"role": "user", "content": "hi"}]}\n'), purpose="fine-tune")
    job = _wait(client, client.fine_tuning.jobs.create(training_file=broken.id, model="gpt-3.5-turbo").id)
    assert job.status == "failed" and job.error.param == "training_file" and "line 1" in job.error.message
    assert "Traceback" not in job.error.message


CHAT = "/v1/chat/completions"
JOBS = "/v1/fine_tuning/jobs"
HI = [{"role": "user", "content": "hi"}]
#: Requests no client should send, each with what makes it wrong: every one gets a 4xx in OpenAI's error shape.
MALFORMED = [
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": [{"role": "alien", "content": 1}]}}, "unknown role, numeric content"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": HI, "max_tokens": -5}}, "negative max_tokens"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": HI, "max_completion_tokens": 10**9}}, "huge max_completion_tokens"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": HI, "temperature": "hot"}}, "temperature as a word"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": HI, "temperature": 7}}, "temperature out of range"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": HI, "seed": "abc"}}, "seed as a word"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": HI, "stop": 5}}, "stop as a number"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": HI, "stream_options": "yes"}}, "stream_options as text"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": "hi"}}, "messages as text"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": []}}, "no messages"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": [1, 2]}}, "messages as numbers"),
    ("POST", CHAT, {"json": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}},
     "a content part that is not text"),
    ("POST", CHAT, {"json": {"model": 5, "messages": HI}}, "model as a number"),
    ("POST", CHAT, {"json": [1, 2]}, "a list for a body"),
    ("POST", CHAT, {"content": b"{not json", "headers": {"content-type": "application/json"}}, "a body that is not JSON"),
    ("POST", CHAT, {}, "no body"),
    ("GET", JOBS + "?limit=-1", {}, "negative limit"),
    ("GET", JOBS + "?limit=abc", {}, "limit as a word"),
    ("GET", JOBS + "?limit=100000", {}, "limit over 10,000"),
    ("GET", JOBS + "/ftjob-nothere/events?limit=0", {}, "zero limit on events"),
    ("GET", JOBS + "/ftjob-nothere/checkpoints?limit=-3", {}, "negative limit on checkpoints"),
    ("POST", JOBS, {"json": {}}, "a job without a model or a file"),
    ("POST", JOBS, {"json": {"model": "gpt-4o-mini-2024-07-18", "training_file": 5}}, "a file id as a number"),
    ("POST", JOBS, {"json": {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-x", "hyperparameters": {"n_epochs": -1}}},
     "negative epochs"),
    ("POST", JOBS, {"json": {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-x", "hyperparameters": "many"}},
     "hyperparameters as text"),
    ("POST", JOBS, {"json": {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-x", "method": "supervised"}},
     "method as text"),
    ("POST", JOBS, {"json": {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-x",
                             "method": {"type": "dpo"}}}, "a method the service does not have"),
    ("POST", JOBS, {"json": {"model": "gpt-4o-mini-2024-07-18", "training_file": "file-x", "suffix": 5}}, "suffix as a number"),
    ("POST", JOBS + "/ftjob-nothere/cancel", {}, "cancel a job that is not there"),
    ("POST", "/v1/files", {"data": {"purpose": "fine-tune"}}, "an upload without its file"),
    ("POST", "/v1/files", {"content": b"--x\r\ngarbage", "headers": {"content-type": "multipart/form-data; boundary=x"}},
     "broken multipart"),
    ("POST", "/v1/files", {"json": {"purpose": "fine-tune"}}, "an upload as JSON"),
    ("POST", "/v1/lessonlib/plot", {"json": {"kind": 5, "data": {}}}, "a chart of no kind"),
    ("POST", "/v1/lessonlib/generate", {"json": {"kind": "one", "conversations": "hi"}}, "conversations as text"),
    ("POST", "/v1/lessonlib/generate", {"json": {"kind": "one", "conversations": [HI], "max_new_tokens": 0}}, "zero new tokens"),
    ("GET", "/v1/no/such/route", {}, "a path the API does not have"),
    ("DELETE", CHAT, {}, "a method the path does not take"),
    ("POST", "/openai/deployments/recipes-ft/chat/completions?api-version=2024-10-21",
     {"json": {"messages": [{"role": "user", "content": None, "name": 3}], "temperature": "x"}}, "Azure: a bad temperature"),
]


def test_every_malformed_request_gets_a_4xx_shaped_like_openais(running):
    """No malformed request reaches a handler that fails (a 5xx): each is refused with a 4xx and OpenAI's error object."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{running.port}", timeout=30) as http:
        for method, path, options, what in MALFORMED:
            answer = http.request(method, path, **options)
            assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text[:300])
            error = answer.json()["error"]
            assert {"message", "type", "param", "code"} <= set(error) and error["message"], (what, error)
            assert "Traceback" not in error["message"], what


def test_cancel_stops_the_job(running, tmp_path):
    client = running.client()
    train, _ = _data(tmp_path, 40)
    uploaded = client.files.create(file=Path(train), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini", hyperparameters={"n_epochs": 3})
    _wait(client, job.id, until=lambda j: any(e.message.startswith("Step 1/") for e in
                                              client.fine_tuning.jobs.list_events(fine_tuning_job_id=j.id, limit=5).data))
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    time.sleep(1)
    after = client.fine_tuning.jobs.retrieve(job.id)
    assert after.status == "cancelled" and after.fine_tuned_model is None
    steps = [e for e in client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=100).data if e.type == "metrics"]
    assert len(steps) < 60  # stopped long before its 60 steps


def test_a_killed_service_resumes_the_job_after_a_restart(tmp_path):
    """kill -9 of the service and its worker mid-job (a container restart); the same --state resumes it."""
    svc = Service(tmp_path / "state").start()
    try:
        client = svc.client()
        train, _ = _data(tmp_path, 8)
        uploaded = client.files.create(file=Path(train), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini", hyperparameters={"n_epochs": 2})
        _wait(client, job.id, until=lambda j: bool(client.fine_tuning.jobs.checkpoints.list(j.id).data))  # step 4 of 8 saved
        svc.kill()
        svc.start()
        client = svc.client()
        assert client.files.retrieve(uploaded.id).id == uploaded.id
        done = _wait(client, job.id)
        assert done.status == "succeeded", done.error
        messages = [e.message for e in client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=200).data]
        assert any("Resuming from checkpoint-4" in m for m in messages)
        assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id).data] == [8, 4]
    finally:
        svc.stop()


def test_the_service_refuses_to_listen_beyond_loopback_without_keys():
    from lessonlib.service.run import serve

    with pytest.raises(LessonError, match="reachable from other machines"):
        serve(host="0.0.0.0", port=free_port())


def test_streamed_replies_match_and_adapters_share_one_base_model(finished, running):
    import psutil

    client, job, _ = finished
    messages = [{"role": "system", "content": recipes.SYSTEM_PROMPT},
                {"role": "user", "content": "Recipe: Soup\n\n- 2 carrots\n- 1 onion\n- 1 l water"}]
    whole = client.chat.completions.create(model=job.fine_tuned_model, messages=messages, max_tokens=30)
    chunks = list(client.chat.completions.create(model=job.fine_tuned_model, messages=messages, max_tokens=30, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == whole.choices[0].message.content and len(chunks) > 3
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    stopped = client.chat.completions.create(model=job.fine_tuned_model, messages=messages, max_tokens=30, stop=[","])
    assert "," not in stopped.choices[0].message.content
    # tuned, checkpoint and base models: one base model in memory, adapters switched (a few MB each, not a model each)
    service_process = psutil.Process(running.process.pid)
    rss = lambda: sum(p.memory_info().rss for p in [service_process, *service_process.children(recursive=True)]) / 1e9
    before = rss()
    checkpoint = client.fine_tuning.jobs.checkpoints.list(job.id).data[0].fine_tuned_model_checkpoint
    for model in (checkpoint, "gpt-4o-mini", job.fine_tuned_model):
        assert client.chat.completions.create(model=model, messages=messages, max_tokens=8).choices[0].message.content
    assert rss() - before < 0.15, f"{before:.2f} -> {rss():.2f} GB"


def test_a_full_queue_answers_429_with_retry_after(tmp_path):
    import openai

    svc = Service(tmp_path / "state", LESSONLIB_SERVICE_MAX_JOBS="1").start()
    try:
        client = svc.client()
        train, _ = _data(tmp_path, 8)
        uploaded = client.files.create(file=Path(train), purpose="fine-tune")
        client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini")
        with pytest.raises(openai.RateLimitError) as info:
            client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini")
        assert info.value.response.headers["retry-after"] == "30" and info.value.body["code"] == "rate_limit_exceeded"
    finally:
        svc.kill()


def test_keys_let_only_their_owners_in_and_keep_each_ones_work_apart(tmp_path):
    """An instructor's service for a class: --keys FILE; a wrong key gets 401, another's file or job is not found."""
    import httpx
    import openai

    keys = tmp_path / "keys.txt"
    keys.write_text("# the class\nada:ada-key-0123456789\nbob:bob-key-0123456789\n", encoding="utf-8")
    svc = Service(tmp_path / "state", "--keys", str(keys), LESSONLIB_SERVICE_MAX_JOBS_PER_LEARNER="1").start()
    try:
        ada, bob = svc.client("ada-key-0123456789"), svc.client("bob-key-0123456789")
        with pytest.raises(openai.AuthenticationError) as info:
            svc.client("wrong-key-0123456789").files.list()
        assert "wrong-key" not in str(info.value)  # a key is never repeated back
        mine = ada.files.create(file=("a.jsonl", b'{"messages": [{"role": "user", "content": "hi"}]}\n'), purpose="fine-tune")
        assert [f.id for f in ada.files.list().data] == [mine.id] and bob.files.list().data == []
        with pytest.raises(openai.NotFoundError):
            bob.files.retrieve(mine.id)
        with pytest.raises(openai.BadRequestError, match="no such file"):
            bob.fine_tuning.jobs.create(training_file=mine.id, model="gpt-4o-mini")
        job = ada.fine_tuning.jobs.create(training_file=mine.id, model="gpt-4o-mini")
        with pytest.raises(openai.RateLimitError, match="You already have 1 job waiting or running, the most each learner"):
            ada.fine_tuning.jobs.create(training_file=mine.id, model="gpt-4o-mini")  # ada's own limit (1 here), not the class's
        with pytest.raises(openai.NotFoundError):
            bob.fine_tuning.jobs.retrieve(job.id)
        assert bob.fine_tuning.jobs.list().data == [] and ada.fine_tuning.jobs.list().data[0].id == job.id
        azure_style = httpx.get(service.base_url(svc.port) + "/files", headers={"api-key": "bob-key-0123456789"})
        assert azure_style.status_code == 200 and azure_style.json()["data"] == []
        local_only = httpx.post(service.base_url(svc.port) + "/lessonlib/generate", headers={"api-key": "bob-key-0123456789"},
                                json={"kind": "one", "conversations": [[{"role": "user", "content": "hi"}]]})
        assert local_only.status_code == 403  # a class's service: adapters are folders on the server, not for everyone
    finally:
        svc.kill()
    log = (tmp_path / "state" / "worker.log")
    assert "0123456789" not in (log.read_text() if log.exists() else "")


def test_a_bad_keys_file_is_named_with_its_line(tmp_path):
    from lessonlib.errors import LessonError
    from lessonlib.service.run import read_keys

    bad = tmp_path / "keys.txt"
    bad.write_text("ada:ada-key-0123456789\nbob short\n", encoding="utf-8")
    with pytest.raises(LessonError, match=r"keys.txt, line 2: expected NAME:KEY"):
        read_keys(bad)


def test_the_azure_tutorial_runs_on_the_service_and_a_tuned_model_answers_only_while_deployed(running, tmp_path, monkeypatch):
    """AzureOpenAI (api-version, api-key) for files, jobs and chat; Resource Manager's PUT/DELETE for the deployment."""
    import httpx
    import openai

    from lessonlib.cloud import azure, jobs

    endpoint = service.endpoint(running.port)
    for name, value in {"AZURE_OPENAI_ENDPOINT": endpoint, "AZURE_OPENAI_API_KEY": "local-azure-key",
                        "AZURE_MANAGEMENT_ENDPOINT": endpoint, "AZURE_MANAGEMENT_TOKEN": "local-arm-token",
                        "AZURE_SUBSCRIPTION_ID": "sub", "AZURE_RESOURCE_GROUP": "class", "AZURE_OPENAI_RESOURCE": "recipes"}.items():
        monkeypatch.setenv(name, value)
    client = openai.AzureOpenAI(azure_endpoint=endpoint, api_key="local-azure-key", api_version="2024-10-21", max_retries=0)
    train, _ = _data(tmp_path, 2)
    uploaded = client.files.create(file=Path(train), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-35-turbo-0125", suffix="recipes",
                                         hyperparameters={"n_epochs": 1})
    job = _wait(client, job.id)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"gpt-35-turbo-0125.ft-{job.id.removeprefix('ftjob-')}-recipes"
    messages = [{"role": "user", "content": "Recipe: Tea\n\n- 1 tea bag"}]
    with pytest.raises(openai.NotFoundError, match="deploy it first"):  # not deployed yet: it does not answer
        client.chat.completions.create(model="recipes-ft", messages=messages, max_tokens=5)

    result = azure.deploy(job.fine_tuned_model, "recipes-ft", confirm=True)  # the management plane, as on Azure
    assert result["state"] == "Succeeded" and not result["dry_run"]
    arm = f"{endpoint}/subscriptions/sub/resourceGroups/class/providers/Microsoft.CognitiveServices/accounts/recipes/deployments"
    listed = httpx.get(arm, params={"api-version": azure.ARM_API_VERSION}, headers={"Authorization": "Bearer t"}).json()["value"]
    assert [d["properties"]["model"]["name"] for d in listed] == [job.fine_tuned_model]
    assert jobs.chat("recipes-ft", "Recipe: Tea\n\n- 1 tea bag", provider="azure", max_tokens=5)
    assert client.chat.completions.create(model="recipes-ft", messages=messages, max_tokens=5).usage.completion_tokens <= 5

    assert azure.delete("recipes-ft")["deleted"] == "recipes-ft"
    with pytest.raises(openai.NotFoundError, match="DeploymentNotFound|deploy it first"):
        client.chat.completions.create(model="recipes-ft", messages=messages, max_tokens=5)
    # Azure's rules: an api-version on the data plane, a bearer token on the management plane, a real model to deploy
    assert httpx.get(f"{endpoint}/openai/files").json()["error"]["param"] == "api-version"
    assert httpx.put(f"{arm}/x", params={"api-version": "2024-10-01"}, json={}).status_code == 401
    unknown = httpx.put(f"{arm}/x", params={"api-version": "2024-10-01"}, headers={"Authorization": "Bearer t"},
                        json={"properties": {"model": {"name": "ft:gpt-4o-mini:nobody::x"}}})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "DeploymentModelNotSupported"


def test_the_lesson_assignment_code_runs_unchanged_with_only_the_sdks_own_settings(running, tmp_path, monkeypatch):
    """The calls of the lesson's assignment notebook as written there (``OpenAI()`` reads OPENAI_BASE_URL and OPENAI_API_KEY)."""
    from openai import OpenAI

    monkeypatch.setenv("OPENAI_BASE_URL", service.base_url(running.port))
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    path, _ = _data(tmp_path, 4)

    client = OpenAI()
    ft_file = client.files.create(file=open(path, "rb"), purpose="fine-tune")  # noqa: SIM115 - the assignment's own call
    ft_filejob = client.fine_tuning.jobs.create(training_file=ft_file.id, model="gpt-3.5-turbo")
    assert ft_filejob.id in [j.id for j in client.fine_tuning.jobs.list(limit=10).data]
    client.fine_tuning.jobs.list_events(fine_tuning_job_id=ft_filejob.id, limit=10)
    response = _wait(client, ft_filejob.id)
    assert response.status == "succeeded" and response.trained_tokens > 0, response.error
    events = client.fine_tuning.jobs.list_events(ft_filejob.id).data
    events.reverse()
    assert events[-1].message == "The job has successfully completed"
    fine_tuned_model_id = client.fine_tuning.jobs.retrieve(ft_filejob.id).fine_tuned_model
    completion = client.chat.completions.create(model=fine_tuned_model_id, messages=[
        {"role": "system", "content": recipes.SYSTEM_PROMPT}, {"role": "user", "content": "Recipe: Tea\n\n- 1 tea bag\n- 200 ml water"}])
    assert completion.choices[0].message.content


def test_an_idle_service_gives_the_models_memory_back_and_loads_it_again_when_asked(tmp_path):
    import psutil

    svc = Service(tmp_path / "state", LESSONLIB_SERVICE_IDLE_UNLOAD="1").start()
    try:
        client, process = svc.client(), psutil.Process(svc.process.pid)
        ask = lambda: client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}],
                                                     max_tokens=3, temperature=0.7).choices[0].message.content  # never from the reply cache

        def living(processes):  # a worker that has just exited is a zombie until the service reaps it: gone
            for p in processes:
                try:
                    yield p, " ".join(p.cmdline()), p.memory_info().rss
                except (psutil.ZombieProcess, psutil.NoSuchProcess):
                    pass

        tree = lambda: sum(rss for _, _, rss in living([process, *process.children(recursive=True)]))
        assert ask()
        loaded = tree()
        workers = lambda: [p for p, cmdline, _ in living(process.children()) if "resource_tracker" not in cmdline]
        assert workers(), "the model is in a reply worker"
        deadline = time.monotonic() + 20
        while workers():  # idle for 1 s: the reply worker exits, and its libraries' memory goes back too
            assert time.monotonic() < deadline, f"still {tree() / 1e9:.2f} GB after idling"
            time.sleep(0.5)
        assert tree() < loaded - 0.3e9  # the fp32 weights alone are 0.5 GB
        assert ask()  # loaded again on demand
        assert not any("libtorch" in m.path for m in process.memory_maps()), "the service's own process imports no torch"
    finally:
        svc.stop()


def test_a_training_step_gets_the_services_model_memory_first(running, monkeypatch):
    """models.make_room_for_training (called by the training monitor and run_in_subprocess) empties the service."""
    from lessonlib import models

    client = running.client()
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert service.release_model(running.port) is True  # it held the model for that reply
    assert service.release_model(running.port) is False  # nothing left to give
    monkeypatch.setenv("LESSONLIB_SERVICE_PORT", str(running.port))
    models.make_room_for_training()  # the same call, through the default port
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert service.release_model(port=1) is False  # nobody there: no error


def test_a_notebook_kernel_gets_its_replies_from_the_service_the_same_as_made_here(running, monkeypatch):
    """lessonlib.models in a kernel asks the service (one model for every notebook); the replies are those made in-process."""
    import sys
    from types import SimpleNamespace

    from lessonlib import models

    monkeypatch.setenv("LESSONLIB_SERVICE_PORT", str(running.port))
    monkeypatch.setenv("LESSONLIB_GENERATION_CACHE", "0")
    conversations = [[{"role": "user", "content": f"Name {n} vegetables."}] for n in (1, 2, 3)]
    with monkeypatch.context() as kernel:  # as in a running Jupyter kernel
        kernel.setitem(sys.modules, "ipykernel.kernelapp", SimpleNamespace(IPKernelApp=SimpleNamespace(initialized=lambda: True)))
        kernel.delitem(sys.modules, "torch", raising=False)
        assert models.generates_in_service()
        kernel.setitem(sys.modules, "torch", SimpleNamespace())  # a kernel that trained: it has torch already
        assert not models.generates_in_service()
    assert not models.generates_in_service()  # a script, the command line, this test process
    monkeypatch.setenv("LESSONLIB_GENERATE", "service")
    remote, seconds = models.generate_many_timed(conversations, max_new_tokens=12, batch_size=2)
    one = models.generate(conversations[0], max_new_tokens=6)
    monkeypatch.setenv("LESSONLIB_GENERATE", "here")
    assert (remote, one) == (models.generate_many_timed(conversations, max_new_tokens=12, batch_size=2)[0],
                             models.generate(conversations[0], max_new_tokens=6))
    assert seconds > 0
    monkeypatch.setenv("LESSONLIB_GENERATE", "service")
    with pytest.raises(Exception, match="nowhere does not exist"):
        models.generate(conversations[0], adapter="/nowhere", max_new_tokens=4)


def test_a_notebook_kernel_gets_its_charts_drawn_by_the_service(running, monkeypatch):
    """lessonlib.plots in a kernel asks the service for the PNG (no matplotlib in the kernel): the image drawn here."""
    import sys
    import urllib.error
    import urllib.request
    from types import SimpleNamespace

    from lessonlib import local_service, plots

    monkeypatch.setenv("LESSONLIB_SERVICE_PORT", str(running.port))
    monkeypatch.setattr(local_service, "_NO_SERVICE", [])
    with monkeypatch.context() as kernel:  # as in a running Jupyter kernel
        kernel.setitem(sys.modules, "ipykernel.kernelapp", SimpleNamespace(IPKernelApp=SimpleNamespace(initialized=lambda: True)))
        assert plots.draws_in_service()
    assert not plots.draws_in_service()  # a script, the command line, this test process
    chart = plots.learning_curve([(1, 2.0), (2, 1.2), (3, 1.0)], [(2, 1.5), (3, 1.6)], best_step=2)
    here = plots.png(chart, where="here")
    with monkeypatch.context() as nothing_here:
        nothing_here.setattr(plots, "DRAWERS", {})  # this process cannot draw: the image comes from the service
        assert plots.png(chart, where="service") == here
        # the widgets' charts, made of real results, travel as JSON too
        from lessonlib.widgets import BreakEvenExplorer, DataDoctor

        nothing_here.setenv("LESSONLIB_PLOTS", "service")
        doctor, explorer = DataDoctor(), BreakEvenExplorer(requests=50_000, shots=10)
        doctor.check.click()
        assert bytes(doctor.histogram.value).startswith(b"\x89PNG") and bytes(explorer.chart.value).startswith(b"\x89PNG")
    bad = urllib.request.Request(service.base_url(running.port) + "/lessonlib/plot", method="POST",
                                 data=b'{"kind": "pie", "data": {}}', headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(bad, timeout=30)
    assert answer.value.code == 400 and "learning_curve" in answer.value.read().decode()

    def cannot_start(*args, **kwargs):
        raise LessonError("the local service did not start")

    monkeypatch.setattr(local_service, "start", cannot_start)  # no service: drawn here, the same
    assert plots.png(chart, where="service") == here and local_service._NO_SERVICE  # and not tried again in this process


def test_the_reply_worker_survives_a_client_that_leaves_and_a_request_that_fails(model_dir):
    """Streams the client stopped reading, and errors in the worker, leave it ready for the next request; it generates
    on every core alone, on one thread beside a training job."""
    from lessonlib.service.chat import Chatter
    from lessonlib.system import usable_cores

    training = [False]
    chatter = Chatter(training=lambda: training[0])
    hello = [{"role": "user", "content": "Hi"}]
    try:
        assert chatter._call("threads") == usable_cores()  # alone: every core
        training[0] = True
        assert chatter._call("threads") == 1  # beside a training job: one thread, or both crawl
        training[0] = False
        pieces = chatter.stream([{"role": "user", "content": "Name five fruits."}], adapter=None, max_tokens=16)
        assert next(pieces)
        pieces.close()  # the client left after the first piece
        assert chatter.reply(hello, adapter=None, max_tokens=3)[0]
        with pytest.raises(Exception, match="nowhere"):
            list(chatter.stream(hello, adapter="/nowhere", max_tokens=3))
        with pytest.raises(Exception, match="nowhere"):
            chatter.reply(hello, adapter="/nowhere", max_tokens=3)
        assert chatter.reply(hello, adapter=None, max_tokens=3)[0] and chatter.loaded()
    finally:
        chatter.release()
    assert not chatter.loaded()


def test_a_service_a_notebook_kernel_started_ends_with_its_jupyter_server(tmp_path):
    """A kernel starts the service with --stop-with its Jupyter server: once the server is gone (make lab
    stopped, a Binder session ended), the service stops too, rather than hold its port and memory."""
    import psutil
    from jupyter_helpers import Server

    port = free_port()
    env = {**os.environ, "LESSONLIB_SERVICE_PORT": str(port), "LESSONLIB_SERVICE_STATE": str(tmp_path / "state")}
    server = Server(env, root=tmp_path)
    try:
        kernel = server.open("probe.ipynb")
        reply = kernel.run("from lessonlib import service\nprocess = service.start()\nprint(process.pid, service.running())", 120)
        kernel.close()
        assert reply.error is None and reply.text.split()[1] == "True", reply.error or reply.text
        pid = int(reply.text.split()[0])
        assert "--stop-with" in psutil.Process(pid).cmdline()
    finally:
        server.stop()
    def alive() -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:  # gone between two looks is gone
            return False

    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not service.running(port), "the service outlived the Jupyter server that ran its kernel"
    assert "the service stops" in (tmp_path / "state" / "service.log").read_text(encoding="utf-8")


def test_a_kernel_never_talks_to_the_service_of_another_checkout_or_version(running, monkeypatch):
    """The service says which lessonlib it runs; a kernel whose package or version differs is refused, with the port."""
    import urllib.request

    from lessonlib import local_service

    request = urllib.request.Request(service.base_url(running.port) + "/lessonlib/about")
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read()) == local_service.about()
    monkeypatch.setattr(local_service, "_CHECKED", set())
    assert service.start(running.port) is None  # this checkout's: found, not started again
    monkeypatch.setattr(local_service, "_CHECKED", set())
    monkeypatch.setattr(local_service, "about", lambda: {"version": "0.0.9", "package": "/elsewhere/lessonlib"})
    with pytest.raises(LessonError, match=f"port {running.port} is held by another lessonlib service") as refused:
        service.start(running.port)
    assert "LESSONLIB_SERVICE_PORT" in refused.value.fix
