"""The cloud tutorials with the real openai SDK against a loopback server (127.0.0.1 only)."""

from __future__ import annotations

import json

import pytest
import yaml
from fake_openai import FakeOpenAI

from conftest import run_cli
from lessonlib import corpora
from lessonlib.cloud import autotrain, jobs, keys
from lessonlib.errors import LessonError

GOOD = "sk-" + "test-good-key-000000000000"  # built at run time: nothing key-shaped in git
BAD = "sk-" + "test-bad-key-1111111111111"
AZURE_GOOD = "azure-good-key-0000000000"
TRAIN = str(corpora.split_path("recipes", "train"))
VALID = str(corpora.split_path("recipes", "valid"))


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


def openai_env(fake: FakeOpenAI, key: str = GOOD) -> dict[str, str]:
    return {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": fake.url + "/v1"}


def azure_env(fake: FakeOpenAI, key: str = AZURE_GOOD) -> dict[str, str]:
    return {"AZURE_OPENAI_API_KEY": key, "AZURE_OPENAI_ENDPOINT": fake.url, "OPENAI_API_VERSION": "2024-10-21"}


def no_secret(*results, secrets=(GOOD, BAD, AZURE_GOOD)) -> None:
    for result in results:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr


def test_dry_run_without_a_key_sends_nothing(fake, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", env={"OPENAI_BASE_URL": fake.url + "/v1", "OPENAI_API_KEY": ""})
    assert result.returncode == 0, result.stderr
    assert "dry run: no OpenAI key" in result.stdout and "estimated training cost" in result.stdout
    assert "POST" in result.stdout and "/fine_tuning/jobs" in result.stdout
    assert fake.requests == []


def test_budget_guard_refuses_before_sending(fake):
    over = run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--budget", "0.01", env=openai_env(fake))
    assert over.returncode == 1 and "over your budget of $0.01" in over.stderr and "nothing was sent" in over.stderr
    unconfirmed = run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", env=openai_env(fake))
    assert unconfirmed.returncode == 1 and "--budget" in unconfirmed.stderr
    assert fake.requests == []
    no_secret(over, unconfirmed)


def test_happy_path_submit_follow_checkpoints_chat_cancel(fake):
    env = openai_env(fake)
    submit = run_cli("openai", "submit", "--data", TRAIN, "--valid", VALID, "--model", "gpt-4o-mini", "--suffix", "recipes",
                     "--epochs", "2", "--budget", "5", "--json", env=env)
    assert submit.returncode == 0, submit.stderr
    out = json.loads(submit.stdout)
    job_id = out["job"]["id"]
    assert out["dry_run"] is False and out["files"] == {"training": "file-1", "validation": "file-2"}
    created = next(r for r in fake.requests if r["path"].endswith("/fine_tuning/jobs"))
    assert json.loads(created["body"])["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}
    assert created["headers"]["authorization"] == f"Bearer {GOOD}"

    follow = run_cli("openai", "status", job_id, "--follow", "--interval", "0.01", env=env)
    assert follow.returncode == 0, follow.stderr
    assert "status: succeeded" in follow.stdout and "Step 10/30" in follow.stdout
    model = follow.stdout.strip().splitlines()[-1].split("model ")[-1]
    assert model.startswith("ft:gpt-4o-mini-2024-07-18")

    events = run_cli("openai", "events", job_id, env=env)
    assert "successfully completed" in events.stdout
    ckpts = run_cli("openai", "checkpoints", job_id, "--json", env=env)
    assert json.loads(ckpts.stdout)[0]["step"] == 10
    chat = run_cli("openai", "chat", "--model", model, "Title: Crêpes ...", env=env)
    assert chat.returncode == 0 and chat.stdout.strip() == '["flour", "eggs", "milk"]'

    second = json.loads(run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--yes", "--json", env=env).stdout)
    cancel = run_cli("openai", "cancel", second["job"]["id"], env=env)
    assert cancel.returncode == 0 and "cancelled" in cancel.stdout
    no_secret(submit, follow, events, ckpts, chat, cancel)


def test_bad_key_is_a_plain_message(fake):
    result = run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--yes", env=openai_env(fake, BAD))
    assert result.returncode == 1 and "refused the API key (401)" in result.stderr and "Traceback" not in result.stderr
    no_secret(result)


def test_rate_limit_is_retried_then_succeeds(fake):
    fake.fail_next = [(429, {"error": {"message": "Rate limit reached", "type": "requests"}})]
    result = run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--yes", env=openai_env(fake))
    assert result.returncode == 0, result.stderr
    assert "job ftjob-1 created" in result.stdout


def test_server_errors_after_retries(fake):
    fake.fail_next = [(500, {"error": {"message": "boom"}})] * 5
    result = run_cli("openai", "status", "ftjob-9", env=openai_env(fake))
    assert result.returncode == 1 and "server error (500) even after retrying" in result.stderr


def test_failed_job_is_explained(fake):
    fake.job_outcome = "failed"
    env = openai_env(fake)
    job = json.loads(run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--yes", "--json", env=env).stdout)["job"]
    result = run_cli("openai", "status", job["id"], "--follow", "--interval", "0.01", env=env)
    assert result.returncode == 1
    assert "failed: The training file has 3 examples" in result.stderr and "not billed" in result.stderr


def test_unknown_job_is_a_plain_404(fake):
    result = run_cli("openai", "status", "ftjob-nope", env=openai_env(fake))
    assert result.returncode == 1 and "not found (404)" in result.stderr


def test_data_with_errors_is_refused_before_any_request(fake, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    result = run_cli("openai", "submit", "--data", str(bad), "--model", "gpt-4o-mini", "--yes", env=openai_env(fake))
    assert result.returncode == 1 and "example_missing_assistant_message" in result.stderr
    assert fake.requests == []


def test_azure_paths_headers_and_deployment_chat(fake):
    env = azure_env(fake)
    submit = run_cli("azure", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--epochs", "1", "--budget", "5", "--json", env=env)
    assert submit.returncode == 0, submit.stderr
    job = json.loads(submit.stdout)["job"]
    created = next(r for r in fake.requests if "/fine_tuning/jobs" in r["path"])
    assert created["path"].startswith("/openai/fine_tuning/jobs?api-version=2024-10-21")
    assert created["headers"]["api-key"] == AZURE_GOOD
    assert json.loads(created["body"])["hyperparameters"] == {"n_epochs": 1}
    status = run_cli("azure", "status", job["id"], "--follow", "--interval", "0.01", env=env)
    assert "succeeded" in status.stdout
    chat = run_cli("azure", "chat", "--model", "recipes-ft-deployment", "Title: Toast", env=env)
    assert chat.returncode == 0 and "flour" in chat.stdout
    assert any(r["path"].startswith("/openai/deployments/recipes-ft-deployment/chat/completions") for r in fake.requests)
    no_secret(submit, status, chat)


def test_azure_needs_an_endpoint(monkeypatch):
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    plan = jobs.plan_job(TRAIN, model="gpt-4o-mini", provider="azure")
    assert plan.estimated_usd > 0 and jobs.submit(plan).dry_run
    assert "api-version" in plan.requests()[-1]["url"]


def test_keys_from_dotenv_and_redaction(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"# secrets\nexport OPENAI_API_KEY='{GOOD}'\n")
    assert keys.find("OPENAI_API_KEY") == GOOD
    assert keys.redact(f"Authorization: Bearer {GOOD}") == "Authorization: Bearer ***"
    (tmp_path / ".env").write_text(f'OPENAI_API_KEY="{GOOD}"  # an inline comment\nAZURE_OPENAI_API_KEY=a#b\n')
    assert keys.find("OPENAI_API_KEY") == GOOD and keys.find("AZURE_OPENAI_API_KEY") == "a#b"  # read as a shell reads them
    (tmp_path / ".env").unlink()
    with pytest.raises(LessonError) as info:
        keys.require("OPENAI_API_KEY")
    assert ".env" in info.value.fix


def test_autotrain_config_is_valid(tmp_path):
    run_yaml = tmp_path / "run.yaml"
    from lessonlib.train import RunConfig

    RunConfig(lora_r=16, max_steps=0, epochs=3, learning_rate=1e-3).save(run_yaml)
    result = run_cli("autotrain", "config", "--data", TRAIN, "--valid", VALID, "--out", str(tmp_path / "at.yml"), "--run-config", str(run_yaml))
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load((tmp_path / "at.yml").read_text())
    assert autotrain.validate_config(cfg) == []
    assert cfg["params"]["lora_r"] == 16 and cfg["params"]["epochs"] == 3 and cfg["data"]["valid_split"] == "valid"
    assert sorted(p.name for p in (tmp_path / "at-data").iterdir()) == ["train.jsonl", "valid.jsonl"]
    assert "autotrain --config" in result.stdout
    assert autotrain.validate_config({"task": "llm-sft"})  # missing keys are reported


def test_azure_deployment_shows_the_hourly_cost_and_can_be_deleted(fake):
    env = {**azure_env(fake), "AZURE_SUBSCRIPTION_ID": "sub-1", "AZURE_RESOURCE_GROUP": "rg-1", "AZURE_OPENAI_RESOURCE": "res-1",
           "AZURE_MANAGEMENT_TOKEN": "arm-token-good-000000000000", "AZURE_MANAGEMENT_ENDPOINT": fake.url}
    model = "gpt-4o-mini-2024-07-18.ft-abc123"
    unconfirmed = run_cli("azure", "deploy", "--model", model, "--name", "recipes-ft", env=env)
    assert unconfirmed.returncode == 1 and "$1.70/hour" in unconfirmed.stdout and "--yes" in unconfirmed.stderr
    assert not fake.deployments
    deployed = run_cli("azure", "deploy", "--model", model, "--name", "recipes-ft", "--yes", env=env)
    assert deployed.returncode == 0, deployed.stderr
    assert fake.deployments["recipes-ft"]["properties"]["model"]["name"] == model
    put = next(r for r in fake.requests if r["method"] == "PUT")
    assert "/deployments/recipes-ft?api-version=" in put["path"] and put["headers"]["authorization"].startswith("Bearer ")
    gone = run_cli("azure", "undeploy", "--name", "recipes-ft", env=env)
    assert gone.returncode == 0 and "hosting charges stop" in gone.stdout and not fake.deployments
    again = run_cli("azure", "undeploy", "--name", "recipes-ft", env=env)
    assert again.returncode == 1 and "404" in again.stderr
    no_secret(unconfirmed, deployed, gone, again, secrets=("arm-token-good-000000000000", AZURE_GOOD))


def test_azure_deploy_dry_run_without_settings(monkeypatch):
    from lessonlib.cloud import azure

    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_MANAGEMENT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = azure.deploy("gpt-4o-mini-2024-07-18.ft-x", "demo")
    assert result["dry_run"] and result["plan"]["hourly_usd"] == 1.70
    assert "{AZURE_SUBSCRIPTION_ID}" in result["plan"]["url"]


def test_job_monitor_widget_follows_a_job(fake, monkeypatch):
    from lessonlib.widgets import JobMonitor

    for name, value in openai_env(fake).items():
        monkeypatch.setenv(name, value)
    plan = jobs.plan_job(TRAIN, model="gpt-4o-mini")
    job = jobs.submit(plan, confirm=True).job
    monitor = JobMonitor(job["id"], interval=0.01)
    monitor.follow()
    final = monitor.join(timeout=60)
    assert final["status"] == "succeeded" and "ft:gpt-4o-mini" in monitor.status.value
    assert "successfully completed" in monitor.event_log.value and GOOD not in monitor.event_log.value + monitor.status.value


def test_an_autotrain_configuration_maps_onto_the_local_recipe_setting_by_setting(tmp_path):
    from lessonlib.cloud import autotrain
    from lessonlib.errors import LessonError
    from lessonlib.train import RunConfig, recipe

    config = autotrain.build_config(tmp_path / "data", run_config=RunConfig(max_steps=0, epochs=2, learning_rate=1e-4, lora_r=16,
                                                                           lora_alpha=32), valid=True)
    config["params"]["target_modules"] = "all-linear"
    local = autotrain.to_run_config(config, output_dir=tmp_path / "run")
    assert (local.epochs, local.learning_rate, local.lora_r, local.lora_alpha, local.max_steps) == (2, 1e-4, 16, 32, 0)
    assert local.train_file == str(tmp_path / "data" / "train.jsonl") and local.valid_file == str(tmp_path / "data" / "valid.jsonl")
    assert local.model == "smollm2" and local.output_dir == str(tmp_path / "run")
    assert recipe.lora_config(local).target_modules == "all-linear"
    table = autotrain.settings_table(config)
    assert "`lr` | `0.0001` | peak learning rate | `SFTConfig.learning_rate`" in table
    config["params"]["quantization"] = "int4"
    with pytest.raises(LessonError, match="needs a GPU"):
        autotrain.to_run_config(config)


# --------------------------------------------------------------------------------------------
# Where the cloud paths stand (the dated table), and OpenAI's refusal since 2026
# --------------------------------------------------------------------------------------------


def test_openai_refusal_is_one_dated_line_on_the_command_line(fake):
    fake.refuse_training = True
    result = run_cli("openai", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--yes", env=openai_env(fake))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    from lessonlib import facts

    assert "403 training_not_available" in result.stderr and facts.refused_training("openai") in result.stderr
    assert "what still works" in result.stderr and "Azure OpenAI" in result.stderr
    assert any(r["path"].endswith("/fine_tuning/jobs") for r in fake.requests)
    no_secret(result)


def test_every_fact_has_a_date_and_a_source_and_the_doctor_warns_when_one_is_old():
    from datetime import date

    from lessonlib import doctor, facts

    table = facts.rows()
    assert all(row["status"] and row["status_as_of"] and row["status_source"] for row in table)
    newest = max(date.fromisoformat(row["status_as_of"]) for row in table)
    assert doctor.dated_facts(newest).status == "ok" or all(kind == "prices" for _, kind, _ in facts.stale(newest))
    later = date(newest.year + 1, newest.month, 1)  # any day over six months after the last reading
    old = doctor.dated_facts(later)
    assert old.status == "warn" and "data/prices.csv" in old.fix and len(facts.stale(later)) >= len(table)
    assert doctor.doctor(probe_network=False, probe_gpu=False, today=later).ok  # a warning, not a failure
    for provider in ("openai", "azure", "autotrain"):
        lines = facts.where_paths_stand(provider)
        assert lines and all("(as of " in line and "http" in line for line in lines)
    assert facts.where_paths_stand("openai") == facts.where_paths_stand("openai", table)  # the text never reads the clock


def test_azure_developer_tier_is_priced_sent_and_deployed_as_such(fake):
    from lessonlib.cloud import azure

    standard = jobs.plan_job(TRAIN, model="gpt-4o-mini", provider="azure", epochs=1)
    developer = jobs.plan_job(TRAIN, model="gpt-4o-mini", provider="azure", tier="developer", epochs=1)
    assert developer.estimated_usd < standard.estimated_usd and "Developer tier" in developer.cost_line()
    assert developer.job_body("file-1", None)["trainingType"] == "developerTier"
    plan = azure.plan_deployment("gpt-4o-mini-2024-07-18.ft-x", "demo", tier="developer")
    assert plan.hourly_usd == 0 and plan.body["sku"]["name"] == "developertier" and "24 hours" in plan.describe()
    with pytest.raises(LessonError, match="tier"):
        jobs.plan_job(TRAIN, model="gpt-4o-mini", provider="openai", tier="developer")
    submit = run_cli("azure", "submit", "--data", TRAIN, "--model", "gpt-4o-mini", "--tier", "developer", "--epochs", "1", "--budget", "5",
                     env=azure_env(fake))
    assert submit.returncode == 0 and "Developer tier" in submit.stdout, submit.stderr
    created = next(r for r in fake.requests if "/fine_tuning/jobs" in r["path"])
    assert json.loads(created["body"])["trainingType"] == "developerTier"
    env = {**azure_env(fake), "AZURE_SUBSCRIPTION_ID": "sub-1", "AZURE_RESOURCE_GROUP": "rg-1", "AZURE_OPENAI_RESOURCE": "res-1",
           "AZURE_MANAGEMENT_TOKEN": "arm-token-good-000000000000", "AZURE_MANAGEMENT_ENDPOINT": fake.url}
    deployed = run_cli("azure", "deploy", "--model", "gpt-4o-mini-2024-07-18.ft-abc", "--name", "dev", "--tier", "developer", env=env)
    assert deployed.returncode == 0 and fake.deployments["dev"]["sku"]["name"] == "developertier", deployed.stderr


def _notebook_06_until(marker: str, tmp_path, *, real: bool) -> list[dict]:
    """Notebook 06's cells up to the first whose code holds ``marker``, run in a fresh kernel (``RUN_FOR_REAL`` as
    given); the outputs of the last cell."""
    import nbformat
    from nbclient import NotebookClient

    from lessonlib.settings import repo_root

    nb = nbformat.read(repo_root() / "notebooks" / "06-openai-and-azure.ipynb", as_version=4)
    last = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and marker in c.source)
    nb.cells = nb.cells[:last + 1]
    for cell in nb.cells:
        cell.source = cell.source.replace("RUN_FOR_REAL = False", f"RUN_FOR_REAL = {real}")
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb.cells[-1].outputs


def test_notebook_06_explains_openai_refusal_in_one_dated_line(fake, tmp_path, monkeypatch):
    """A key OpenAI no longer trains for (its 403 training_not_available): the job cell says why, since when and what
    still works, with no traceback; and RUN_FOR_REAL = True without a key says so instead of running on the local
    service."""
    from lessonlib import facts

    fake.refuse_training = True
    for name, value in openai_env(fake).items():
        monkeypatch.setenv(name, value)
    outputs = _notebook_06_until("client.fine_tuning.jobs.create(", tmp_path, real=True)
    shown = "\n".join(line for o in outputs for line in o.get("traceback", []) + [o.get("text", "")])
    assert [o["output_type"] for o in outputs] == ["error"] and outputs[0]["ename"] == "LessonError"
    assert "Traceback" not in shown and "---->" not in shown and "File " not in shown
    assert "403 training_not_available" in shown and facts.refused_training("openai") in shown and "what still works" in shown
    assert [r["path"] for r in fake.requests if r["method"] == "POST"] == ["/v1/files", "/v1/files", "/v1/fine_tuning/jobs"]
    assert GOOD not in shown

    monkeypatch.setenv("OPENAI_API_KEY", "")
    monkeypatch.chdir(tmp_path)  # no .env here
    outputs = _notebook_06_until("RUN_FOR_REAL = False", tmp_path, real=True)
    shown = "\n".join(line for o in outputs for line in o.get("traceback", []) + [o.get("text", "")])
    assert "OPENAI_API_KEY is not set" in shown and "requests go to" not in shown and "Traceback" not in shown
