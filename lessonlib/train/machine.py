"""The machine plan: the recipe's public settings chosen for the machine a run is on, and the optional measures.

The plan decides what TRL's ``SFTConfig`` and ``from_pretrained`` are given (device, threads, bf16,
how the frozen weights are stored, QLoRA, padding-free batches, activation checkpointing) and which
optional measures of :mod:`lessonlib.train.optimizations` to switch on, each with a line in ``reasons``
(measures that cannot be used here are in ``skipped``, with why). The choices follow measurements (``benchmarks/train_settings.py`` on CPUs with and without ``avx512_bf16``,
``benchmarks/gpu_check.py`` on a GPU), whose figures are in ``benchmarks/results/training-plan-2026-11.md``:

* bf16 autocast is slow on a CPU without native bf16 and a little faster than fp32 with ``avx512_bf16``/AMX: on
  exactly when the CPU has it natively. Under bf16 autocast the frozen weights are only ever read as bf16, so a
  LoRA run stores them in bf16 (the adapters stay fp32).
* Padding-free batches (TRL's ``padding_free``): the examples of a step end to end in one row, fewer tokens than
  padded rows. TRL then does not cut examples to ``max_length``, so the plan uses them only when the longest
  example fits.
* Without native bf16 a LoRA run computes in fp32 and picks the first of three that fits the budget: plain (the
  fastest), lean (the ``lean_fp32`` optimization: less memory, a little slower), lean with activation
  checkpointing (the least memory, slower still). Budgets below the smallest estimate get the smallest plan and a
  note on what lowers it.
* Activation checkpointing saves memory and costs time: on only when the memory estimate for the longest batch
  exceeds the budget.
* An fp32 run still over the budget: one example a forward pass (``micro_batch``), the step's examples added up by
  gradient accumulation, the same update (TRL divides the loss by the step's tokens).
* On a GPU: bf16 where supported, no checkpointing unless asked, padding-free batches, and 4-bit QLoRA only when the
  bf16 weights would take over a quarter of the GPU's memory and ``bitsandbytes`` is installed.

>>> from lessonlib.train.config import RunConfig
>>> plan = plan_for(RunConfig(bf16="off", activation_checkpointing="off"), device="cpu", cpu={"cores": 2, "avx512_bf16": False, "amx": False})
>>> plan.bf16, plan.weights_dtype, plan.activation_checkpointing, plan.threads
(False, 'float32', False, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .. import system
from ..errors import LessonError
from ..i18n import _
from .config import RunConfig

#: Resident memory of Python + torch + transformers + TRL once imported (GB, measured ~0.45).
BASE_GB = 0.45
#: What the plan leaves free in a container with a memory limit (GB): JupyterLab, the kernels and the
#: service keep moving while a run trains (a cell runs, a plot draws), and the estimates are calibrated on two
#: CPUs only (an AVX2 EPYC for fp32, an avx512_bf16 EPYC for bf16). Walked on a played 2 GiB Binder
#: (benchmarks/binder_walk.py), runs planned without it reached the limit.
CONTAINER_RESERVE_GB = 0.15
#: Activation memory per token of the longest step (GB), SmolLM2-135M LoRA with the compact loss head and the
#: heap trimmed, without / with checkpointing: (peak - imports - weights) / 448 tokens, the default run's longest
#: step (1.64 and 1.28 GB, 2-core AVX2 EPYC, no pad tokens); the plan multiplies by batch_size x max_length. Other
#: models scale by size.
ACTIVATION_GB_PER_TOKEN = {False: 0.00145, True: 0.00062}
#: The same under bf16 autocast (CPUs with native bf16), where most activations are bf16: session 2's calibration
#: on an avx512_bf16 CPU (0.0014 GB a token, padded batches, no trimming), against the fp32 figure above. Notebook
#: 08's run (32 steps of up to 2 x 256 tokens, compact loss head, heap trimmed, ``onednn_cache``) without
#: checkpointing: 1.47 GB measured, 1.43 estimated.
BF16_ACTIVATION_SHARE = 0.97
#: What a bf16 run with checkpointing and the compact loss head holds more (GB), whatever the step's size: that run
#: with checkpointing peaked at 1.21 GB for 1.03 estimated, and at the same with 1 example a step instead of 2. Without
#: the compact loss head, the full head's figure (measured in fp32) already counts more than the bf16 runs use.
BF16_CHECKPOINTING_GB = 0.18
#: What oneDNN's kernel cache holds more at its default size (1,024 shapes) than with ``onednn_cache`` (64) in a bf16
#: run: 1.33 against 1.21 GB for the run above.
ONEDNN_DEFAULT_CACHE_GB = 0.12
SMOLLM2_PARAMS = 134.5e6
#: Share of the parameters in the (tied) embedding, which stays fp32 in a lean run (SmolLM2: 28.3 M of 134.5 M).
EMBEDDING_SHARE = 0.21
#: Activation memory a token of a lean fp32 run against the calibration above. SwiGLU keeps 2 of 3 tensors and
#: attention reads 3 key/value heads instead of 9 copies: measured 1.33-1.36 GB for the default run (longest step
#: 448 tokens) on a 2-core AVX2 EPYC, so ~1.43 GB for a step of 2 x 256 tokens. With checkpointing the kept
#: activations are the layers' inputs either way: share 1 (lean + checkpointing measured 1.05-1.07 GB, est. 1.10).
LEAN_ACTIVATION_SHARE = 0.87
#: Activation memory a token more when TRL's loss head scores every position (no ``compact_loss_head``): ~0.3 GB
#: for the default run's longest step (448 tokens, ~80% of them prompt).
FULL_LOSS_HEAD_GB_PER_TOKEN = 0.00067
#: Heap memory a token that glibc keeps resident when the heap is not trimmed in the forward pass (~0.25 GB at 448).
UNTRIMMED_HEAP_GB_PER_TOKEN = 0.00055
#: QLoRA (``qlora: auto``) when the model's bf16 weights would take more than this share of the GPU's memory.
#: Measured on an H200 with SmolLM2-135M (benchmarks/gpu_check.py): 4-bit base weights, 0.42 GB peak and
#: ~1,860 tokens/s; bf16, 0.60 GB and ~2,690 tokens/s. The 4-bit path pays off only where memory is short.
QLORA_GPU_SHARE = 0.25


@dataclass
class MachinePlan:
    """What the runner will do on this machine, and why."""

    device: str  # "cpu" or "cuda"
    threads: int  # torch intra-op threads
    bf16: bool  # bf16 autocast
    activation_checkpointing: bool  # recompute activations in the backward pass
    estimated_peak_gb: float  # resident memory the run should need
    reasons: list[str] = field(default_factory=list)  # one line per decision, shown to the learner
    weights_dtype: str = "float32"  # how the frozen base weights are stored ("float32" or "bfloat16")
    quantization: str | None = None  # "4bit" for QLoRA (GPU + bitsandbytes), else None
    pad_to_multiple_of: int | None = None  # pad batches to a multiple of this many tokens (fewer distinct shapes)
    padding_free: bool = False  # each batch is one row of examples end to end (TRL's padding_free): no pad tokens
    micro_batch: int | None = None  # examples a forward pass holds when fewer than a step's (gradient accumulation adds up the rest)
    measures: list[str] = field(default_factory=list)  # optional measures switched on (lessonlib.train.optimizations)
    skipped: dict[str, str] = field(default_factory=dict)  # measures that would help here but cannot be used: why

    def uses(self, measure: str) -> bool:
        """Whether the optional measure ``measure`` is on."""
        return measure in self.measures

    def examples_per_pass(self, examples_per_step: int) -> int:
        """How many of a step's examples one forward pass holds: all of them, or ``micro_batch`` where memory is
        short. TRL's ``gradient_accumulation_steps=examples_per_step // examples_per_pass`` adds the passes up
        into the same update.

        >>> MachinePlan("cpu", 2, False, True, 1.4, micro_batch=1).examples_per_pass(2)
        1
        """
        return min(examples_per_step, self.micro_batch or examples_per_step)


def estimate_peak_gb(cfg: RunConfig, *, parameters: float = SMOLLM2_PARAMS, checkpointing: bool = False,
                     weights_bytes: float = 4, lean: bool = False, bf16: bool = False, compact_loss: bool = True,
                     heap_trim: bool = True, onednn_cache: bool = True, longest_example: int | None = None) -> float:
    """Rough peak RSS of a CPU run: imports + weights (+ gradients and Adam for full) + activations.

    ``weights_bytes`` is the average storage per parameter; ``lean``, ``compact_loss``, ``heap_trim`` and
    ``onednn_cache`` the measures of :mod:`lessonlib.train.optimizations` (the calibration has the last three on).
    The longest step is ``batch_size x max_length`` tokens.
    """
    weights = parameters * weights_bytes / 1e9
    training_state = parameters * 4 * 3 / 1e9 if cfg.method == "full" else 0.01
    scale = parameters / SMOLLM2_PARAMS
    per_token = ACTIVATION_GB_PER_TOKEN[checkpointing] * (LEAN_ACTIVATION_SHARE if lean and not checkpointing else 1.0)
    per_token *= BF16_ACTIVATION_SHARE if bf16 else 1.0
    per_token += (0 if compact_loss else FULL_LOSS_HEAD_GB_PER_TOKEN) + (0 if heap_trim else UNTRIMMED_HEAP_GB_PER_TOKEN)
    activations = cfg.batch_size * min(cfg.max_length, longest_example or cfg.max_length) * per_token * scale
    if bf16:
        activations += BF16_CHECKPOINTING_GB * scale if checkpointing and compact_loss else 0.0
        activations += 0.0 if onednn_cache else ONEDNN_DEFAULT_CACHE_GB
    return round(BASE_GB + weights + training_state + activations, 2)


def qlora_choice(cfg: RunConfig, *, parameters: float, gpu_memory_gb: float, bitsandbytes: bool, reasons: list[str]) -> str | None:
    """``"4bit"`` when a LoRA run on a GPU should store its base in NF4 (QLoRA), else ``None``; appends the reason.

    ``auto``: only when the bf16 weights would take more than :data:`QLORA_GPU_SHARE` of the GPU's memory
    (a 7B model, 14 GB, on a 24 GB card) and ``bitsandbytes`` is installed. 4-bit weights are dequantised at
    every use: for a small model on a big card they only cost time.

    >>> why = []
    >>> qlora_choice(RunConfig(), parameters=7e9, gpu_memory_gb=24, bitsandbytes=True, reasons=why), why[0][:6]
    ('4bit', 'QLoRA:')
    >>> qlora_choice(RunConfig(), parameters=134.5e6, gpu_memory_gb=80, bitsandbytes=True, reasons=[]) is None
    True
    """
    weights_gb = parameters * 2 / 1e9
    if cfg.method != "lora":
        reasons.append(_("full fine-tuning: no QLoRA"))
        return None
    if cfg.qlora == "off":
        reasons.append(_("QLoRA off (as asked)"))
        return None
    if cfg.qlora == "on":
        if not bitsandbytes:
            raise LessonError(_("qlora: on needs the bitsandbytes package, which is not installed"),
                              fix=_("pip install bitsandbytes, or set qlora: auto"))
        reasons.append(_("QLoRA on (as asked): base weights in 4-bit NF4 (bitsandbytes), adapters in bf16"))
        return "4bit"
    big = weights_gb > QLORA_GPU_SHARE * gpu_memory_gb
    if big and bitsandbytes:
        reasons.append(_("QLoRA: base weights in 4-bit NF4 (bitsandbytes), adapters in bf16: the bf16 model ({weights_gb:.1f} "
                         "GB) would take over {share:.0%} of the GPU's {gpu_memory_gb:.0f} GB").format(weights_gb=weights_gb, share=QLORA_GPU_SHARE, gpu_memory_gb=gpu_memory_gb))
        return "4bit"
    if big:
        reasons.append(_("QLoRA off: bitsandbytes is not installed (pip install bitsandbytes); the bf16 model "
                         "({weights_gb:.1f} GB) takes over {share:.0%} of the GPU's {gpu_memory_gb:.0f} GB").format(weights_gb=weights_gb, share=QLORA_GPU_SHARE, gpu_memory_gb=gpu_memory_gb))
    else:
        reasons.append(_("QLoRA off: the bf16 model ({weights_gb:.2f} GB) fits easily in the GPU's {gpu_memory_gb:.0f} GB, "
                         "and 4-bit weights cost time (SmolLM2-135M on an H200: ~1.4x slower steps); qlora: on forces it").format(weights_gb=weights_gb, gpu_memory_gb=gpu_memory_gb))
    return None


def plan_for(cfg: RunConfig, *, device: str | None = None, cpu: dict[str, Any] | None = None, parameters: float = SMOLLM2_PARAMS,
             gpu_memory_gb: float | None = None, longest_example: int | None = None, owns_process: bool = False,
             limits: Any | None = None) -> MachinePlan:
    """Decide device, threads, bf16, QLoRA, padding-free batches, checkpointing and the optional measures for ``cfg``.

    ``parameters``: the base model's size (memory estimates scale with it); ``gpu_memory_gb``: the GPU's
    memory (read from the GPU when ``None``); ``longest_example``: tokens of the longest training example
    (padding-free batches only when it fits ``max_length``, as TRL then does not truncate; ``None``: not
    known, taken to fit); ``owns_process``: the run is alone in its process (the command line), so
    process-wide settings that cannot be undone may be used; ``limits``: the container's limits
    (:class:`lessonlib.system.ContainerLimits`, read from its cgroup when ``None``). In a container with less
    memory free than ``memory_budget_gb`` (Binder, with other kernels running), the budget becomes what
    is free, so the plan turns to its leaner settings rather than a refusal.
    """
    from ..system import cpu_info

    if device is None:
        from ..models import pick_device

        device = pick_device()
    cpu = cpu or cpu_info()
    reasons: list[str] = []
    wanted: list[str] = []  # optional measures that would help here, before their checks
    padding_free = _padding_free(cfg, longest_example, reasons)
    if padding_free:
        wanted.append("attention_by_example")
    if device.startswith("cuda"):
        import importlib.util

        import torch

        bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and torch.cuda.is_bf16_supported())
        ckpt = cfg.activation_checkpointing == "on"
        if gpu_memory_gb is None:
            gpu_memory_gb = torch.cuda.get_device_properties(0).total_memory / 1e9
        quant = qlora_choice(cfg, parameters=parameters, gpu_memory_gb=gpu_memory_gb,
                             bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None, reasons=reasons)
        reasons.insert(0, _("GPU: bf16 {bf16}, activation checkpointing {checkpointing}").format(bf16=_("on") if bf16 else _("off"), checkpointing=_("on") if ckpt else _("off")))
        on, skipped = _measures(cfg, wanted, reasons)
        return MachinePlan(device, cpu.get("cores", 1), bf16, ckpt, estimate_peak_gb(cfg, parameters=parameters, checkpointing=ckpt, bf16=bf16,
                                                                                  longest_example=longest_example),
                           reasons, weights_dtype="bfloat16" if bf16 and cfg.method == "lora" else "float32", quantization=quant,
                           padding_free=padding_free, measures=on, skipped=skipped)

    threads = cfg.threads or max(1, int(cpu.get("cores", 1)))
    reasons.insert(0, _("{threads} torch thread(s): one per usable core").format(threads=threads))
    native_bf16 = system.cpu_numeric_path(cpu) == "bfloat16"
    if cfg.bf16 == "on":
        bf16 = True
        reasons.append(_("bf16 on (as asked)") + ("" if native_bf16 else _("; this CPU has no native bf16: expect ~3x slower steps")))
    elif cfg.bf16 == "off":
        bf16 = False
        reasons.append(_("bf16 off (as asked)"))
    else:
        # benchmarks/train_settings.py: with avx512_bf16/AMX, bf16 autocast is faster than fp32; without
        # native bf16 it is about 3x slower. So: on exactly when the CPU has it.
        bf16 = native_bf16
        reasons.append(_("bf16 autocast on: this CPU has native bf16 (avx512_bf16/AMX), faster than fp32 here") if native_bf16 else _("bf16 off: no native bf16 on this CPU, where autocast runs ~3x slower than fp32"))
    weights = "bfloat16" if bf16 and cfg.method == "lora" else "float32"
    if weights == "bfloat16":
        reasons.append(_("frozen weights stored in bf16 (autocast reads them as bf16 anyway): 0.26 GB less, no casts"))
    wanted += ["compact_loss_head", "heap_trim"]
    can_lean = not bf16 and cfg.method == "lora"
    if can_lean:
        wanted.append("lean_fp32")
    if weights == "bfloat16" or can_lean:
        wanted.append("malloc_settings")
    if bf16:
        wanted.append("onednn_cache")
    on, skipped = _measures(cfg, wanted, reasons, owns_process=owns_process)
    compact, trim = "compact_loss_head" in on, "heap_trim" in on
    size = 2 if weights == "bfloat16" else 4
    lean_size = 2 * (1 - EMBEDDING_SHARE) + 4 * EMBEDDING_SHARE
    # Measured on a 2-core AVX2 EPYC without bf16, the default run (20 steps + validation, longest step 448 tokens),
    # heap trimmed, loss head compact, no pad tokens:
    #   plain fp32, no checkpointing   1.64 GB   fastest (~5-10% faster than lean)
    #   lean fp32, no checkpointing    1.33-1.36 GB (frozen weights stored in bf16, widened at each use)
    #   plain fp32, checkpointing      1.27-1.31 GB  ~0.8-0.85x lean's tokens/s
    #   lean fp32, checkpointing       1.05-1.07 GB  as fast as plain with checkpointing
    # So: plain if it fits the budget, else lean, else lean with checkpointing (never plain with it: no faster, 0.2 GB more).
    budget = cfg.memory_budget_gb
    room = _container_room_gb(limits)
    if room is not None and room < budget:
        reasons.append(_("memory budget {room:.2f} GB instead of {budget:.2f}: what this container has free now (its cgroup "
                         "limit less what JupyterLab, the kernels and the service use, and {reserve} GB left for "
                         "them to move)").format(room=room, budget=budget, reserve=CONTAINER_RESERVE_GB))
        budget = room
    estimate = {(lean, ck): estimate_peak_gb(cfg, parameters=parameters, checkpointing=ck, weights_bytes=lean_size if lean else size,
                                             lean=lean, bf16=bf16, compact_loss=compact, heap_trim=trim,
                                             onednn_cache="onednn_cache" in on,
                                             longest_example=longest_example)
                for lean in (False, True) for ck in (False, True)}
    lean = "lean_fp32" in on and estimate[False, False] > budget  # with or without checkpointing: plain fp32 only where it fits
    if not lean and "lean_fp32" in on:
        on.remove("lean_fp32")
        if "malloc_settings" in on and weights != "bfloat16":
            on.remove("malloc_settings")
    if cfg.activation_checkpointing in {"on", "off"}:
        ckpt = cfg.activation_checkpointing == "on"
        reasons.append(_("activation checkpointing {state} (as asked)").format(state=_(cfg.activation_checkpointing)))
    else:
        ckpt = estimate[lean, False] > budget
        reasons.append(_("activation checkpointing {state}: estimated peak {peak:.2f} GB without it").format(state=_("on") if ckpt else _("off"), peak=estimate[lean, False]) + (_(" (lean fp32)") if lean else "") + _(", budget {budget:.2f} GB").format(budget=budget) + (_(" (~15-30% slower steps; a budget of {value:.2f} GB avoids it)").format(value=estimate[lean, False] + 0.05) if ckpt else ""))
    from .optimizations import MEASURES

    if lean:
        reasons.append(_("lean_fp32 (plain fp32 is estimated at {peak:.2f} GB): {buys}").format(peak=estimate[False, False], buys=_(MEASURES['lean_fp32'].buys)))
    if "malloc_settings" in on:
        reasons.append(_("malloc_settings: {buys}").format(buys=_(MEASURES['malloc_settings'].buys)))
    peak = estimate[lean, ckpt]
    micro = None
    if peak > budget and cfg.batch_size > 1 and weights == "float32":
        # Last, as it costs time: one example a forward pass, the step's examples added up by gradient accumulation.
        # Measured (LoRA, fp32, checkpointing, the public recipe, 2-core EPYC): 1.35-1.44 instead of 1.56-1.58 GiB
        # peak, ~15% slower; TRL divides the loss by the step's tokens, so the update is the same. Not with bf16
        # weights: without malloc_settings (a kernel) their heap grows with each pass, 1.53 against 1.36 GiB.
        micro = 1
        single = estimate_peak_gb(replace(cfg, batch_size=1), parameters=parameters, checkpointing=ckpt,
                                  weights_bytes=lean_size if lean else size, lean=lean, bf16=bf16, compact_loss=compact,
                                  heap_trim=trim, onednn_cache="onednn_cache" in on, longest_example=longest_example)
        reasons.append(_("one example a forward pass, {batch_size} passes a step (gradient accumulation): estimated peak "
                         "{single:.2f} GB instead of {peak:.2f}, the same update, ~15% slower").format(batch_size=cfg.batch_size, single=single, peak=peak) + (_("; no padding-free rows (one example has no padding)") if padding_free else ""))
        peak = single
        if padding_free:
            padding_free = False
            if "attention_by_example" in on:
                on.remove("attention_by_example")
    if peak > budget:
        reasons.append(_("the smallest plan is estimated at {peak:.2f} GB, over the {budget:.2f} GB budget: fewer examples a "
                         "step (batch_size) or a shorter max_length lower it").format(peak=peak, budget=budget))
    # Native-bf16 CPUs keep batches padded to a multiple of 32 tokens (fewer distinct shapes): not re-measured there
    # since the heap trim, which made padding useless on fp32 CPUs (~3-5% more tokens/s without it).
    pad = 32 if weights == "bfloat16" else None
    if pad:
        reasons.append(_("batches padded to a multiple of 32 tokens: fewer distinct shapes"))
    return MachinePlan("cpu", threads, bf16, ckpt, peak, reasons, weights_dtype=weights, pad_to_multiple_of=pad,
                       padding_free=padding_free, micro_batch=micro, measures=on, skipped=skipped)


def reusable_gb() -> float:
    """What this process holds already that a run in it will use (GB), to add to the container's free memory:
    the libraries' imports, which the estimates count (up to ``BASE_GB``), and the free blocks of its C heap
    (``system.heap_free_gb``: a kernel that trained before reuses them rather than grow)."""
    from ..system import heap_free_gb
    from .events import rss_gb

    return min(rss_gb(), BASE_GB + heap_free_gb())


#: The last run trained in this process: its plan's estimated peak and the process's peak RSS by its end (GB).
_TRAINED_HERE: tuple[float, float] | None = None


def record_trained_here(estimated_peak_gb: float) -> None:
    """Note that a run estimated at ``estimated_peak_gb`` has trained to its end in this process (see :func:`needed_gb`).

    The runner calls it, and so does ``TrainingMonitor.callback(plan)`` for a trainer of the learner's own."""
    from .events import peak_rss_gb

    global _TRAINED_HERE
    _TRAINED_HERE = (estimated_peak_gb, peak_rss_gb())


def needed_gb(plan: MachinePlan) -> float:
    """Memory a CPU run needs beyond what this process holds now (GB).

    The estimate (a fresh process's peak) less what this process holds that the run will use
    (:func:`reusable_gb`). Where a run estimated at least as big trained in this process before, no more
    than the process's peak by then above its resident memory now: that run left the libraries' kernels
    and caches behind (a second run in one process needed 0.46 GB more where the estimate said 0.67).
    """
    from .events import rss_gb

    needed = plan.estimated_peak_gb - reusable_gb()
    if _TRAINED_HERE is not None and plan.estimated_peak_gb <= _TRAINED_HERE[0]:
        needed = min(needed, _TRAINED_HERE[1] - rss_gb())
    return needed


def _container_room_gb(limits: Any | None) -> float | None:
    """What a run may use in this container now (GB): its free memory less ``CONTAINER_RESERVE_GB``, plus
    what this process holds that the run will use (:func:`reusable_gb`); None without a limit."""
    from ..system import cgroup_limits

    limits = limits if limits is not None else cgroup_limits()
    if limits.memory_free_gb is None:
        return None
    return round(limits.memory_free_gb - CONTAINER_RESERVE_GB + reusable_gb(), 2)


def _padding_free(cfg: RunConfig, longest_example: int | None, reasons: list[str]) -> bool:
    """TRL's padding-free batches, where they keep the run's meaning (no packing; every example fits max_length)."""
    if cfg.packing:
        reasons.append(_("packing on (as asked): TRL packs examples into rows of max_length tokens"))
        return False
    if longest_example is not None and longest_example > cfg.max_length:
        reasons.append(_("padded batches: the longest example has {longest_example} tokens, over max_length {max_length}, and "
                         "padding-free batches would not cut it").format(longest_example=longest_example, max_length=cfg.max_length))
        return False
    reasons.append(_("padding-free batches: the examples of a step end to end in one row, no pad tokens (~13% fewer "
                     "tokens)"))
    return True


def _measures(cfg: RunConfig, wanted: list[str], reasons: list[str], *, owns_process: bool = False) -> tuple[list[str], dict[str, str]]:
    """Which of the ``wanted`` optional measures can be switched on; a reason line for each."""
    from .optimizations import MEASURES, check, enabled_by_environment

    if not wanted:
        return [], {}
    if cfg.measures == "off" or not enabled_by_environment():
        why = _("as asked") if cfg.measures == "off" else "LESSONLIB_MEASURES=off"
        reasons.append(_("speed and memory extras off ({why}): TRL's recipe alone").format(why=why))
        return [], {name: "switched off" for name in wanted}
    on, skipped = [], {}
    for name in wanted:
        problem = check(name)
        if problem is None and name == "malloc_settings" and not owns_process:
            problem = _("changes malloc for the whole process and cannot be undone: only where the run owns its process")
        if problem is None and name == "onednn_cache" and not owns_process:
            problem = _("oneDNN keeps its setting for the whole process: only where the run owns its process")
        if problem is None:
            on.append(name)
            if name not in {"lean_fp32", "malloc_settings"}:  # these lines come with the memory decision
                reasons.append(_("{name}: {buys}").format(name=name, buys=_(MEASURES[name].buys)))
        else:
            skipped[name] = problem
            reasons.append(_("{name} skipped: {problem}").format(name=name, problem=problem))
    return on, skipped
