"""The local fine-tuning runner: TRL's ``SFTTrainer`` + PEFT LoRA, with progress events and a stop flag.

One call, :func:`run`, does the TRL tutorial's steps on the local model: check the data (refused
before any model loads if it has errors), load the model, attach LoRA adapters, train with
settings chosen for this machine (:mod:`lessonlib.train.machine`), evaluate, save. Progress goes
out as :class:`ProgressEvent` objects to any callback (the notebook widget, the command line's
tqdm bar and the tests all consume the same events); a :class:`StopFlag` ends the run cleanly
after the current step and still saves. Checkpoints every ``save_every`` steps let
``run(cfg, resume=True)`` continue an interrupted run (Stop, Ctrl-C, a killed process).

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
import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import settings
from ..system import glibc as _glibc  # a name here, so that tests can stand in for the C library
from ..errors import LessonError
from .config import RunConfig
from .machine import SMOLLM2_PARAMS, MachinePlan, plan_for

# SmolLM2's own ChatML template, with {% generation %} markers around the assistant replies so
# that TRL can compute the loss on the replies only. It renders exactly like the original.
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

EventHandler = Callable[["ProgressEvent"], None]


class StopFlag(threading.Event):
    """Set it (``flag.request()``, or the widget's Stop button) to end a run after the current step."""

    def request(self) -> None:
        self.set()


@dataclass
class ProgressEvent:
    """One thing that happened during a run; plain values only (serialisable, easy to test)."""

    kind: str  # "start", "step", "eval", "save", "end" or "stopped"
    step: int = 0  # optimiser steps done
    total: int = 0  # optimiser steps planned
    loss: float | None = None  # training loss of the last logged step(s)
    eval_loss: float | None = None  # validation loss (kind "eval")
    learning_rate: float | None = None  # current learning rate
    tokens_per_s: float | None = None  # real (non-padding) training tokens per second so far
    elapsed_s: float = 0.0  # seconds since training started
    eta_s: float | None = None  # estimated seconds left
    rss_gb: float | None = None  # resident memory of this process
    message: str = ""  # a line for humans

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _rss_gb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e9


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
            raise LessonError(f"nothing to resume in {out}: no checkpoint-* folder", fix="start the run without --resume (checkpoints are written every save_every steps)")
        return out
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise LessonError(
                f"the run folder {out} already holds a run",
                fix="continue it with --resume, choose another --out, or pass --overwrite to replace it",
            )
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LessonError(f"cannot create the run folder {out}: {exc.strerror or exc}", fix="choose a writable --out") from None
    return out


def _check_data(cfg: RunConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """Refuse a data file with errors before any model loads, with the data doctor's findings."""
    from .. import data

    loaded = []
    for label, path in (("training", cfg.train_file), ("validation", cfg.valid_file)):
        if path is None:
            loaded.append(None)
            continue
        report = data.validate(settings.project_path(path), model="smollm2", min_examples=1)  # the local tokenizer: loaded anyway
        if not report.ok:
            raise LessonError(
                f"the {label} file has errors, so training did not start:\n{report.summary(max_lines=3)}",
                fix=f"fix them (see `lessonlib data validate {path}`), then train again",
            )
        loaded.append(data.read_examples(settings.project_path(path)))
    return loaded[0], loaded[1]


class _Progress:
    """TrainerCallback turning Trainer hooks into ProgressEvents and honouring the stop flag."""

    def __init__(self, emit: EventHandler, stop: StopFlag, history: list[dict[str, Any]]):
        self.emit, self.stop, self.history = emit, stop, history
        self.started = time.perf_counter()
        self.start_step = 0
        self.start_tokens = 0
        self.stopped = False

    def _event(self, kind: str, state: Any, **values: Any) -> ProgressEvent:
        elapsed = time.perf_counter() - self.started
        done = state.global_step - self.start_step
        tokens = (getattr(state, "num_input_tokens_seen", 0) or 0) - self.start_tokens
        eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
        event = ProgressEvent(
            kind=kind,
            step=state.global_step,
            total=state.max_steps,
            tokens_per_s=tokens / elapsed if elapsed > 0 and tokens else None,
            elapsed_s=elapsed,
            eta_s=eta,
            rss_gb=_rss_gb(),
            **values,
        )
        self.history.append(event.to_dict())
        self.emit(event)
        return event

    # TrainerCallback interface (duck-typed: transformers calls these by name)
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        self.start_step = state.global_step
        self.start_tokens = getattr(state, "num_input_tokens_seen", 0) or 0
        self._event("start", state, message=f"training from step {state.global_step} to {state.max_steps}")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self._event("step", state, loss=logs["loss"], learning_rate=logs.get("learning_rate"))
        if "eval_loss" in logs:
            self._event("eval", state, eval_loss=logs["eval_loss"])
        self._honour_stop(state, control)  # a stop asked while this step's event was shown

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._honour_stop(state, control)

    def _honour_stop(self, state: Any, control: Any) -> None:
        """End after the current step and save it (the trainer checks these flags right after)."""
        if self.stop.is_set() and not self.stopped and state.global_step < state.max_steps:
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._event("save", state, message=f"checkpoint at step {state.global_step}")


def _callback_class() -> type:
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self, progress: _Progress):
            self.progress = progress

        def on_train_begin(self, *a: Any, **k: Any) -> None:
            self.progress.on_train_begin(*a, **k)

        def on_log(self, *a: Any, **k: Any) -> None:
            self.progress.on_log(*a, **k)

        def on_step_end(self, *a: Any, **k: Any) -> None:
            self.progress.on_step_end(*a, **k)

        def on_save(self, *a: Any, **k: Any) -> None:
            self.progress.on_save(*a, **k)

    return ProgressCallback


def return_freed_memory(threshold: int = 4 << 20) -> bool:
    """Make glibc give freed blocks over ``threshold`` bytes straight back to the system.

    glibc raises its mmap threshold each time a large block is freed, so later tensors of varying
    sizes come from the heap, which fragments and only grows: over 16-20 steps of varying sequence
    lengths, ~0.1 GB of peak memory in a bf16 run here. A fixed 4 MB threshold keeps it flat; 1 MB
    cost ~7-11% of the speed (fresh pages for every mid-sized tensor), 4 MB was within the noise.
    Linux/glibc only; False elsewhere. Process-wide and not undone: harmless for other work.
    """
    libc = _glibc()
    if libc is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, threshold)) and bool(libc.mallopt(m_trim_threshold, threshold))


def trim_heap_in_forward(model: Any, every: int = 10) -> list[Any]:
    """Hand the heap's free pages back to the system every ``every`` decoder layers of a training
    forward pass (``malloc_trim``); returns the hook handles (``handle.remove()`` undoes it).

    Why: torch allocates tensors with ``posix_memalign``, and glibc before 2.38 (Debian 12, Ubuntu
    22.04: Binder) serves each such request with a free chunk ~100 bytes *bigger* than the one a freed
    tensor of the same size leaves behind. So the temporaries of one layer are not reused by the
    next: at the end of the forward pass of a 448-token step, 0.26 GB of the heap was free but still
    resident, on top of 0.36 GB of real activations. That is the step that set the run's peak.
    Trimming every 10 layers (3 times a step, forward passes with gradients only) brought the default
    run's peak from ~1.6 to ~1.38 GB (lean fp32, 2-core AVX2 EPYC). Linux/glibc only; [] elsewhere.
    """
    libc = _glibc()
    if libc is None or every < 1:
        return []
    import torch
    from transformers.modeling_layers import GradientCheckpointingLayer

    def trim(module: Any, inputs: Any, output: Any) -> None:
        if torch.is_grad_enabled():  # training, not evaluation or generation
            libc.malloc_trim(0)

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    return [layer.register_forward_hook(trim) for i, layer in enumerate(layers) if i % every == every - 1]


@contextlib.contextmanager
def compact_loss_head(enabled: bool = True) -> Iterator[bool]:
    """Compute TRL's fused loss head only on labelled positions on a CPU too; yields whether it could.

    TRL 1.16's ``add_fused_lm_head`` scores every position except on Triton devices, where it keeps
    only the positions with a label (``compact``): off-GPU, a varying number of positions would
    recompile compiled graphs, which eager CPU training does not have. With the loss on replies
    only, most positions are prompt: scoring only the labelled ones gives the same loss, ~1.4x the
    speed and ~0.3 GB less memory here. This switches that one decision for CPU devices while the
    block runs, and is a no-op (yields False) on a TRL without the same hook.
    """
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:  # pragma: no cover
        yield False
        return
    original = getattr(trl_utils, "_use_triton", None)
    if not enabled or original is None or getattr(trl_utils, "_ChunkedLogProbFunction", None) is None:
        yield False
        return
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield True
    finally:
        trl_utils._use_triton = original


@contextlib.contextmanager
def while_training(plan: MachinePlan) -> Iterator[None]:
    """The plan's process-wide switches, on for the duration of training (and its evaluations)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(compact_loss_head(plan.compact_loss))
        if plan.lean_fp32:
            from .lean import grouped_query_attention

            stack.enter_context(grouped_query_attention())
        if plan.padding_free:
            from .lean import attention_by_example

            stack.enter_context(attention_by_example())
        if plan.lean_fp32:
            from .lean import release_scratch

            stack.callback(release_scratch)
        yield


def build_trainer(cfg: RunConfig, plan: MachinePlan, out: Path, train: list[dict[str, Any]], valid: list[dict[str, Any]] | None, callbacks: list[Any]) -> Any:
    """The configured ``SFTTrainer`` (model loaded, adapters attached): the TRL tutorial's set-up."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from .. import models
    from ..data import to_hf_dataset

    models._quiet_transformers()
    import datasets

    datasets.disable_progress_bars()  # our events report progress; no per-map bars in outputs
    source = models.resolve(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.assistant_only_loss:
        if "<|im_start|>" in (tokenizer.chat_template or ""):
            tokenizer.chat_template = CHATML_TRAINING_TEMPLATE
        elif "{% generation %}" not in (tokenizer.chat_template or ""):
            raise LessonError(
                f"the chat template of {cfg.model} has no generation markers, so the loss cannot be limited to the replies",
                fix="set assistant_only_loss: false, or use a ChatML model such as smollm2",
            )
    model = AutoModelForCausalLM.from_pretrained(source, **model_load_settings(plan))
    context = getattr(model.config, "max_position_embeddings", None)
    if context and cfg.max_length > context:
        raise LessonError(f"max_length {cfg.max_length} is longer than the model's context ({context} tokens)", fix=f"use max_length: {min(context, 1024)}")
    peft_config = None
    if cfg.method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM",
        )
    eval_on = valid is not None and cfg.eval_every > 0  # periodic evaluation; the final one happens anyway
    save_steps = cfg.save_every if cfg.save_every > 0 else max(cfg.max_steps, 1_000_000)
    early = eval_on and cfg.early_stopping
    if early:  # the best checkpoint must exist to be restored: save at every evaluation
        save_steps = cfg.eval_every
        from transformers import EarlyStoppingCallback

        callbacks = [*callbacks, EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
    args = SFTConfig(
        output_dir=str(out),
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.log_every,
        eval_strategy="steps" if eval_on else "no",
        eval_steps=cfg.eval_every if eval_on else None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,  # the best checkpoint is always kept as well
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=plan.bf16,
        gradient_checkpointing=plan.activation_checkpointing,
        use_cpu=plan.device == "cpu",
        report_to="none",
        disable_tqdm=True,
        max_length=cfg.max_length,
        packing=cfg.packing,
        assistant_only_loss=cfg.assistant_only_loss,
        include_num_input_tokens_seen="non_padding",
        prediction_loss_only=True,
        pad_to_multiple_of=plan.pad_to_multiple_of,  # the validation loss is all we use; no per-token outputs kept
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        log_level="error",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        data_collator=plan_collator(plan, tokenizer),
        train_dataset=to_hf_dataset(train),
        eval_dataset=to_hf_dataset(valid) if valid is not None else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for noisy in (PrinterCallback, ProgressCallback):  # our events replace its prints and bars
        trainer.remove_callback(noisy)
    adapt_model(trainer.model, plan)
    return trainer


def model_load_settings(plan: MachinePlan) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for the plan: the weights' dtype, and NF4 for QLoRA."""
    import torch

    load: dict[str, Any] = {"dtype": getattr(torch, plan.weights_dtype)}
    if plan.quantization == "4bit":  # QLoRA: NF4 base weights, bf16 compute (GPU + bitsandbytes)
        from transformers import BitsAndBytesConfig

        load["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if plan.bf16 else torch.float16,
        )
    return load


def plan_collator(plan: MachinePlan, tokenizer: Any) -> Any | None:
    """The padding-free collator when the plan asks for it (one row a batch; attention kept within each
    example from the restarting position ids), else ``None``: TRL's own."""
    if not plan.padding_free:
        return None
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True,
                                           pad_to_multiple_of=plan.pad_to_multiple_of)


def adapt_model(model: Any, plan: MachinePlan) -> None:
    """The plan's changes to a trainer's (PEFT) model, before the optimiser exists: lean fp32, heap trims."""
    if plan.lean_fp32:
        from .lean import make_lean

        make_lean(model)
    if plan.trim_heap:
        trim_heap_in_forward(model)


def model_parameters(name: str) -> float:
    """The base model's parameter count for the memory plan: from its config, else SmolLM2-135M's.

    >>> model_parameters("smollm2")
    134500000.0
    """
    from .. import models

    return models.parameter_count(name) or SMOLLM2_PARAMS


def run(cfg: RunConfig, *, on_event: EventHandler | None = None, stop: StopFlag | None = None, resume: bool = False) -> RunResult:
    """Train, evaluate and save one local run; see the module docstring."""
    cfg.check()
    if resume:
        saved = Path(cfg.output_dir).expanduser() / "config.yaml"
        if saved.is_file():  # a resumed run continues with the settings it started with
            cfg = RunConfig.load(saved)
    out = _prepare_folder(cfg, resume)
    train, valid = _check_data(cfg)
    plan = plan_for(cfg, parameters=model_parameters(cfg.model))
    emit = on_event or (lambda event: None)
    emit(ProgressEvent(kind="plan", message="; ".join(plan.reasons)))

    import warnings

    import torch

    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices from inside transformers/TRL
    torch.set_num_threads(plan.threads)
    if plan.return_memory:
        return_freed_memory()
    stop = stop or StopFlag()
    history: list[dict[str, Any]] = []
    progress = _Progress(emit, stop, history)
    cfg.save(out / "config.yaml")
    trainer = build_trainer(cfg, plan, out, train, valid, [_callback_class()(progress)])
    checkpoint = last_checkpoint(out) if resume else None
    started = time.perf_counter()
    with while_training(plan):
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        seconds = time.perf_counter() - started
        state = trainer.state
        evaluated = any(h["kind"] == "eval" and h["step"] == state.global_step for h in history)
        # with early stopping the best model is loaded already: no extra pass
        if valid is not None and not progress.stopped and not evaluated and not cfg.early_stopping:
            trainer.evaluate()  # reported through the callback's on_log
    trainer.save_model(str(out))
    trainer.processing_class.save_pretrained(str(out))
    if cfg.merge and cfg.method == "lora":
        tokenizer = trainer.processing_class
        del trainer  # free the training copy first: the merge loads the base model again
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
        peak_rss_gb=round(_peak_rss_gb(), 2),
        plan=plan,
        history=history,
        best_step=best[1] if best else None,
        best_eval_loss=best[0] if best else None,
        early_stopped=cfg.early_stopping and not progress.stopped and state.global_step < planned,
    )
    (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    write_model_card(cfg, result, out)
    progress._event("stopped" if progress.stopped else "end", state, message=f"saved in {out}")
    return result


def merge_adapter(model: str, adapter: str | Path, target: str | Path, *, tokenizer: Any = None) -> Path:
    """Fold a LoRA adapter into a full-precision copy of its base model and save it as a normal model
    folder (``models.load(str(target))`` or any transformers code can use it without PEFT).

    The base is loaded in fp32 whatever the training used, so the merged model answers like base +
    adapter at inference; it costs the base model's size on disk (~540 MB for SmolLM2-135M).
    """
    import gc

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .. import models

    gc.collect()
    source = models.resolve(model)
    base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
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
        ("training data", f"`{cfg.train_file}` (sha256 `{_sha256(settings.project_path(cfg.train_file))[:16]}…`)"),
        ("validation data", f"`{cfg.valid_file}` (sha256 `{_sha256(settings.project_path(cfg.valid_file))[:16]}…`)" if cfg.valid_file else "none"),
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
    return command + "\n\n# several GPUs: accelerate launch --num_processes 8 $(which trl) sft ... (same arguments)"
