"""The package's foundations: light import, settings, errors, the course map."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lessonlib import course, settings
from lessonlib.errors import LessonError

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "openai", "ipywidgets", "tiktoken")


def test_import_is_light():
    code = "import json, sys, lessonlib, lessonlib.cli, lessonlib.settings, lessonlib.models, lessonlib.system, lessonlib.data, lessonlib.costs, lessonlib.tokens, lessonlib.corpora.sql, lessonlib.corpora.recipes, lessonlib.train, lessonlib.cloud.jobs, lessonlib.cloud.autotrain, lessonlib.cloud.keys, lessonlib.evaluate, lessonlib.decide, lessonlib.cloud.azure; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(HEAVY), f"heavy modules imported at import time: {loaded & set(HEAVY)}"


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LESSONLIB_CACHE", str(tmp_path / "c"))
    assert settings.cache_dir() == tmp_path / "c"
    assert settings.models_dir() == tmp_path / "c" / "models"
    monkeypatch.delenv("LESSONLIB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.cache_dir() == tmp_path / "xdg" / "lessonlib"


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_offline_switch(monkeypatch, value, expected):
    for name in ("LESSONLIB_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LESSONLIB_OFFLINE", value)
    assert settings.offline() is expected


def test_keys_present_reports_only_booleans(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "test-not-a-real-key-1234567890")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    keys = settings.keys_present()
    assert keys["OPENAI_API_KEY"] is True and keys["AZURE_OPENAI_API_KEY"] is False
    assert "sk-test" not in repr(keys)


def test_lesson_error_has_message_and_fix():
    err = LessonError("broken", fix="do this")
    assert str(err) == "broken (fix: do this)"
    assert err.exit_code == 1
    assert LessonError("x", exit_code=2).exit_code == 2


def test_course_map_marks_missing_notebooks(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / course.NOTEBOOKS[0].filename).write_text("{}")
    table = course.notebook_map(tmp_path)
    assert "| 00 | [Start here" in table
    assert table.count("coming soon") == len(course.NOTEBOOKS) - 1


def test_every_notebook_on_disk_is_in_the_map():
    on_disk = {p.name for p in (settings.repo_root() / "notebooks").glob("*.ipynb")}
    assert on_disk, "no notebooks found"
    assert on_disk <= {nb.filename for nb in course.NOTEBOOKS}


def test_notebooks_are_committed_executed_and_clean():
    for path in sorted((settings.repo_root() / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        starters = {id(cell) for cell, after in itertools.pairwise(code) if "".join(after["source"]).startswith('check("')}
        assert all(c.get("outputs") for c in code if c["source"] and id(c) not in starters), \
            f"{path.name}: a code cell has no output (only an exercise's cell to edit may have none)"
        assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), f"{path.name}: not run top to bottom"
        text = path.read_text()
        assert not re.search(r"sk-[A-Za-z0-9_-]{16,}", text), f"{path.name}: something like a key in outputs"
        assert "Traceback" not in text, f"{path.name}: an error is stored in the outputs"


def _probe_notebook(folder: Path, committed: str) -> Path:
    """A notebook whose saved outputs are one line that is the same on every CPU, and the numeric path."""
    import nbformat

    same = nbformat.v4.new_code_cell('print("the same on every CPU")', execution_count=1,
                                     outputs=[nbformat.v4.new_output("stream", name="stdout", text="the same on every CPU\n")])
    path = nbformat.v4.new_code_cell("from lessonlib import system\nprint(system.cpu_numeric_path())", execution_count=2,
                                     outputs=[nbformat.v4.new_output("stream", name="stdout", text=f"{committed}\n")])
    nb = nbformat.v4.new_notebook(cells=[same, path], metadata={"lessonlib": {"numeric_path": committed}})
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "probe.ipynb")
    return folder / "probe.ipynb"


def test_a_saved_output_that_only_one_numeric_path_gives_fails_the_notebook_run(tmp_path):
    """The committed notebooks' outputs were computed in bf16; nbval validates them in fp32 (played on a
    CPU with native bf16, native on one without), so an output that depends on the path fails here,
    on either kind of CPU. The probe lives under runs/ so that the repository's conftest.py applies."""
    folder = ROOT / "runs" / "test-numeric-path" / tmp_path.name
    probe = _probe_notebook(folder, "bfloat16")
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(probe)],
                             capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
        assert "1 failed, 1 passed" in run.stdout, run.stdout[-3000:]
        assert "float32" in run.stdout and "validated in float32" in run.stdout
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def test_every_committed_notebook_records_the_numeric_path_of_its_outputs():
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        recorded = json.loads(notebook.read_text(encoding="utf-8"))["metadata"].get("lessonlib", {}).get("numeric_path")
        assert recorded in ("bfloat16", "float32"), f"{notebook.name}: execute it with `make notebooks`"


def test_every_setting_is_read_through_the_registry_and_the_readme_lists_them(monkeypatch):
    """One parser for every LESSONLIB_* variable: the README's table is the registry's, every variable the package reads
    is in it, and a value that does not parse names the variable."""
    import re

    from lessonlib import settings
    from lessonlib.errors import LessonError

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.table() in readme, "update the README's settings table: lessonlib.settings.table()"
    package = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "lessonlib").rglob("*.py"))
    assert set(re.findall(r"LESSONLIB_[A-Z_]+[A-Z]", package)) - {"LESSONLIB_"} <= set(settings.VARIABLES)
    direct = re.findall(r"os\.environ\.get\(\s*[\"']LESSONLIB_(?!LANG)", package)
    assert direct == [], "read LESSONLIB_* variables with settings.get()"
    monkeypatch.setenv("LESSONLIB_MEASURES", "maybe")
    with pytest.raises(LessonError, match="LESSONLIB_MEASURES='maybe'"):
        settings.get("LESSONLIB_MEASURES")
    for value, expected in (("off", False), ("0", False), ("YES", True), ("auto", True), ("", True)):
        monkeypatch.setenv("LESSONLIB_MEASURES", value)
        assert settings.get("LESSONLIB_MEASURES") is expected, value
    monkeypatch.setenv("LESSONLIB_SERVICE_MAX_JOBS", "eight")
    with pytest.raises(LessonError, match="LESSONLIB_SERVICE_MAX_JOBS"):
        settings.get("LESSONLIB_SERVICE_MAX_JOBS")
