"""Notebook 02 in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

What a learner does, checked end to end: open ``02-when-and-why.ipynb``, *Run All*, change a
checklist answer (the number of examples), press **Decide**, read the recommendation on the page.
This is what plain pytest cannot see: the widget JavaScript, the comm between page and kernel, the
layout. A screenshot is kept in ``runs/test-artifacts/`` (or ``$LESSONLIB_TEST_ARTIFACTS``).

Needs Debian's ``chromium`` (``make test`` installs it when missing, as root) and the ``playwright``
package (``tests/requirements-browser.txt``; its own browser download is never used). Locally,
without them, the test is skipped with a note; under ``CI=true`` a missing browser is a failure.
The server, the kernel and the browser get a temporary ``HOME`` and a copy of the notebook, so
nothing is written to your home folder or to the committed notebook (JupyterLab autosaves).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from jupyter_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "02-when-and-why.ipynb"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
ARTIFACTS = Path(os.environ.get("LESSONLIB_TEST_ARTIFACTS", ROOT / "runs" / "test-artifacts"))


def _chromium() -> str | None:
    found = next((c for c in CHROMIUM_CANDIDATES if os.access(c, os.X_OK)), None)
    return found or shutil.which("chromium")


def _missing(what: str) -> None:
    message = f"{what}; `make test` installs it (apt-get install chromium; pip install -r tests/requirements-browser.txt)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@pytest.fixture()
def lab(tmp_path: Path, model_dir: Path, numeric_path_of_notebooks):
    """A JupyterLab server on 127.0.0.1 serving a copy of notebook 02, in the numeric path nbval runs it in
    (so its replies, kept in the reply cache, serve nbval's run too); yields (url, home)."""
    numeric_path_of_notebooks(ROOT / "notebooks" / NOTEBOOK)
    home = tmp_path / "home"
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "HOME": str(home), "LESSONLIB_CACHE": str(model_dir.parent.parent),
           "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
         "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
                time.sleep(0.3)
        yield f"{base}/lab/tree/{NOTEBOOK}?token={token}", home
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_notebook_02_checklist_in_chromium(lab) -> None:
    executable = _chromium()
    if executable is None:
        _missing("Debian's chromium is not installed")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    url, home = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "02-when-and-why-chromium.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, env={**os.environ, "HOME": str(home)})
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # The page must need nothing but the local server: refuse everything else.
        page.route(lambda u: not u.startswith("http://127.0.0.1:"), lambda route: route.abort())
        try:
            page.goto(url)
            # The toolbar says "idle" before a kernel exists; the status bar names the running kernel.
            expect(page.locator("#jp-main-statusbar")).to_contain_text("Python 3 (ipykernel) | Idle", timeout=90_000)
            page.locator("#jp-menu-panel").get_by_text("Run", exact=True).click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            result = page.locator(".checklist-result")
            # Run All evaluates three strategies on 16 recipes with the local model first.
            expect(result).to_contain_text("Recommendation: fine-tune", timeout=420_000)

            examples = page.locator(".checklist-examples input")
            examples.fill("20")
            examples.press("Enter")
            page.locator(".checklist-decide").click()
            expect(result).to_contain_text("Recommendation: collect more data first", timeout=30_000)
            expect(result).to_contain_text("Only 20 examples")
            result.scroll_into_view_if_needed()
        finally:
            page.screenshot(path=str(shot))
            browser.close()
    assert shot.stat().st_size > 10_000
