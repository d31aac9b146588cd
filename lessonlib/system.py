"""What this machine offers: package versions, CPU cores and features, memory, the C library, a GPU, the network.

Scope: plain facts read from package metadata (nothing imported), ``/proc`` and ``psutil``; the
doctor (:mod:`lessonlib.doctor`) turns them into a report, and the training plan reads CPU features
and memory from here. Nothing here imports another lessonlib module but :mod:`lessonlib.settings`.

>>> sorted(cpu_info())
['amx', 'avx2', 'avx512', 'avx512_bf16', 'cores', 'logical_cpus', 'model']
"""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from typing import Any

from . import settings

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
