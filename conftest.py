"""A check on every notebook as strict nbval runs it: its kernel keeps no more memory than its share.

Binder gives JupyterLab and every kernel 2 GB together, and a kernel keeps running when its tab is
closed; :mod:`lessonlib.binder` holds each notebook's share of that. After a notebook's last cell,
the resident memory of its kernel and of what the kernel started (the local service, for notebook
06) is compared with it. Shared set-up for the tests is in ``tests/conftest.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

_USED = pytest.StashKey[dict]()  # notebook -> GB its kernel held after its last cell


def _tree_gb(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e9


def pytest_runtest_teardown(item: pytest.Item, nextitem: Any) -> None:
    notebook = item.parent
    if type(item).__name__ != "IPyNbCell" or (nextitem is not None and nextitem.parent is notebook):
        return  # not a notebook's last cell
    pid = getattr(getattr(getattr(getattr(notebook, "kernel", None), "km", None), "provisioner", None), "pid", None)
    if pid is None:
        return
    from lessonlib import binder

    used, share = _tree_gb(pid), binder.share(notebook.path.name)
    if used > share:
        pytest.fail(f"{notebook.path.name}: its kernel (with what it started) holds {used:.2f} GB after Run All, over its share "
                    f"of {share:.2f} GB in lessonlib/binder.py (Binder: {binder.BINDER_GB:.0f} GB for JupyterLab and every kernel). "
                    "Give memory back at the end (models.unload()), or run the heavy part in the local service.", pytrace=False)
    item.config.stash.setdefault(_USED, {})[notebook.path.name] = round(used, 2)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    used = config.stash.get(_USED, {})
    if used:
        from lessonlib import binder

        terminalreporter.write_line("notebook kernels after Run All (GB RSS, share): " + ", ".join(
            f"{name[:2]} {gb:.2f}/{binder.share(name):.2f}" for name, gb in sorted(used.items())))
