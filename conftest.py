"""For every test session: a local service of its own; for every notebook strict nbval runs: a memory check.

Binder gives JupyterLab and every kernel 2 GB together, and a kernel keeps running when its tab is
closed; :mod:`lessonlib.binder` holds each notebook's share of that. After a notebook's last cell,
the resident memory of its kernel and of what the kernel started is compared with it; the local
service, which the first notebook that needs a model starts and every later one shares, is checked
against its own share. Shared set-up for the tests is in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The local service the notebooks start (for replies, and notebook 06's jobs) gets its own port and a
# fresh state folder for this test session, so it neither uses nor disturbs a learner's service, and
# outputs do not depend on earlier jobs; it is stopped at the end. Kernels inherit this environment.
os.environ["LESSONLIB_SERVICE_PORT"] = str(_free_port())
os.environ["LESSONLIB_SERVICE_STATE"] = tempfile.mkdtemp(prefix="lessonlib-service-")


def pytest_unconfigure(config: pytest.Config) -> None:
    from lessonlib import service

    service.stop()

_USED = pytest.StashKey[dict]()  # notebook -> GB its kernel held after its last cell


def _is_service(process: Any) -> bool:
    command = process.cmdline()
    return "lessonlib" in command and "serve" in command


def _tree_gb(pid: int) -> tuple[float, float]:
    """(GB of the kernel and what it started, the shared local service aside; GB of that service, if it started it)."""
    import psutil

    root = psutil.Process(pid)
    mine = service = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            shared = any(_is_service(p) for p in [process, *process.parents()])
            if shared:
                service += process.memory_info().rss
            else:
                mine += process.memory_info().rss
        except psutil.Error:
            pass
    return mine / 1e9, service / 1e9


def pytest_runtest_teardown(item: pytest.Item, nextitem: Any) -> None:
    notebook = item.parent
    if type(item).__name__ != "IPyNbCell" or (nextitem is not None and nextitem.parent is notebook):
        return  # not a notebook's last cell
    pid = getattr(getattr(getattr(getattr(notebook, "kernel", None), "km", None), "provisioner", None), "pid", None)
    if pid is None:
        return
    from lessonlib import binder

    kernel = notebook.kernel  # what the notebook left running in the background ends first: it is part of Run All's memory
    kernel.await_idle(kernel.execute_cell_input(binder.AFTER_RUN_ALL, allow_stdin=False), 900)
    (used, service), share = _tree_gb(pid), binder.share(notebook.path.name)
    if service > binder.SERVICE_GB:
        pytest.fail(f"the local service (started by {notebook.path.name}'s kernel) holds {service:.2f} GB, over its share of "
                    f"{binder.SERVICE_GB:.2f} GB in lessonlib/binder.py", pytrace=False)
    if used > share:
        pytest.fail(f"{notebook.path.name}: its kernel (with what it started) holds {used:.2f} GB after Run All, over its share "
                    f"of {share:.2f} GB in lessonlib/binder.py (Binder: {binder.BINDER_GB:.0f} GB for JupyterLab and every kernel). "
                    "Give memory back at the end (models.unload()), or run the heavy part in the local service.", pytrace=False)
    item.config.stash.setdefault(_USED, {})[notebook.path.name] = round(used, 2)
    if service:
        item.config.stash.setdefault(_USED, {})["service"] = round(service, 2)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    used = config.stash.get(_USED, {})
    if used:
        from lessonlib import binder

        service = used.pop("service", None)
        terminalreporter.write_line("notebook kernels after Run All (GB RSS, share): " + ", ".join(
            f"{name[:2]} {gb:.2f}/{binder.share(name):.2f}" for name, gb in sorted(used.items()))
            + (f"; the local service {service:.2f}/{binder.SERVICE_GB:.2f}" if service is not None else ""))
