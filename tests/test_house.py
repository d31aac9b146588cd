"""The house rules, checked in `make test`: ruff clean, the import layers of docs/architecture.md kept, rooms small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_finds_nothing():
    """ruff, with the rules and line length of pyproject.toml, on the package, the tests and the benchmarks."""
    result = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "lessonlib", "tests", "benchmarks", "conftest.py"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_module_imports_only_from_the_layers_below_it():
    """The import-linter contract of pyproject.toml (imports inside functions included)."""
    result = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_no_module_outside_train_is_over_500_lines():
    """Rooms a newcomer can hold in their head (train/ holds the optimizations, one guarded place)."""
    long = {str(path.relative_to(ROOT)): n for path in (ROOT / "lessonlib").rglob("*.py")
            if "train" not in path.relative_to(ROOT / "lessonlib").parts[:-1]
            and (n := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


def test_the_readme_is_for_users():
    """At most 200 lines: what this is, the two commands, the notebooks, keys and GPU, troubleshooting, instructors."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, len(lines)
    for doc in ("architecture", "memory", "training", "service", "contributing"):
        assert f"(docs/{doc}.md)" in "\n".join(lines), doc


def test_no_module_imports_itself_through_others():
    """No circle in the import graph of the package (grimp: the graph import-linter reads), functions' imports included."""
    import grimp

    graph = grimp.build_graph("lessonlib", cache_dir=None)
    circles = sorted({tuple(sorted((module, imported))) for module in graph.modules
                      for imported in graph.find_modules_directly_imported_by(module)
                      if graph.chain_exists(importer=imported, imported=module)})
    assert not circles, circles
