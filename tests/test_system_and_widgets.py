"""Machine facts, the doctor as a function, and the chat widget driven like ipywidgets' tests."""

from __future__ import annotations

from lessonlib import doctor, system
from lessonlib.widgets import ChatBox


def test_cpu_info_has_the_features_the_trainer_needs():
    cpu = system.cpu_info()
    assert cpu["cores"] >= 1
    assert all(isinstance(cpu[k], bool) for k in ("avx2", "avx512", "avx512_bf16", "amx"))


def test_memory_is_positive():
    mem = system.memory_gb()
    assert mem["total"] > 0 and 0 <= mem["available"] <= mem["total"]


def test_network_probe_respects_offline_mode():
    assert system.network_reachable() is None


def test_doctor_report_is_ok_with_prepared_model(model_dir):
    report = doctor.doctor(probe_network=False)
    assert report.ok
    names = [c.name for c in report.checks]
    assert names[:4] == ["python", "packages", "model weights", "model cache"]
    assert report.to_dict()["ok"] is True


def test_doctor_report_fails_on_missing_package(monkeypatch, model_dir):
    real = system.package_version
    monkeypatch.setattr(system, "package_version", lambda n: None if n == "trl" else real(n))
    report = doctor.doctor(probe_network=False, probe_gpu=False)
    assert not report.ok
    failed = [c for c in report.checks if c.status == "fail"]
    assert failed[0].name == "packages" and "trl" in failed[0].detail and "make setup" in failed[0].fix


def test_chat_box_answers_on_click(model_dir):
    box = ChatBox(max_new_tokens=8)
    box.prompt.value = "Name one fruit."
    box.send.click()
    assert box.reply.value
    assert "answered in" in box.status.value
    assert box.send.disabled is False


def test_chat_box_shows_problem_and_fix(model_dir):
    box = ChatBox(adapter="/no/such/adapter")
    box.send.click()
    assert box.reply.value == ""
    assert "Problem:" in box.status.value and "Fix:" in box.status.value


def test_chat_box_empty_prompt():
    box = ChatBox()
    box.prompt.value = "   "
    box.send.click()
    assert "Type a question" in box.status.value

