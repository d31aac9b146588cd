"""The SFT recipe: TRL's ``SFTTrainer`` with a PEFT LoRA adapter, on the libraries' public APIs only.

This is the code of the Hugging Face TRL tutorial, and the code notebook 04 writes cell by cell:
a tokenizer whose chat template marks the replies, the model, a ``LoraConfig``, an ``SFTConfig``,
an ``SFTTrainer``, ``trainer.train()``, ``trainer.save_model()``, and ``PeftModel.from_pretrained``
to use the adapter afterwards. Copy it to a GPU machine and it runs there unchanged.

What it takes from elsewhere: the run's settings (:class:`~lessonlib.train.config.RunConfig`) and the
public settings chosen for this machine (:class:`~lessonlib.train.machine.MachinePlan`: device,
bf16, activation checkpointing, padding-free batches). The runner (:mod:`lessonlib.train.runner`)
adds the machine plan, the optional measures of :mod:`lessonlib.train.optimizations`, checkpoints,
resume and the model card around these same calls.

>>> from lessonlib.train import RunConfig, plan_for                     # doctest: +SKIP
>>> cfg = RunConfig(max_steps=12); plan = plan_for(cfg)                 # doctest: +SKIP
>>> tokenizer = load_tokenizer("smollm2")                               # doctest: +SKIP
>>> trainer = sft_trainer(cfg, plan, "runs/demo", train, None, tokenizer=tokenizer)  # doctest: +SKIP
>>> trainer.train()                                                     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import LessonError
from ..i18n import _
from .config import RunConfig
from .machine import MachinePlan

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


def load_tokenizer(model: str, *, assistant_only_loss: bool = True) -> Any:
    """The model's tokenizer, with a chat template that marks the replies when the loss is on replies only."""
    from transformers import AutoTokenizer

    from .. import models

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if assistant_only_loss:
        if "<|im_start|>" in (tokenizer.chat_template or ""):
            tokenizer.chat_template = CHATML_TRAINING_TEMPLATE
        elif "{% generation %}" not in (tokenizer.chat_template or ""):
            raise LessonError(
                _("the chat template of {model} has no generation markers, so the loss cannot be limited to the replies").format(model=model),
                fix=_("set assistant_only_loss: false, or use a ChatML model such as smollm2"),
            )
    return tokenizer


def load_model(cfg: RunConfig, plan: MachinePlan) -> Any:
    """The base model, its weights stored as the plan says (bf16 with bf16 autocast; NF4 for QLoRA)."""
    import torch
    from transformers import AutoModelForCausalLM

    from .. import models

    load: dict[str, Any] = {"dtype": getattr(torch, plan.weights_dtype)}
    if plan.quantization == "4bit":  # QLoRA: NF4 base weights, bf16 compute (GPU + bitsandbytes)
        from transformers import BitsAndBytesConfig

        load["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if plan.bf16 else torch.float16,
        )
    # The default model's folder for this dtype: its bf16 copy loads without a passing fp32 copy (0.5 GB less).
    model = AutoModelForCausalLM.from_pretrained(models.resolve(cfg.model, dtype=plan.weights_dtype), **load)
    context = getattr(model.config, "max_position_embeddings", None)
    if context and cfg.max_length > context:
        raise LessonError(_("max_length {max_length} is longer than the model's context ({context} tokens)").format(max_length=cfg.max_length, context=context),
                          fix=_("use max_length: {length}").format(length=min(context, 1024)))
    return model


def lora_config(cfg: RunConfig) -> Any | None:
    """PEFT's ``LoraConfig`` for a LoRA run (``None`` for full fine-tuning)."""
    if cfg.method != "lora":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,  # rank of the two small matrices added beside each target layer: more = more capacity
        lora_alpha=cfg.lora_alpha,  # the update is scaled by alpha / r
        lora_dropout=cfg.lora_dropout,  # dropout on the adapter's input
        # which linear layers get an adapter ("all-linear": every one but the output layer)
        target_modules="all-linear" if list(cfg.lora_target_modules) == ["all-linear"] else list(cfg.lora_target_modules),
        task_type="CAUSAL_LM",
    )


def sft_config(cfg: RunConfig, plan: MachinePlan, output_dir: str | Path) -> Any:
    """TRL's ``SFTConfig`` for the run: ``cfg``'s training settings and the plan's machine settings."""
    from trl import SFTConfig

    eval_on = cfg.valid_file is not None and cfg.eval_every > 0  # periodic evaluation; the runner adds a final one
    early = eval_on and cfg.early_stopping
    save_steps = cfg.eval_every if early else cfg.save_every if cfg.save_every > 0 else max(cfg.max_steps, 1_000_000)
    per_pass = plan.examples_per_pass(cfg.batch_size)  # a step's examples, or fewer a pass where memory is short
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,  # optimiser steps; -1: use num_train_epochs
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=per_pass,
        per_device_eval_batch_size=per_pass,
        gradient_accumulation_steps=cfg.grad_accum * (cfg.batch_size // per_pass),  # passes added up into one step
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,  # linear: decays to zero at the last step
        warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.log_every,
        eval_strategy="steps" if eval_on else "no",
        eval_steps=cfg.eval_every if eval_on else None,
        save_strategy="steps",
        save_steps=save_steps,  # early stopping saves at every evaluation, so the best one can be restored
        save_total_limit=2,  # the best checkpoint is always kept as well
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        greater_is_better=False if early else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=plan.bf16,  # TRL's default is True: fast on GPUs and bf16 CPUs, ~3x slower on other CPUs
        gradient_checkpointing=plan.activation_checkpointing,  # TRL's default is True: less memory, ~30% more time
        use_cpu=plan.device == "cpu",
        assistant_only_loss=cfg.assistant_only_loss,  # loss on the {% generation %} parts only: the replies
        packing=cfg.packing,
        # padding-free: the examples of a step end to end in one row, no pad tokens; TRL then leaves truncation
        # to the data, so the plan chooses it only when every example fits max_length
        padding_free=plan.padding_free,
        max_length=None if plan.padding_free else cfg.max_length,
        pad_to_multiple_of=plan.pad_to_multiple_of,
        include_num_input_tokens_seen="non_padding",
        prediction_loss_only=True,  # the validation loss is all we use: no per-token outputs kept
        report_to="none",
        disable_tqdm=True,  # progress comes as lessonlib events
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        log_level="error",
    )


def sft_trainer(cfg: RunConfig, plan: MachinePlan, output_dir: str | Path, train: list[dict[str, Any]],
                valid: list[dict[str, Any]] | None, *, tokenizer: Any = None, callbacks: list[Any] | None = None) -> Any:
    """The configured ``SFTTrainer``: model loaded, LoRA attached, data in *messages* format."""
    from trl import SFTTrainer

    from ..data import to_hf_dataset

    tokenizer = tokenizer or load_tokenizer(cfg.model, assistant_only_loss=cfg.assistant_only_loss)
    callbacks = list(callbacks or [])
    if cfg.valid_file is not None and cfg.eval_every > 0 and cfg.early_stopping:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = SFTTrainer(
        model=load_model(cfg, plan),
        args=sft_config(cfg, plan, output_dir),
        train_dataset=to_hf_dataset(train),
        eval_dataset=to_hf_dataset(valid) if valid is not None else None,
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
        callbacks=callbacks,
    )
    from transformers import PrinterCallback, ProgressCallback

    for noisy in (PrinterCallback, ProgressCallback):  # progress comes as lessonlib events
        trainer.remove_callback(noisy)
    return trainer


def load_adapter(model: str, adapter: str | Path) -> Any:
    """The base model in fp32 with a saved LoRA adapter attached (``PeftModel``): to generate, or to merge."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from .. import models

    base = AutoModelForCausalLM.from_pretrained(models.resolve(model), dtype=torch.float32)
    return PeftModel.from_pretrained(base, str(adapter))
