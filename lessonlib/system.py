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
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from . import settings
from .i18n import _

# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None; imports nothing."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def in_notebook_kernel() -> bool:
    """Whether this process is a running Jupyter kernel (imported ``ipykernel`` is not enough)."""
    import sys

    kernel_app = sys.modules.get("ipykernel.kernelapp")
    return bool(kernel_app is not None and kernel_app.IPKernelApp.initialized())


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


_CACHES: list[Callable[[], object]] = []  # what give_back_memory() drops first (registered by the modules holding them)


def forget_on_give_back(drop: Callable[[], object]) -> None:
    """Have :func:`give_back_memory` call ``drop`` first: a module's cache that reloads on its next use
    (:mod:`lessonlib.tokens` registers its encodings), without this module importing that one."""
    if drop not in _CACHES:
        _CACHES.append(drop)


def give_back_memory() -> None:
    """Drop the registered caches, collect garbage, then hand the C heap's free pages back to the system
    (``malloc_trim``, glibc only).

    Freed tensors often stay in the process's heap, counted against the container, until trimmed.
    """
    import gc

    for drop in _CACHES:
        drop()
    gc.collect()
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


def heap_free_gb() -> float:
    """Free blocks inside this process's C heap (GB): memory it holds, and counts against the container,
    that it cannot hand back (``malloc_trim`` returns whole free pages only) but reuses for its next
    allocations. A kernel that trained holds a few hundred MB of them. 0.0 where glibc's ``mallinfo2``
    (glibc 2.33+) is missing.

    >>> heap_free_gb() >= 0.0
    True
    """
    import ctypes

    libc = glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return 0.0

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                         "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2().fordblks / 1e9


@dataclass
class ContainerLimits:
    """What the container (cgroup) allows this process, as read from its files; ``None`` where it sets no limit."""

    version: int | None  # cgroup version found (1 or 2), None when no cgroup files were readable
    cpu_quota: float | None  # CPUs' worth of time per period (Binder: often 0.5-1), None: no quota
    memory_limit_gb: float | None  # the most memory the container may use
    memory_used_gb: float | None  # what it uses now (all its processes: JupyterLab, every kernel), less the file cache the kernel can reclaim (memory_in_use)

    @property
    def memory_free_gb(self) -> float | None:
        """What is left under the limit (None without a limit)."""
        if self.memory_limit_gb is None or self.memory_used_gb is None:
            return None
        return max(0.0, self.memory_limit_gb - self.memory_used_gb)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def read_memory_stat(path: Path) -> dict[str, int]:
    """A cgroup's ``memory.stat`` as numbers by name; empty where it cannot be read."""
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if value.isdigit():
            out[name] = int(value)
    return out


def memory_in_use(usage: int, stat: dict[str, int]) -> int:
    """Bytes of a cgroup's memory the kernel cannot give to a new allocation without an OOM kill or thrashing.

    A cgroup's usage (``memory.current`` in v2, ``memory.usage_in_bytes`` in v1) counts every page it
    has touched, page cache included; under a limit that cache fills whatever is free, so the usage sits
    at the limit. The kernel reclaims clean file pages when something needs room; what it cannot
    reclaim is anonymous memory, shmem, unevictable and kernel memory; and the file pages that processes
    have mapped and use again (the libraries' code, a model's mapped weights) come straight back when
    dropped. So: the usage less the file cache it could drop, where the mapped pages still on the
    kernel's active list are the working set that stays, and dirty pages wait to be written first.
    ``stat``: ``memory.stat``, v2 keys (``file``, ``file_mapped``, ...) or v1 keys (``total_cache``,
    ``total_mapped_file``, ...; the hierarchical totals, which count the child cgroups); missing keys
    count as 0, so without ``memory.stat`` the whole usage is in use.

    >>> v2 = {"anon": 800, "file": 1000, "shmem": 0, "file_mapped": 300, "active_file": 500, "inactive_file": 500}
    >>> memory_in_use(2000, v2)  # 2000 less the 700 of clean file cache nobody maps
    1300
    """
    v1 = any(name.startswith("total_") for name in stat)  # v1 also has local counters under v2's names (active_file, ...): not the totals

    def get(v2_name: str, v1_name: str) -> int:
        return stat.get(v1_name if v1 else v2_name, 0)

    file_lru = get("active_file", "total_active_file") + get("inactive_file", "total_inactive_file")
    mapped_hot = min(get("file_mapped", "total_mapped_file"), get("active_file", "total_active_file"))
    waiting = get("file_dirty", "total_dirty") + get("file_writeback", "total_writeback")
    return max(0, usage - max(0, file_lru - mapped_hot - waiting))


#: A v1 memory limit this large means "no limit" (the kernel writes the page-rounded maximum).
_NO_LIMIT_BYTES = 1 << 60


#: The old name of :class:`ContainerLimits` (beside :mod:`lessonlib.limits`, the limits of fine-tuning), kept for one release.
Limits = ContainerLimits


def cgroup_limits(root: str | Path | None = None) -> ContainerLimits:
    """The CPU quota and the memory limit and use of this container, from cgroup v2 or v1 files under ``root``.

    ``os.cpu_count()``, ``sched_getaffinity`` and ``psutil.virtual_memory()`` report the *host*; on
    Binder the container gets a fraction of it. v2: ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"),
    ``memory.max``, ``memory.current``; v1: ``cpu/cpu.cfs_quota_us`` (-1: none) and
    ``cpu/cpu.cfs_period_us``, ``memory/memory.limit_in_bytes`` and ``memory/memory.usage_in_bytes``.
    ``root`` defaults to ``LESSONLIB_CGROUP_ROOT`` (a test's fake tree), else ``/sys/fs/cgroup``.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "cpu.max").write_text("50000 100000"); _ = (folder / "memory.max").write_text("2147483648")
    >>> _ = (folder / "memory.current").write_text("1073741824")
    >>> limits = cgroup_limits(folder)
    >>> limits.version, limits.cpu_quota, limits.memory_limit_gb, round(limits.memory_free_gb, 2)
    (2, 0.5, 2.15, 1.08)
    """
    root = Path(root or settings.get("LESSONLIB_CGROUP_ROOT"))
    gb = lambda n: None if n is None or n >= _NO_LIMIT_BYTES else round(n / 1e9, 2)
    if (root / "cpu.max").exists() or (root / "memory.max").exists():
        quota = None
        fields = (_read(root / "cpu.max") or "max").split()
        if fields and fields[0] != "max" and len(fields) == 2 and _number(fields[1]):
            quota = int(fields[0]) / int(fields[1])
        limit = _read(root / "memory.max")
        used = _number(_read(root / "memory.current"))
        used = None if used is None else memory_in_use(used, read_memory_stat(root / "memory.stat"))
        return ContainerLimits(2, quota, gb(_number(limit)) if limit != "max" else None, gb(used))
    quota_us = _number(_read(root / "cpu" / "cpu.cfs_quota_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_quota_us"))
    period_us = _number(_read(root / "cpu" / "cpu.cfs_period_us") or _read(root / "cpu,cpuacct" / "cpu.cfs_period_us"))
    limit = _number(_read(root / "memory" / "memory.limit_in_bytes"))
    used = _number(_read(root / "memory" / "memory.usage_in_bytes"))
    used = None if used is None else memory_in_use(used, read_memory_stat(root / "memory" / "memory.stat"))
    if quota_us is None and limit is None and used is None:
        return ContainerLimits(None, None, None, None)
    quota = quota_us / period_us if quota_us is not None and quota_us > 0 and period_us else None
    return ContainerLimits(1, quota, gb(limit), gb(used) if used is not None else None)


def usable_cores(limits: ContainerLimits | None = None) -> int:
    """CPU cores this process can really use: the affinity mask, lowered to the cgroup CPU quota (at least 1).

    A 0.5-CPU quota on a 16-core host is 1 core, not 16: more torch threads than that only wait for
    their turn and slow every step.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = (limits or cgroup_limits()).cpu_quota
    if quota is not None:
        cores = min(cores, max(1, int(quota)))
    return max(1, cores)


#: The variables that make PyTorch (``ATEN_CPU_CAPABILITY``), oneDNN and MKL take their AVX2 kernels on a CPU that has
#: AVX-512: each library reads its own once, when torch loads.
AVX2_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
#: Features that a CPU without the first has not either (no CPU has AMX or avx512_bf16 without AVX-512).
_IMPLIED_MISSING = {"avx512": ("avx512_bf16", "amx")}


def played_without() -> set[str]:
    """The CPU features ``LESSONLIB_CPU_WITHOUT`` plays as missing, with those their absence implies.

    >>> os.environ["LESSONLIB_CPU_WITHOUT"] = "avx512"
    >>> sorted(played_without())
    ['amx', 'avx512', 'avx512_bf16']
    >>> del os.environ["LESSONLIB_CPU_WITHOUT"]
    """
    names = set(settings.get("LESSONLIB_CPU_WITHOUT"))
    for name in list(names):
        names.update(_IMPLIED_MISSING.get(name, ()))
    return names


def play_cpu(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Where ``LESSONLIB_CPU_WITHOUT`` names ``avx512``: make this process's math libraries run as on such a CPU.

    Playing only the missing features changes lessonlib's choices (fp32 instead of bf16) but leaves PyTorch, oneDNN
    and MKL on their AVX-512 kernels, about 1.5x faster than a laptop's AVX2 ones. This sets :data:`AVX2_KERNELS` in
    the environment (a variable already set is kept), so that torch takes the AVX2 kernels when it loads, in this
    process and in every process it starts (notebook kernels, the local service, training workers). ``import
    lessonlib`` calls it: before torch loads, in any process that imports lessonlib first. Returns what it set.

    >>> env = {"LESSONLIB_CPU_WITHOUT": "avx512"}
    >>> play_cpu(env)
    {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2', 'MKL_ENABLE_INSTRUCTIONS': 'AVX2'}
    >>> play_cpu({"LESSONLIB_CPU_WITHOUT": "avx512_bf16,amx"})
    {}
    """
    environ = os.environ if environ is None else environ
    if "avx512" not in (part.strip() for part in environ.get("LESSONLIB_CPU_WITHOUT", "").split(",")):
        return {}
    added = {name: value for name, value in AVX2_KERNELS.items() if name not in environ}
    environ.update(added)
    return added


def torch_kernels() -> str | None:
    """The kernels torch runs here (``"AVX512"``, ``"AVX2"``, ...), if torch is loaded in this process; else None."""
    import sys

    torch = sys.modules.get("torch")
    try:
        return torch.backends.cpu.get_cpu_capability() if torch is not None else None
    except AttributeError:  # pragma: no cover - an older torch
        return None


def cpu_info() -> dict[str, Any]:
    """Cores usable by this process (affinity and cgroup quota) and the CPU features that matter for training speed.

    ``LESSONLIB_CPU_WITHOUT`` (features separated by commas, e.g. ``avx512_bf16,amx``) reports those
    as absent: it plays a CPU without them, to measure the paths such a CPU takes
    (``benchmarks/binder_walk.py --without-bf16``).

    >>> sorted(cpu_info())
    ['amx', 'avx2', 'avx512', 'avx512_bf16', 'cores', 'logical_cpus', 'model']
    """
    usable = usable_cores()
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
    features = {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_bf16" in flags or "amx_tile" in flags,
    }
    for name in played_without():
        if name in features:
            features[name] = False
    return {"model": model, "cores": usable, "logical_cpus": os.cpu_count() or usable, **features}


def cpu_numeric_path(cpu: dict[str, Any] | None = None) -> str:
    """``"bfloat16"`` on a CPU that computes bf16 natively (``avx512_bf16`` or AMX), else ``"float32"``.

    Replies and training take this path on a CPU (:func:`lessonlib.models.generation_dtype`,
    :func:`lessonlib.train.plan_for`): the two give slightly different numbers (greedy decoding
    follows the larger logit, and rounding moves it now and then), so what a notebook shows of a
    reply or a loss differs between the two kinds of CPU.

    >>> cpu_numeric_path({"avx512_bf16": False, "amx": False})
    'float32'
    """
    cpu = cpu_info() if cpu is None else cpu
    return "bfloat16" if cpu.get("avx512_bf16") or cpu.get("amx") else "float32"


def memory_gb() -> dict[str, float]:
    """Total and available memory in GB, honouring a container's cgroup limit when lower."""
    total = available = 0.0
    try:
        import psutil

        vm = psutil.virtual_memory()
        total, available = vm.total / 1e9, vm.available / 1e9
    except ImportError:  # pragma: no cover - psutil is a requirement
        pass
    limits = cgroup_limits()
    if limits.memory_limit_gb is not None and limits.memory_limit_gb < total:
        total = limits.memory_limit_gb
        available = min(available, limits.memory_free_gb if limits.memory_free_gb is not None else total)
    return {"total": round(total, 1), "available": round(available, 1)}


def gpu_name() -> str | None:
    """Name of the first CUDA GPU torch can use, or None.

    torch is imported (~0.2 GB) only where a GPU driver is present (NVIDIA's or ROCm's).
    """
    import shutil

    if not (Path("/proc/driver/nvidia/gpus").exists() or Path("/dev/kfd").exists() or shutil.which("nvidia-smi")):
        return None
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


def memory_shortfall(need_gb: float, limits: ContainerLimits | None = None) -> str | None:
    """``None`` when ``need_gb`` more memory fits now, else one line with the numbers.

    Inside a container with a memory limit (Binder: 2 GB for JupyterLab and every kernel), the room
    is the limit less what the container uses; elsewhere, what the system has available.

    >>> memory_shortfall(1.0, ContainerLimits(2, None, 2.0, 0.5)) is None
    True
    >>> print(memory_shortfall(1.2, ContainerLimits(2, None, 2.0, 1.3)))
    needs about 1.2 GB more memory, and 0.7 GB is free: this container may use 2.0 GB and 1.3 GB is in use
    """
    limits = limits or cgroup_limits()
    if limits.memory_limit_gb is not None and limits.memory_free_gb is not None:
        free = limits.memory_free_gb
        where = _("this container may use {limit:.1f} GB and {used:.1f} GB is in use").format(limit=limits.memory_limit_gb,
                                                                                               used=limits.memory_used_gb)
    else:
        import psutil

        free = psutil.virtual_memory().available / 1e9
        where = _("that is what this machine has available")
    if need_gb <= free:
        return None
    return _("needs about {need:.1f} GB more memory, and {free:.1f} GB is free: {where}").format(need=need_gb, free=free, where=where)
