"""For every test session: a local service of its own; for every notebook strict nbval runs: the other numeric path and a memory check.

A CPU that computes bf16 natively gives replies and losses a little different from one that does
not (:func:`lessonlib.system.cpu_numeric_path`). The committed notebooks record the path their
outputs were computed in (``tests/execute_notebooks.py``); nbval runs each notebook's kernel in the
other path where this CPU can take it: on a bf16 CPU it plays one without (``LESSONLIB_CPU_WITHOUT``),
so a saved output that only one kind of CPU reproduces fails here, whichever kind ran ``make
notebooks``. On a CPU without bf16 the notebooks run in fp32, the path most laptops take
(``--numeric-path native`` keeps this CPU's own path).

Binder gives JupyterLab and every kernel 2 GB together, and a kernel keeps running when its tab is
closed; :mod:`lessonlib.memory_shares` holds each notebook's share of that. After a notebook's last cell,
the resident memory of its kernel and of what the kernel started is compared with it; the local
service, which the first notebook that needs a model starts and every later one shares, is checked
against its own share. Shared set-up for the tests is in ``tests/conftest.py``.

Under pytest-xdist each worker is pinned to its share of the cores, and so are the kernels it starts; the local
service the notebooks share floats over every core with one torch thread (:func:`float_the_service`), so that the
replies and jobs one worker's notebooks ask for do not queue behind the other worker's own work. The summary at the
end gives each notebook's time, language and numeric path, and the total against ``make test``'s budget.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from lessonlib import system


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pin_this_worker() -> None:
    """Under pytest-xdist (``make test`` runs two workers): give each worker its own share of the cores.

    A training run or a generation uses one torch thread per usable core; two workers that both think
    they own every core would fight over them. Pinned, each worker's runs see their share as the
    machine's cores, as a run on a 1-CPU Binder does. Children (kernels, services, training
    processes) inherit the affinity.
    """
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    mine = cpus[int(worker[2:]) % count::count]
    if len(cpus) >= count and mine:
        os.sched_setaffinity(0, mine)


#: Every core this run may use, before a worker pins itself to its share.
ALL_CORES = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()
_pin_this_worker()


def _one_core_cgroup() -> str:
    """A cgroup tree for the notebooks' kernels that says "1 CPU" (lessonlib's ``LESSONLIB_CGROUP_ROOT``; memory as the
    real one says where it is cgroup v2): what a worker's pinned kernels see anyway, and what keeps the local service
    they start to one torch thread when it floats over every core (:func:`float_the_service`)."""
    real, fake = Path("/sys/fs/cgroup"), Path(tempfile.mkdtemp(prefix="lessonlib-one-core-"))
    (fake / "cpu.max").write_text("100000 100000\n", encoding="utf-8")
    for name in ("memory.max", "memory.current", "memory.stat"):
        if (real / "cpu.max").exists() and (real / name).exists():
            (fake / name).symlink_to(real / name)
    return str(fake)


#: Set for the notebooks' kernels only (see :func:`_one_core_cgroup`); None where the run sets its own.
ONE_CORE_CGROUP = _one_core_cgroup() if len(ALL_CORES) > 1 and "LESSONLIB_CGROUP_ROOT" not in os.environ else None


def float_the_service() -> None:
    """Let the local service the notebooks share, and what it started (its reply worker, a job), run on any core.

    A notebook's kernel starts it, so it was pinned to that worker's core: the other worker's notebooks then had their
    replies and jobs made on a core busy with this worker's own work while their own core waited. It keeps the one
    torch thread it was started with (:data:`ONE_CORE_CGROUP`), so it never takes more than a core.
    """
    import psutil

    if not ALL_CORES:
        return
    try:
        pid = int((Path(os.environ["LESSONLIB_SERVICE_STATE"]) / "service.pid").read_text().strip())
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except (OSError, ValueError, KeyError, psutil.Error):
        return
    for process in processes:
        for thread in Path(f"/proc/{process.pid}/task").glob("*"):
            try:
                if os.sched_getaffinity(int(thread.name)) != ALL_CORES:
                    os.sched_setaffinity(int(thread.name), ALL_CORES)
            except OSError:  # a thread that has just ended
                pass

# The local service the notebooks start (for replies, and notebook 06's jobs) gets its own port and a
# fresh state folder for this test session, so it neither uses nor disturbs a learner's service, and
# outputs do not depend on earlier jobs; it is stopped at the end. Kernels inherit this environment.
os.environ["LESSONLIB_SERVICE_PORT"] = str(_free_port())
os.environ["LESSONLIB_SERVICE_STATE"] = tempfile.mkdtemp(prefix="lessonlib-service-")
# The English and the French notebook train the same runs (the same code: tests/test_translations.py): a run
# finished in one is replayed in the other (lessonlib.train.replay). Made by the first process (under
# pytest-xdist, the controller) and shared by its workers, which inherit it; removed at the end.
_OWN_RUN_CACHE = "LESSONLIB_RUN_CACHE" not in os.environ
os.environ.setdefault("LESSONLIB_RUN_CACHE", tempfile.mkdtemp(prefix="lessonlib-runs-"))


#: What LESSONLIB_CPU_WITHOUT says to play a CPU without native bf16.
WITHOUT_BF16 = "avx512_bf16,amx"
#: LESSONLIB_CPU_WITHOUT as the test run was started with (an instructor may play a CPU already).
STARTED_WITHOUT = os.environ.get("LESSONLIB_CPU_WITHOUT")
#: This CPU's numeric path as the test run was started ("bfloat16" or "float32").
NATIVE = system.cpu_numeric_path()
#: What the notebooks' cells reported, gathered in the process that prints the summary (under
#: pytest-xdist, from the workers' reports): notebook -> (path its outputs were computed in, path nbval
#: ran it in), and notebook (or "service") -> GB it held after its last cell.
_PATHS: dict[str, tuple] = {}
_USED: dict[str, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--numeric-path", choices=("other", "native"), default="other",
                     help="the numeric path notebook kernels run in: 'other' than the one the committed outputs were "
                          "computed in, where this CPU can take it (default), or this CPU's 'native' one")


def committed_path(notebook: Any) -> str | None:
    """The numeric path a committed notebook's outputs were computed in (its metadata), or None."""
    import json

    try:
        return json.loads(notebook.read_text(encoding="utf-8"))["metadata"]["lessonlib"]["numeric_path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cpu_without_for(notebook: Any, config: pytest.Config) -> str | None:
    """LESSONLIB_CPU_WITHOUT for the kernel that validates ``notebook``: a CPU without bf16 played where
    this one has it and the outputs were computed in bf16 (or nobody recorded in what)."""
    if config.getoption("numeric_path") == "other" and NATIVE == "bfloat16" and committed_path(notebook) in (None, "bfloat16"):
        return WITHOUT_BF16
    return STARTED_WITHOUT


def use_cpu_without(value: str | None) -> None:
    """Set LESSONLIB_CPU_WITHOUT for the kernels and services started from now on; a running local service
    of this test run in the other path is stopped (it starts again on demand, in this one)."""
    from lessonlib import service

    if os.environ.get("LESSONLIB_CPU_WITHOUT") == value:
        return
    if value is None:
        del os.environ["LESSONLIB_CPU_WITHOUT"]
    else:
        os.environ["LESSONLIB_CPU_WITHOUT"] = value
    service.stop()


@pytest.fixture()
def numeric_path_of_notebooks(request: pytest.FixtureRequest):
    """For a test that runs a notebook in its own JupyterLab: the numeric path nbval validates it in."""
    def use(notebook: Any) -> None:
        use_cpu_without(cpu_without_for(notebook, request.config))
    yield use
    use_cpu_without(STARTED_WITHOUT)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a notebook's kernel starts: the numeric path it will run in (its kernel and service inherit it)."""
    notebook = item.parent
    if type(item).__name__ != "IPyNbCell":
        return
    float_the_service()  # started by this notebook's kernel or another's, during an earlier cell
    if getattr(notebook, "kernel", None) is not None:
        return
    if ONE_CORE_CGROUP:  # inherited by the kernel about to start, and by what it starts (the service)
        os.environ["LESSONLIB_CGROUP_ROOT"] = ONE_CORE_CGROUP
    use_service_of(notebook.path)
    use_cpu_without(cpu_without_for(notebook.path, item.config))
    # reported with the cell (a user property), so that the summary has it under pytest-xdist too
    item.user_properties.append(("numeric_paths", (notebook.path.name, committed_path(notebook.path), system.cpu_numeric_path())))


#: One local service per language of notebooks (port, state folder): a translated notebook lists the jobs of its
#: own language's notebooks only, whichever worker ran the English ones before it.
_SERVICES: dict[str, tuple[str, str]] = {}


def use_service_of(notebook: Any) -> None:
    """Point the kernels started from now on at the local service of ``notebook``'s language (the English notebooks
    keep the session's; a switch stops the running one first)."""
    from lessonlib import service

    language = "en" if notebook.parent.name == "notebooks" else notebook.parent.name
    if not _SERVICES:
        _SERVICES["en"] = (os.environ["LESSONLIB_SERVICE_PORT"], os.environ["LESSONLIB_SERVICE_STATE"])
    if language not in _SERVICES:
        _SERVICES[language] = (str(_free_port()), tempfile.mkdtemp(prefix=f"lessonlib-service-{language}-"))
    port, state = _SERVICES[language]
    if os.environ["LESSONLIB_SERVICE_PORT"] != port:
        service.stop()
        os.environ["LESSONLIB_SERVICE_PORT"], os.environ["LESSONLIB_SERVICE_STATE"] = port, state


def _order(item: pytest.Item) -> int:
    """English notebooks first, then the tests, then the translated notebooks (notebooks/<language>/)."""
    path = item.path
    if path.suffix == ".ipynb":
        return 0 if path.parent.name == "notebooks" else 2
    return 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow English notebooks start first and a translated notebook runs as late as it can: by then the
    English one has finished the runs it replays (lessonlib.train.replay) rather than training them alongside it."""
    items.sort(key=_order)  # stable: the order within each group stays


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    from lessonlib import service

    service.stop()
    if _OWN_RUN_CACHE and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ["LESSONLIB_RUN_CACHE"], ignore_errors=True)



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


#: Run in a notebook's kernel after its last cell: what :data:`lessonlib.memory_shares.AFTER_RUN_ALL` does, but
#: the views' background work stops after its first result (``widgets.static.stop_background``): the
#: rest of notebook 08's study would take minutes and check nothing more. Prints the views' errors.
STOP_AFTER_RUN_ALL = """\
import sys as _sys
if "lessonlib.widgets.static" in _sys.modules:
    print("\\n".join(_sys.modules["lessonlib.widgets.static"].stop_background(after_results=1)), end="")
del _sys
"""


def _run_in_kernel(kernel: Any, code: str, timeout: float) -> str:
    """What ``code`` printed in nbval's kernel, and any error it raised."""
    msg_id = kernel.execute_cell_input(code, allow_stdin=False)
    printed = []
    while True:
        msg = kernel.get_message(stream="iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            printed.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(printed).strip()


def pytest_runtest_teardown(item: pytest.Item, nextitem: Any) -> None:
    notebook = item.parent
    if type(item).__name__ != "IPyNbCell" or (nextitem is not None and nextitem.parent is notebook):
        return  # not a notebook's last cell
    if ONE_CORE_CGROUP and os.environ.get("LESSONLIB_CGROUP_ROOT") == ONE_CORE_CGROUP:
        del os.environ["LESSONLIB_CGROUP_ROOT"]  # the tests that follow read the machine's own
    pid = getattr(getattr(getattr(getattr(notebook, "kernel", None), "km", None), "provisioner", None), "pid", None)
    if pid is None:
        return
    from lessonlib import memory_shares as binder

    # What the notebook left running in the background ends first (it is part of Run All's memory): the
    # data-size study of notebook 08 after its first size, which shows its table, chart and conclusion.
    errors = _run_in_kernel(notebook.kernel, STOP_AFTER_RUN_ALL, timeout=900)
    if errors:
        pytest.fail(f"{notebook.path.name}: its background work failed after Run All: {errors}", pytrace=False)
    (used, service), share = _tree_gb(pid), binder.share(notebook.path.name)
    if service > binder.SERVICE_GB:
        pytest.fail(f"the local service (started by {notebook.path.name}'s kernel) holds {service:.2f} GB, over its share of "
                    f"{binder.SERVICE_GB:.2f} GB in lessonlib/memory_shares.py", pytrace=False)
    if used > share:
        pytest.fail(f"{notebook.path.name}: its kernel (with what it started) holds {used:.2f} GB after Run All, over its share "
                    f"of {share:.2f} GB in lessonlib/memory_shares.py (Binder: {binder.BINDER_GB:.0f} GB for JupyterLab and every kernel). "
                    "Give memory back at the end (models.unload()), or run the heavy part in the local service.", pytrace=False)
    item.user_properties.append(("kernel_gb", (notebook.path.name, round(used, 2))))
    if service:
        item.user_properties.append(("kernel_gb", ("service", round(service, 2))))


#: Seconds each notebook's cells took (set-up, run and the checks after its last cell), by its path.
_SECONDS: dict[str, float] = {}
#: When the test session started (for the total against make test's 20-minute budget).
_STARTED: list[float] = []
#: What ``make test`` must stay within on 2 cores of a laptop CPU (AVX2, no bf16).
BUDGET_MINUTES = 20


def pytest_sessionstart(session: pytest.Session) -> None:
    import time

    _STARTED.append(time.monotonic())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Gather what the notebooks' cells reported (in this process, or sent by a pytest-xdist worker)."""
    notebook = report.nodeid.split("::", 1)[0]
    if notebook.endswith(".ipynb"):
        _SECONDS[notebook] = _SECONDS.get(notebook, 0.0) + report.duration
    for name, value in getattr(report, "user_properties", ()):
        if name == "numeric_paths":
            _PATHS[value[0]] = tuple(value[1:])
        elif name == "kernel_gb":
            _USED[value[0]] = value[1]


def _kernels() -> tuple[str, bool]:
    """The math kernels this run's processes take ("AVX-512" or "AVX2"), and whether a laptop's AVX2 is played."""
    if "avx512" in system.played_without() or os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("avx2", "default"):
        return "AVX2 (played)", True
    return ("AVX-512", False) if system.cpu_info()["avx512"] else ("AVX2", True)


def _notebook_lines() -> list[str]:
    """One line per language: each notebook validated, its time and the numeric path it was checked in."""
    from pathlib import Path

    lines = []
    for language in sorted({Path(nb).parent.name for nb in _SECONDS}, key=lambda name: name != "notebooks"):
        mine = sorted(nb for nb in _SECONDS if Path(nb).parent.name == language)
        ran = sorted({_PATHS.get(Path(nb).name, (None, "?"))[1] for nb in mine})
        label = "English" if language == "notebooks" else {"fr": "French"}.get(language, language)
        cells = " · ".join(f"{Path(nb).name[:2]} {_SECONDS[nb]:.0f} s" for nb in mine)
        lines.append(f"notebooks, {label} ({len(mine)}, {sum(_SECONDS[nb] for nb in mine) / 60:.1f} min, validated in "
                     f"{'/'.join(ran)}): {cells}")
    return lines


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    import time

    for line in _notebook_lines():
        terminalreporter.write_line(line)
    if _STARTED and _SECONDS:  # a whole run (notebooks included), not a few tests
        minutes, seconds = divmod(round(time.monotonic() - _STARTED[0]), 60)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        kernels, laptop = _kernels()
        terminalreporter.write_line(
            f"pytest: {minutes}:{seconds:02d} on {cores} cores, {kernels} kernels; the budget is "
            f"{BUDGET_MINUTES} minutes on 2 cores of a laptop CPU (AVX2, no bf16)"
            + ("" if laptop else " (this CPU has AVX-512, faster than a laptop's AVX2: LESSONLIB_CPU_WITHOUT=avx512 plays the laptop)"))
    paths = _PATHS
    if paths:
        pairs = sorted(set(paths.values()), key=str)
        terminalreporter.write_line("notebooks: " + "; ".join(
            f"outputs computed in {committed or 'an unrecorded path'}, validated in {ran}"
            + (" (played: this CPU computes bf16 natively)" if ran == "float32" and NATIVE == "bfloat16" else "")
            for committed, ran in pairs))
        if any(committed == ran for committed, ran in pairs):
            terminalreporter.write_line("notebooks: some ran in the path their outputs were computed in, so this run does not "
                                        "show that the other path reproduces them (a CPU with native bf16 can show it)")
    used = dict(_USED)
    if used:
        from lessonlib import memory_shares as binder

        service = used.pop("service", None)
        terminalreporter.write_line("notebook kernels after Run All (GB RSS, share): " + ", ".join(
            f"{name[:2]} {gb:.2f}/{binder.share(name):.2f}" for name, gb in sorted(used.items()))
            + (f"; the local service {service:.2f}/{binder.SERVICE_GB:.2f}" if service is not None else ""))
