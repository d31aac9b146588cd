"""The local fine-tuning runner: the SFT recipe, with a machine plan, optional measures, checkpoints and a model card.

One call, :func:`run`, does what notebook 04 does cell by cell, with the same calls of
:mod:`lessonlib.train.recipe` (``LoraConfig``, ``SFTConfig``, ``SFTTrainer``, ``trainer.train()``,
``trainer.save_model()``), and adds around them: a data check (a file with errors is refused before
any model loads), the machine plan (:mod:`lessonlib.train.machine`), the optional measures that plan
switched on (:mod:`lessonlib.train.optimizations`), progress events and a stop flag
(:mod:`lessonlib.train.events`), a final validation loss, ``metrics.json`` and a model card.
Checkpoints every ``save_every`` steps let ``run(cfg, resume=True)`` continue an interrupted run
(Stop, Ctrl-C, a killed process). A run leaves the process as it found it: torch's thread count,
transformers' and datasets' logging and progress bars, and the warnings filters are restored when it
ends, stops or fails.

The run folder holds: the adapter (``adapter_model.safetensors``, ``adapter_config.json``), the
tokenizer, ``config.yaml`` (repeat the run with ``lessonlib train local --config``),
``metrics.json`` (every logged loss), ``README.md`` (a model card) and ``checkpoint-*/``.

>>> from lessonlib.train import RunConfig, run                 # doctest: +SKIP
>>> result = run(RunConfig(max_steps=30, output_dir="runs/demo"))  # doctest: +SKIP
>>> result.final_loss < result.first_loss                      # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import settings, system
from ..digest import file_sha256
from ..errors import LessonError, MemoryShortfall
from ..i18n import _
from .config import RunConfig
from .events import EventHandler, ProgressEvent, StopFlag, peak_rss_gb, progress_callback
from .machine import SMOLLM2_PARAMS, MachinePlan, needed_gb, plan_for, record_trained_here
from .recipe import sft_trainer
from .replay import folder as shared_runs
from .replay import keep as keep_run
from .replay import key as run_key
from .replay import replayed


def last_checkpoint(folder: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` folder of a run that holds a trainer state, or None."""
    folder = Path(folder)
    candidates = []
    for child in folder.glob("checkpoint-*") if folder.is_dir() else []:
        suffix = child.name.split("-")[-1]
        if suffix.isdigit() and (child / "trainer_state.json").is_file():
            candidates.append((int(suffix), child))
    return max(candidates)[1] if candidates else None


def _prepare_folder(cfg: RunConfig, resume: bool) -> Path:
    out = Path(cfg.output_dir).expanduser()
    if resume:
        if last_checkpoint(out) is None:
            raise LessonError(_("nothing to resume in {out}: no checkpoint-* folder").format(out=out), fix=_("start the run without --resume (checkpoints are written every save_every steps)"))
        return out
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise LessonError(
                _("the run folder {out} already holds a run").format(out=out),
                fix=_("continue it with --resume, choose another --out, or pass --overwrite to replace it"),
            )
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LessonError(_("cannot create the run folder {out}: {reason}").format(out=out, reason=exc.strerror or exc), fix=_("choose a writable --out")) from None
    return out


def _check_data(cfg: RunConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, int]:
    """Refuse a data file with errors before any model loads, with the data doctor's findings.

    Returns the training and validation examples and the longest example's tokens (chat template included).
    """
    from .. import data

    loaded, longest = [], 0
    for label, path in (("training", cfg.train_file), ("validation", cfg.valid_file)):
        if path is None:
            loaded.append(None)
            continue
        report = data.validate(settings.project_path(path), model="smollm2", min_examples=1)  # the local tokenizer: loaded anyway
        if not report.ok:
            raise LessonError(
                (_("the training file has errors, so training did not start:\n{summary}") if label == "training" else
                 _("the validation file has errors, so training did not start:\n{summary}")).format(summary=report.summary(max_lines=3)),
                fix=_("fix them (see `lessonlib data validate {path}`), then train again").format(path=path),
            )
        longest = max([longest, *report.tokens.per_example])
        loaded.append(data.read_examples(settings.project_path(path)))
    return loaded[0], loaded[1], longest


@contextlib.contextmanager
def quiet_training(threads: int) -> Iterator[None]:
    """torch threads set, library logging and progress bars quiet, FutureWarnings hidden, while the block runs;
    all as before afterwards (``warnings.catch_warnings`` restores the filters of the whole process)."""
    import warnings

    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    before = (torch.get_num_threads(), hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(),
              datasets.is_progress_bar_enabled())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecation notices from inside transformers/TRL
        try:
            torch.set_num_threads(threads)
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            datasets.disable_progress_bars()  # our events report progress; no per-map bars in outputs
            yield
        finally:
            torch.set_num_threads(before[0])
            hf_logging.set_verbosity(before[1])
            (hf_logging.enable_progress_bar if before[2] else hf_logging.disable_progress_bar)()
            (datasets.enable_progress_bars if before[3] else datasets.disable_progress_bars)()


@dataclass
class RunResult:
    """What a finished (or stopped) run produced."""

    output_dir: str  # the run folder
    steps: int  # optimiser steps done
    stopped: bool  # ended early by the stop flag
    first_loss: float | None  # first logged training loss
    final_loss: float | None  # last logged training loss
    eval_loss: float | None  # last validation loss
    train_seconds: float  # wall time of training (model loading excluded)
    tokens_per_s: float | None  # real training tokens per second
    peak_rss_gb: float  # peak resident memory of the process
    plan: MachinePlan  # the settings chosen for this machine
    history: list[dict[str, Any]] = field(default_factory=list)  # every logged event
    best_step: int | None = None  # step of the lowest validation loss
    best_eval_loss: float | None = None  # the lowest validation loss
    early_stopped: bool = False  # ended by early stopping (the adapter saved is the best one)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_parameters(name: str) -> float:
    """The base model's parameter count for the memory plan: from its config, else SmolLM2-135M's.

    >>> model_parameters("smollm2")
    134500000.0
    """
    from .. import models

    return models.parameter_count(name) or SMOLLM2_PARAMS


def _check_memory(plan: MachinePlan) -> None:
    """Refuse a CPU run that the memory left cannot hold, before any model loads (a killed kernel loses more)."""
    from .. import system

    if plan.device != "cpu":
        return
    short = system.memory_shortfall(needed_gb(plan))
    if short:
        raise MemoryShortfall(
            _("this training run {short}").format(short=short),
            fix=_("shut down the kernels of notebooks you have finished (Kernel > Shut Down All Kernels, or the Running "
                  "panel), or lower memory_budget_gb, batch_size or max_length"),
        )


def plan_run(cfg: RunConfig, *, owns_process: bool = False) -> tuple[MachinePlan, list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The machine plan :func:`run` would use for ``cfg``, with the checked training and validation examples.

    The data is checked first (a file with errors is refused), and the plan knows its longest example.
    """
    train, valid, longest = _check_data(cfg)
    return plan_for(cfg, parameters=model_parameters(cfg.model), longest_example=longest, owns_process=owns_process), train, valid


def run(cfg: RunConfig, *, on_event: EventHandler | None = None, stop: StopFlag | None = None, resume: bool = False,
        owns_process: bool = False, callbacks: list[Any] | None = None) -> RunResult:
    """Train, evaluate and save one local run; see the module docstring.

    ``owns_process``: nothing else runs in this process (the command line, a worker), so the plan may use
    process-wide settings that cannot be undone. ``callbacks``: more ``TrainerCallback`` objects for the trainer.
    """
    from .optimizations import applied  # imports torch

    cfg.check()
    if resume:
        saved = Path(cfg.output_dir).expanduser() / "config.yaml"
        if saved.is_file():  # a resumed run continues with the settings it started with
            cfg = RunConfig.load(saved)
    out = _prepare_folder(cfg, resume)
    plan, train, valid = plan_run(cfg, owns_process=owns_process)
    _check_memory(plan)
    emit = on_event or (lambda event: None)
    shared = run_key(cfg, plan) if shared_runs() and not resume and not callbacks else None
    if shared:  # an identical run finished earlier in this session (tests, make notebooks): replay it
        kept = replayed(shared, out, emit)
        if kept is not None:
            return RunResult(**{**kept, "plan": MachinePlan(**kept["plan"])})
        events: list[ProgressEvent] = []
        emit = _recording(emit, events)
    emit(ProgressEvent(kind="plan", message="; ".join(plan.reasons)))
    history: list[dict[str, Any]] = []
    callback = progress_callback(emit, stop, history)
    progress = callback.progress
    cfg.save(out / "config.yaml")
    checkpoint = last_checkpoint(out) if resume else None
    with quiet_training(plan.threads):
        trainer = sft_trainer(cfg, plan, out, train, valid, callbacks=[callback, *(callbacks or [])])
        started = time.perf_counter()
        with applied(plan.measures, trainer.model):
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
            seconds = time.perf_counter() - started
            state = trainer.state
            evaluated = any(h["kind"] == "eval" and h["step"] == state.global_step for h in history)
            # with early stopping the best model is loaded already: no extra pass
            if valid is not None and not progress.stopped and not evaluated and not cfg.early_stopping:
                trainer.evaluate()  # reported through the callback's on_log
        trainer.save_model(str(out))
        tokenizer = trainer.processing_class
        tokenizer.save_pretrained(str(out))
        del trainer  # the training copy of the model: a run in a kernel hands it back now (below), not at its next collection
        system.give_back_memory()
        if cfg.merge and cfg.method == "lora":
            merge_adapter(cfg.model, out, out / "merged", tokenizer=tokenizer)

    from ..plots import loss_points

    losses = [loss for _, loss in loss_points(history, "step")]
    evals = [loss for _, loss in loss_points(history, "eval")]
    tokens = (getattr(state, "num_input_tokens_seen", 0) or 0) - progress.start_tokens
    best = min(((loss, step) for step, loss in loss_points(history, "eval")), default=None)
    planned = cfg.max_steps if cfg.max_steps > 0 else state.max_steps
    result = RunResult(
        output_dir=str(out),
        steps=state.global_step,
        stopped=progress.stopped,
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        eval_loss=evals[-1] if evals else None,
        train_seconds=round(seconds, 2),
        tokens_per_s=round(tokens / seconds, 1) if seconds > 0 and tokens else None,
        peak_rss_gb=round(peak_rss_gb(), 2),
        plan=plan,
        history=history,
        best_step=best[1] if best else None,
        best_eval_loss=best[0] if best else None,
        early_stopped=cfg.early_stopping and not progress.stopped and state.global_step < planned,
    )
    if not progress.stopped:  # a run stopped early may not have reached its peak
        record_trained_here(plan.estimated_peak_gb)
    (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    write_model_card(cfg, result, out)
    progress.event("stopped" if progress.stopped else "end", state, message=f"saved in {out}")
    if shared and not progress.stopped:
        keep_run(shared, out, events, result.to_dict())
    return result


def _recording(emit: EventHandler, events: list[ProgressEvent]) -> EventHandler:
    def record(event: ProgressEvent) -> None:
        events.append(event)
        emit(event)
    return record


def merge_adapter(model: str, adapter: str | Path, target: str | Path, *, tokenizer: Any = None) -> Path:
    """Fold a LoRA adapter into a full-precision copy of its base model and save it as a normal model
    folder (``models.load(str(target))`` or any transformers code can use it without PEFT).

    The base is loaded in fp32 whatever the training used, so the merged model answers like base +
    adapter at inference; it costs the base model's size on disk (~540 MB for SmolLM2-135M).
    """
    import gc

    from transformers import AutoTokenizer

    from .recipe import load_adapter

    gc.collect()
    merged = load_adapter(model, adapter).merge_and_unload()
    target = Path(target)
    merged.save_pretrained(str(target))
    (tokenizer or AutoTokenizer.from_pretrained(str(adapter))).save_pretrained(str(target))
    return target


def write_model_card(cfg: RunConfig, result: RunResult, out: Path) -> Path:
    """``README.md`` in the run folder: what was trained, on what, how, and how it went."""
    from .. import models

    base = models.DEFAULT_MODEL_ID if cfg.model.lower() == models.DEFAULT_MODEL else cfg.model
    rows = [
        ("base model", base),
        ("method", cfg.method + (f" (r={cfg.lora_r}, alpha={cfg.lora_alpha}, on {', '.join(cfg.lora_target_modules)})" if cfg.method == "lora" else "")),
        ("training data", f"`{cfg.train_file}` (sha256 `{file_sha256(settings.project_path(cfg.train_file))[:16]}…`)"),
        ("validation data", f"`{cfg.valid_file}` (sha256 `{file_sha256(settings.project_path(cfg.valid_file))[:16]}…`)" if cfg.valid_file else "none"),
        ("steps", f"{result.steps}" + (" (stopped early)" if result.stopped else "")
         + (f" (early stopping: the adapter is the best one, step {result.best_step})" if result.early_stopped else "")),
        ("batch × max length", f"{cfg.batch_size} × {cfg.max_length}"),
        ("learning rate", f"{cfg.learning_rate} ({cfg.lr_scheduler})"),
        ("loss on", "assistant replies only" if cfg.assistant_only_loss else "every token"),
        ("training loss", f"{result.first_loss:.3f} → {result.final_loss:.3f}" if result.first_loss is not None else "n/a"),
        ("validation loss", (f"{result.eval_loss:.3f}" + (f" (best {result.best_eval_loss:.3f} at step {result.best_step})" if result.best_step not in (None, result.steps) else ""))
         if result.eval_loss is not None else "n/a"),
        ("time", f"{result.train_seconds:.0f} s on {result.plan.device} ({result.plan.threads} threads), {result.tokens_per_s or 0:.0f} tokens/s"),
        ("peak memory", f"{result.peak_rss_gb:.2f} GB"),
        ("machine choices", "; ".join(result.plan.reasons)),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    text = f"""---
base_model: {base}
library_name: peft
tags: [lessonlib, fine-tuning-companion, sft, lora]
---

# {out.name}

A fine-tune made with the Fine-Tuning Companion (`lessonlib train local`).

| | |
| --- | --- |
{table}

## Use it

```bash
lessonlib chat --adapter {out} "..."
```

```python
from lessonlib import models
models.chat("...", adapter="{out}")
```

Repeat the run exactly: `lessonlib train local --config {out}/config.yaml --out NEW_FOLDER`.
"""
    path = out / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def export_command(cfg: RunConfig) -> str:
    """The same run as a ``trl sft`` command for a GPU machine (``accelerate launch`` for several GPUs)."""
    from .. import models

    base = models.DEFAULT_MODEL_ID if cfg.model.lower() == models.DEFAULT_MODEL else cfg.model
    parts = [
        "trl sft",
        f"--model_name_or_path {base}",
        f"--dataset_name {Path(cfg.train_file).parent.as_posix()}",  # a folder of train/valid JSONL files
        f"--output_dir {cfg.output_dir}",
        f"--learning_rate {cfg.learning_rate}",
        f"--lr_scheduler_type {cfg.lr_scheduler}",
        f"--per_device_train_batch_size {cfg.batch_size}",
        f"--gradient_accumulation_steps {cfg.grad_accum}",
        f"--max_length {cfg.max_length}",
        f"--max_steps {cfg.max_steps}" if cfg.max_steps else f"--num_train_epochs {cfg.epochs}",
        f"--seed {cfg.seed}",
        "--bf16",
        "--assistant_only_loss" if cfg.assistant_only_loss else "",
        "--packing" if cfg.packing else "",
    ]
    if cfg.method == "lora":
        parts += ["--use_peft", f"--lora_r {cfg.lora_r}", f"--lora_alpha {cfg.lora_alpha}", f"--lora_dropout {cfg.lora_dropout}",
                  "--lora_target_modules " + " ".join(cfg.lora_target_modules)]
    command = " \\\n    ".join(p for p in parts if p)
    return command + "\n\n# several GPUs, FSDP, DeepSpeed: lessonlib train export --out DIR writes the folder, with accelerate's configurations"
