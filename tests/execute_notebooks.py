"""Execute notebooks in place and leave them clean and deterministic (``make notebooks``).

Runs each notebook top to bottom in a fresh kernel from the notebook's folder (with a local service
of its own, on a free port with a fresh state folder, stopped at the end), then removes
what changes from run to run without meaning anything: execution timing metadata, kernel
metadata other than the kernelspec and language, and widget state. The notebook's metadata records
the numeric path its outputs were computed in (``lessonlib.system.cpu_numeric_path``): ``make test``
validates them in the other path where this CPU can take it (``conftest.py``). Outputs are kept, so that
strict ``pytest --nbval`` compares them.

    python tests/execute_notebooks.py notebooks/*.ipynb
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def clean(nb: nbformat.NotebookNode, numeric_path: str) -> nbformat.NotebookNode:
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        # the numbers the outputs were computed in: the test run validates them in the other one (conftest.py)
        "lessonlib": {"numeric_path": numeric_path},
    }
    for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        cell.execution_count = count
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if "execution_count" in output:
                output["execution_count"] = count
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def execute(path: Path, timeout: int = 900) -> None:
    from lessonlib import system
    from lessonlib.memory_shares import AFTER_RUN_ALL

    nb = nbformat.read(path, as_version=4)
    # One more cell, not saved: it waits for what the notebook's views run in the background, whose final
    # state then updates the outputs that show them (display ids), so the notebook is saved with it.
    nb.cells.append(nbformat.v4.new_code_cell(AFTER_RUN_ALL))
    # coalesce_streams: a cell's stdout in one output, with what a carriage return overwrote dropped, as nbval
    # compares it (a live progress line leaves only its final summary)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", coalesce_streams=True,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        nb.cells.pop()
    nbformat.write(clean(nb, system.cpu_numeric_path()), path)
    print(f"executed {path}")
    if path.name == "07-autotrain.ipynb" and path.parent.name == "notebooks":  # English: the French one shows the same recording
        from lessonlib.cloud.autotrain import RECORDED_RUN

        record_autotrain_run(nb, RECORDED_RUN)


def record_autotrain_run(nb: nbformat.NotebookNode, out: Path) -> None:
    """Notebook 07 run where AutoTrain is installed (``make autotrain``): keep what its AutoTrain cells
    printed, which the notebook shows, labelled as recorded, where AutoTrain is absent."""
    import importlib.metadata as meta
    import re
    import subprocess

    from lessonlib.cloud import autotrain

    printed = {marker: "".join("".join(o.get("text", "")) for c in nb.cells if marker in "".join(c.source)
                               for o in c.get("outputs", []))
               for marker in ("autotrain.run(demo)", "AutoTrain against the course's recipe")}
    if not printed["autotrain.run(demo)"] or "recorded (not run here)" in printed["autotrain.run(demo)"]:
        return  # not a notebook 07 run with AutoTrain
    versions = subprocess.run([str(autotrain.VENV / "bin" / "python"), "-c", ("import importlib.metadata as m; print(', '.join("
                               "f'{p} {m.version(p)}' for p in ('autotrain-advanced', 'transformers', 'trl', 'peft', 'torch')))")],
                              capture_output=True, text=True, check=False).stdout.strip()
    text = "\n".join(printed.values())
    text = re.sub(r"/\S*/notebooks/", "notebooks/", text)  # this machine's folders
    from datetime import date

    out.parent.mkdir(exist_ok=True)
    out.write_text(f"Recorded on {date.today()} by `make autotrain`, then `make notebooks` on a CPU without a GPU "
                   f"(lessonlib {meta.version('lessonlib')}; {versions}).\n\n{text}", encoding="utf-8")
    print(f"recorded AutoTrain's run in {out}")


if __name__ == "__main__":
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        os.environ["LESSONLIB_SERVICE_PORT"] = str(sock.getsockname()[1])
    os.environ["LESSONLIB_SERVICE_STATE"] = tempfile.mkdtemp(prefix="lessonlib-service-")
    # an English and a French notebook train the same runs: the second replays the first (lessonlib.train.replay)
    own_runs = None if "LESSONLIB_RUN_CACHE" in os.environ else tempfile.mkdtemp(prefix="lessonlib-runs-")
    if own_runs:
        os.environ["LESSONLIB_RUN_CACHE"] = own_runs
    try:
        for name in sys.argv[1:]:
            execute(Path(name))
    finally:
        import shutil

        from lessonlib import service

        service.stop()
        if own_runs:
            shutil.rmtree(own_runs, ignore_errors=True)
