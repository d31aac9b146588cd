"""The whole course as a Binder learner walks it: one JupyterLab, every notebook run in order, no kernel shut down.

A Jupyter server (``python -m jupyterlab``, as ``make lab`` starts it) serves the repository; for
each notebook in order the script opens a session through the server's REST API (the kernel the
server starts, in the notebook's folder, as JupyterLab's *Run All* gets) and runs every code cell
through the kernel's websocket, then leaves the kernel running, as a learner who closes the tab
does. Meanwhile a thread samples the **proportional set size (PSS)** of the server and everything
under it (kernels, the local service a notebook starts, training workers) every 0.25 s.

Reported: each notebook's run time, the total PSS when it ends and its peak, each kernel's own PSS at
the end, and the walk's peak — to compare with Binder's 2 GB for everything (see README, "Binder").
Times are this machine's; ``--cpus N`` pins the whole tree to N cores (``taskset``) to play a
smaller machine. The service and the server get a temporary state and port; nothing is left
running.

    python benchmarks/binder_walk.py                       # all notebooks
    python benchmarks/binder_walk.py --notebooks 00 01 02  # a prefix each
    python benchmarks/binder_walk.py --json runs/binder-walk.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "tests"))

from jupyter_helpers import Server, free_port


class Sampler(threading.Thread):
    """Samples the total PSS of a process and its descendants; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.root, self.peak, self.stopping = psutil.Process(pid), 0, threading.Event()

    def total(self) -> int:
        import psutil

        total = 0
        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def run(self) -> None:
        while not self.stopping.is_set():
            self.peak = max(self.peak, self.total())
            self.stopping.wait(0.25)

    def reset(self) -> None:
        self.peak = self.total()


def kernel_pss(server: Server, kernels: dict[str, str]) -> dict[str, float]:
    """Each notebook's kernel PSS (GiB) with what it started (a service a notebook started counts to it)."""
    import psutil

    out = {}
    for child in psutil.Process(server.process.pid).children():
        try:
            command = " ".join(child.cmdline())
            name = next((nb for kernel, nb in kernels.items() if kernel in command), command[-40:])
            out[name] = round(sum(p.memory_full_info().pss for p in [child, *child.children(recursive=True)]) / 2**30, 2)
        except psutil.NoSuchProcess:
            pass
    return dict(sorted(out.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", default=None, help="prefixes of the notebooks to run (default: all, in order)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a cell may take")
    parser.add_argument("--cpus", type=int, default=None, help="pin everything to this many cores")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in args.notebooks)]
    state = tempfile.mkdtemp(prefix="lessonlib-walk-")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LESSONLIB_OFFLINE": "1", "LESSONLIB_SERVICE_PORT": str(free_port()),
           "LESSONLIB_SERVICE_STATE": state, "JUPYTER_RUNTIME_DIR": os.path.join(state, "runtime")}
    server = Server(env, cpus=args.cpus, lab=True)
    sampler = Sampler(server.process.pid)
    sampler.start()
    rows, walk_peak, kernels = [], 0, {}
    try:
        idle = sampler.total()
        print(f"Jupyter server alone: {idle / 2**30:.2f} GiB PSS")
        for path in paths:
            sampler.reset()
            kernel, seconds, error = server.run_notebook(path, ROOT, args.timeout)
            kernels[kernel] = path.name
            time.sleep(1.0)  # what the notebook left behind, settled
            after, peak = sampler.total(), sampler.peak
            walk_peak = max(walk_peak, peak)
            rows.append({"notebook": path.name, "seconds": round(seconds, 1), "pss_after_gib": round(after / 2**30, 2),
                         "pss_peak_gib": round(peak / 2**30, 2), "error": error})
            print(f"{path.name:32s} {seconds:7.1f} s   total PSS after {after / 2**30:5.2f} GiB   peak {peak / 2**30:5.2f} GiB"
                  + (f"   ERROR {error}" if error else ""), flush=True)
        shares = kernel_pss(server, kernels)
    finally:
        sampler.stopping.set()
        server.stop()
        sys.path.insert(0, str(ROOT))
        os.environ["LESSONLIB_SERVICE_STATE"] = state
        from lessonlib import service

        service.stop()
        shutil.rmtree(state, ignore_errors=True)
    print(f"\nwalk peak: {walk_peak / 2**30:.2f} GiB PSS (Binder: 2 GiB for everything); slowest notebook "
          f"{max(r['seconds'] for r in rows):.0f} s (bar: 300 s)")
    print("each kernel (with what it started) at the end, GiB PSS:")
    for name, gib in shares.items():
        print(f"  {name:32s} {gib:5.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"notebooks": rows, "peak_gib": round(walk_peak / 2**30, 2), "kernels": shares}, indent=1))
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
