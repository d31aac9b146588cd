"""Settings chosen for the machine a run is on: device, threads, bf16, activation checkpointing.

Measured, not guessed (see ``benchmarks/train_settings.py`` and ``../shared/FACTS.md``): bf16
autocast costs about 3x per step on a CPU without native bf16 and is ~15% faster than fp32 on one
with ``avx512_bf16``/AMX; activation checkpointing saves ~0.8 GB for a batch of 2 x 256 tokens at
~10-25% more compute. So on a CPU: bf16 exactly when the CPU has it natively, checkpointing only
when the memory estimate exceeds the budget, one torch thread per usable core. On a GPU: bf16 when
supported, no checkpointing for small models.

>>> from lessonlib.train.config import RunConfig
>>> plan = plan_for(RunConfig(bf16="off", activation_checkpointing="off"), device="cpu", cpu={"cores": 2, "avx512_bf16": False, "amx": False})
>>> plan.bf16, plan.activation_checkpointing, plan.threads
(False, False, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import RunConfig

#: Resident memory of Python + torch + transformers + TRL once imported (GB, measured ~0.45).
BASE_GB = 0.45
#: Activation memory per token in a batch (GB), SmolLM2-135M LoRA, without / with checkpointing.
#: Calibrated against measured peaks (benchmarks/train_settings.py); other models scale by size.
ACTIVATION_GB_PER_TOKEN = {False: 0.0015, True: 0.00065}
SMOLLM2_PARAMS = 134.5e6


@dataclass
class MachinePlan:
    """What the runner will do on this machine, and why."""

    device: str  # "cpu" or "cuda"
    threads: int  # torch intra-op threads
    bf16: bool  # bf16 autocast
    activation_checkpointing: bool  # recompute activations in the backward pass
    estimated_peak_gb: float  # resident memory the run should need
    reasons: list[str] = field(default_factory=list)  # one line per decision, shown to the learner


def estimate_peak_gb(cfg: RunConfig, *, parameters: float = SMOLLM2_PARAMS, checkpointing: bool = False) -> float:
    """Rough peak RSS of a CPU run: imports + fp32 weights (+ gradients and Adam for full) + activations."""
    weights = parameters * 4 / 1e9
    training_state = weights * 3 if cfg.method == "full" else 0.01
    scale = parameters / SMOLLM2_PARAMS
    activations = cfg.batch_size * cfg.max_length * ACTIVATION_GB_PER_TOKEN[checkpointing] * scale
    return round(BASE_GB + weights + training_state + activations, 2)


def plan_for(cfg: RunConfig, *, device: str | None = None, cpu: dict[str, Any] | None = None, parameters: float = SMOLLM2_PARAMS) -> MachinePlan:
    """Decide device, threads, bf16 and checkpointing for ``cfg`` on this machine."""
    from ..system import cpu_info

    if device is None:
        from ..models import pick_device

        device = pick_device()
    cpu = cpu or cpu_info()
    reasons: list[str] = []
    if device.startswith("cuda"):
        import torch

        bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and torch.cuda.is_bf16_supported())
        ckpt = cfg.activation_checkpointing == "on"
        reasons.append(f"GPU: bf16 {'on' if bf16 else 'off'}, activation checkpointing {'on' if ckpt else 'off'}")
        return MachinePlan(device, cpu.get("cores", 1), bf16, ckpt, estimate_peak_gb(cfg, parameters=parameters, checkpointing=ckpt), reasons)

    threads = cfg.threads or max(1, int(cpu.get("cores", 1)))
    reasons.append(f"{threads} torch thread(s): one per usable core")
    native_bf16 = bool(cpu.get("avx512_bf16") or cpu.get("amx"))
    if cfg.bf16 == "on":
        bf16 = True
        reasons.append("bf16 on (asked)" + ("" if native_bf16 else "; this CPU has no native bf16: expect ~3x slower steps"))
    elif cfg.bf16 == "off":
        bf16 = False
        reasons.append("bf16 off (asked)")
    else:
        # Measured (benchmarks/train_settings.py): with avx512_bf16/AMX, bf16 autocast beat fp32 by ~15%;
        # without native bf16 it costs ~3x (FACTS). So: on exactly when the CPU has it.
        bf16 = native_bf16
        reasons.append("bf16 autocast on: this CPU has native bf16 (avx512_bf16/AMX), faster than fp32 here" if native_bf16
                       else "bf16 off: no native bf16 on this CPU, where autocast runs ~3x slower than fp32")
    if cfg.activation_checkpointing in {"on", "off"}:
        ckpt = cfg.activation_checkpointing == "on"
        reasons.append(f"activation checkpointing {cfg.activation_checkpointing} (asked)")
    else:
        without = estimate_peak_gb(cfg, parameters=parameters, checkpointing=False)
        ckpt = without > cfg.memory_budget_gb
        reasons.append(
            f"activation checkpointing {'on' if ckpt else 'off'}: estimated peak {without:.2f} GB without it, budget {cfg.memory_budget_gb:.2f} GB"
        )
    return MachinePlan("cpu", threads, bf16, ckpt, estimate_peak_gb(cfg, parameters=parameters, checkpointing=ckpt), reasons)
