"""Shared test set-up: offline always, quiet transformers, the prepared local model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Every test (and every notebook kernel nbval starts, which inherits this environment) is offline.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["LESSONLIB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _train_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests here check training itself: no run is replayed from an earlier identical one (the notebooks'
    kernels share them: the root conftest.py, lessonlib.train.replay)."""
    monkeypatch.delenv("LESSONLIB_RUN_CACHE", raising=False)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The prepared default model (``make setup`` prepares it; this makes sure)."""
    from lessonlib import models

    return models.prepare(verify=False)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lessonlib ARGS`` in a subprocess, as a learner would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lessonlib", *args],
        capture_output=True, check=False,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=600,
    )
