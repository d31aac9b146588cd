"""The local runner's GPU paths, checked end to end on a machine with a CUDA GPU, in one process.

The CPU path is tested by the suite and measured by ``train_settings.py``; CI has no GPU, so this
script is how the GPU path (bf16, QLoRA through bitsandbytes, full fine-tuning, stop and resume,
answering with the adapter, merging) gets exercised when a session is lent one. It prints:

* the environment (GPU, bf16, versions, whether bitsandbytes is importable);
* the same short LoRA fine-tune run several ways, interleaved over ``--rounds`` after a warm-up:
  ``lessonlib`` (the runner's GPU plan: bf16, padding-free, 4-bit QLoRA only when memory is short),
  ``lessonlib-qlora`` (QLoRA forced on), ``trl-same`` (a plain TRL script with exactly the
  runner's settings: its overhead), ``trl-padded`` (the same with padded batches), ``trl-default``
  (``SFTConfig`` as shipped, model given by path), and once ``lessonlib-full`` (every weight);
  seconds a step, real tokens/s and peak GPU memory each;
* a run stopped after a few steps, then resumed from its checkpoint to the planned end;
* the adapter answering through ``models.load(adapter=...)`` on the GPU, and a merged copy;
* the run as ``lessonlib train export`` writes it, trained by ``trl sft`` under each accelerate
  configuration the machine can take (one GPU; DDP, FSDP2 and ZeRO-3 with two or more), and for
  each one it cannot, why it was skipped.

Scope and limits: SmolLM2-135M is tiny for a GPU, so step times measure overheads (Python,
launches, the data collator) more than matrix work; the ratios say which path is lighter, not what
a 7B model would gain. ``--random-init FOLDER`` builds the model from ``FOLDER``'s ``config.json``
and tokenizer files with random weights, for GPU machines the real weights cannot reach (no
network, no room to carry them): code paths, speed and memory are the same, the answers are noise
and the losses start near ln(49152) ~ 10.8.

    python benchmarks/gpu_check.py [--steps 30] [--rounds 2] [--random-init FOLDER] [--device cuda]

``--device cpu --steps 2 --rounds 1`` is a dry run of the script itself on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def environment(device: str) -> dict[str, Any]:
    """Versions and the accelerator, as one dict."""
    import importlib.metadata as md

    import torch

    info: dict[str, Any] = {"python": sys.version.split()[0], "device": device}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes"):
        try:
            info[name] = md.version(name)
        except md.PackageNotFoundError:
            info[name] = None
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 1e9, 1)
    try:
        import bitsandbytes  # noqa: F401

        info["bitsandbytes_imports"] = True
    except Exception as exc:  # noqa: BLE001 - a broken install must not stop the check: the plan then says QLoRA off
        info["bitsandbytes_imports"] = f"{exc.__class__.__name__}: {exc}"[:200]
    return info


def random_init_model(source: Path) -> Path:
    """Write a random-weight model with ``source``'s config and tokenizer where ``"smollm2"`` resolves."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from lessonlib import models

    target = models.default_cache_path()
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(source)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.do_sample = False
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    models.write_manifest(target, Path("random-init"))
    return target


def _gpu_peak_gb(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 1e9, 3) if device.startswith("cuda") else None


def _reset(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_lessonlib(folder: str, steps: int, device: str, **settings: Any) -> dict[str, Any]:
    """One run of ``lessonlib.train.run`` with ``settings`` on top of the defaults (no validation)."""
    from lessonlib.train import RunConfig, run

    _reset(device)
    cfg = RunConfig(output_dir=folder, max_steps=steps, valid_file=None, save_every=0, overwrite=True, **settings)
    result = run(cfg)
    _sync(device)
    return {"seconds": result.train_seconds, "tokens_per_s": result.tokens_per_s, "gpu_peak_gb": _gpu_peak_gb(device),
            "loss": result.final_loss, "first_loss": result.first_loss, "plan": result.plan.reasons,
            "quantization": result.plan.quantization, "bf16": result.plan.bf16}


def run_plain_trl(folder: str, steps: int, device: str, mode: str) -> dict[str, Any]:
    """A TRL script: ``mode`` "same" (the recipe with the runner's GPU plan and measures, no runner around it),
    "padded" (the same with padded batches) or "default" (SFTConfig as shipped)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from lessonlib import corpora, data, models
    from lessonlib.train import RunConfig, plan_for, recipe
    from lessonlib.train.optimizations import applied

    _reset(device)
    examples = data.read_examples(corpora.split_path("recipes", "train"))
    context: Any = None
    if mode == "default":  # what a learner gets from the TRL docs: a model path, SFTConfig's defaults
        source = models.resolve("smollm2")
        tok = AutoTokenizer.from_pretrained(source)
        tok.chat_template = recipe.CHATML_TRAINING_TEMPLATE
        lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        settings: dict[str, Any] = {"output_dir": folder, "max_steps": steps, "per_device_train_batch_size": 2, "learning_rate": 2e-3,
                                        "seed": 18, "report_to": "none", "disable_tqdm": True, "save_strategy": "no", "logging_steps": 1,
                                        "include_num_input_tokens_seen": "non_padding", "use_cpu": not device.startswith("cuda")}
        trainer = SFTTrainer(model=source, args=SFTConfig(**settings), train_dataset=Dataset.from_list(examples),
                             processing_class=tok, peft_config=lora)
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # no per-step dicts in the output
    else:
        cfg = RunConfig(valid_file=None, max_steps=steps, save_every=0)
        plan = plan_for(cfg, device=device)
        if mode == "padded":  # the same, but padded batches instead of padding-free rows
            plan.padding_free = False
            plan.measures = [m for m in plan.measures if m != "attention_by_example"]
        trainer = recipe.sft_trainer(cfg, plan, folder, examples, None)
        context = applied(plan.measures, trainer.model)
    _sync(device)
    start = time.perf_counter()
    if context is None:
        trainer.train()
    else:
        with context:
            trainer.train()
    _sync(device)
    seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"seconds": round(seconds, 2), "tokens_per_s": round(trainer.state.num_input_tokens_seen / seconds, 1),
            "gpu_peak_gb": _gpu_peak_gb(device), "loss": losses[-1] if losses else None,
            "first_loss": losses[0] if losses else None,
            "bf16": trainer.args.bf16, "checkpointing": trainer.args.gradient_checkpointing}


def stop_and_resume(folder: str, device: str, stop_at: int = 4, steps: int = 10) -> dict[str, Any]:
    """Stop a run after ``stop_at`` steps (as the widget's Stop button does), then ``resume`` it to ``steps``."""
    from lessonlib.train import RunConfig, StopFlag, last_checkpoint, run

    _reset(device)
    flag = StopFlag()

    def on_event(event: Any) -> None:
        if event.kind == "step" and event.step >= stop_at:
            flag.request()

    cfg = RunConfig(output_dir=folder, max_steps=steps, save_every=0, overwrite=True)
    first = run(cfg, on_event=on_event, stop=flag)
    checkpoint = last_checkpoint(folder)
    second = run(RunConfig(output_dir=folder, max_steps=steps), resume=True)
    return {"stopped_at": first.steps, "stopped": first.stopped, "checkpoint": checkpoint.name if checkpoint else None,
            "resumed_to": second.steps, "eval_loss": second.eval_loss, "card": (Path(folder) / "README.md").is_file()}


def answer_with(folder: str, device: str) -> dict[str, Any]:
    """The adapter answering on ``device`` through ``models.load``, then the same from a merged copy."""
    from lessonlib import models
    from lessonlib.train.runner import merge_adapter

    conversations = [[{"role": "user", "content": text}] for text in ("Give me a recipe for pancakes.", "How do I cook rice?")]
    tuned = models.generate_many(conversations, adapter=folder, max_new_tokens=24)
    lm = models.load("smollm2", adapter=folder)
    where = str(next(lm.model.parameters()).device)
    models.unload()
    merged = merge_adapter("smollm2", folder, Path(folder) / "merged")
    from_merged = models.generate_many(conversations, model=str(merged), max_new_tokens=24)
    models.unload()
    return {"adapter_on": where, "answers": tuned, "merged_same_answers": tuned == from_merged}


def exported_runs(folder: str, steps: int, device: str) -> dict[str, Any]:
    """The run as ``lessonlib train export`` writes it, trained by TRL's own command line under each accelerate
    configuration this machine can take: ``single_gpu`` with one GPU; ``multi_gpu`` (DDP) and ``fsdp2`` with two or
    more; ``zero3`` with two or more and DeepSpeed installed. Each either gives its losses and seconds, or says why it
    was skipped."""
    import re
    import subprocess

    import torch
    import yaml

    from lessonlib import models
    from lessonlib.train import RunConfig
    from lessonlib.train.export import TRL_CONFIGS, export

    gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    try:
        import deepspeed  # noqa: F401
        has_deepspeed = True
    except ImportError:
        has_deepspeed = False
    out = export(RunConfig(max_steps=steps, batch_size=2, save_every=0, eval_every=0), Path(folder))
    values = yaml.safe_load((out / "sft.yaml").read_text())
    (out / "sft.yaml").write_text(yaml.safe_dump({**values, "model_name_or_path": str(models.resolve(None))}))  # offline
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    report: dict[str, Any] = {}
    for name in TRL_CONFIGS:
        needs = {"single_gpu": (gpus >= 1, "no CUDA GPU"), "multi_gpu": (gpus >= 2, f"{gpus} GPU(s); DDP needs 2 or more"),
                 "fsdp2": (gpus >= 2, f"{gpus} GPU(s); FSDP needs 2 or more"),
                 "zero3": (gpus >= 2 and has_deepspeed, "DeepSpeed is not installed" if gpus >= 2 else f"{gpus} GPU(s); ZeRO-3 needs 2 or more")}
        ok, why = needs[name]
        if not ok:
            report[name] = {"skipped": why}
            continue
        processes = ["--num_processes", str(gpus)] if name != "single_gpu" else []
        started = time.perf_counter()
        done = subprocess.run(["trl", "sft", "--config", "sft.yaml", "--accelerate_config", f"accelerate/{name}.yaml", *processes,
                               "--output_dir", f"out-{name}"], cwd=out, env=env, capture_output=True, text=True, timeout=1800,
                              check=False)
        losses = [float(x) for x in re.findall(r"'loss': '?([0-9.]+)", done.stdout)]
        report[name] = {"returncode": done.returncode, "seconds": round(time.perf_counter() - started, 1), "processes": gpus if processes else 1,
                        "first_loss": losses[0] if losses else None, "loss": losses[-1] if losses else None}
        if done.returncode:
            report[name]["error"] = done.stderr[-1500:]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps a measured run (default 30)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the measured ways (default 2)")
    parser.add_argument("--random-init", type=Path, help="build the model with random weights from this folder's config and tokenizer")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a dry run of this script")
    parser.add_argument("--json", type=Path, help="also write every result to this JSON file")
    args = parser.parse_args()
    os.environ["LESSONLIB_DEVICE"] = args.device
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        from lessonlib.train.export import TRL_CONFIGS

        print("gpu_check: no CUDA GPU here, nothing to check (--device cpu --steps 2 --rounds 1 is a dry run of this script); "
              f"skipped: the runner's GPU paths, and the exported run under {', '.join(TRL_CONFIGS)}")
        return
    report: dict[str, Any] = {"environment": environment(args.device)}
    print(json.dumps(report["environment"]), flush=True)
    if args.random_init:
        print(f"random-weight model from {args.random_init} -> {random_init_model(args.random_init)}", flush=True)
    from lessonlib.system import cpu_info  # noqa: F401  (fail here, not mid-run, if lessonlib is broken)

    ways = {
        "lessonlib": lambda f: run_lessonlib(f, args.steps, args.device),
        "lessonlib-qlora": lambda f: run_lessonlib(f, args.steps, args.device, qlora="on"),
        "trl-same": lambda f: run_plain_trl(f, args.steps, args.device, "same"),
        "trl-padded": lambda f: run_plain_trl(f, args.steps, args.device, "padded"),
        "trl-default": lambda f: run_plain_trl(f, args.steps, args.device, "default"),
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        warm = run_lessonlib(f"{tmp}/warm", 3, args.device)  # CUDA context, kernels, caches: not measured
        print("plan: " + "; ".join(warm["plan"]), flush=True)
        for round_ in range(args.rounds):
            for name, way in ways.items():
                row = way(f"{tmp}/{name}")
                results[name].append(row)
                print(f"round {round_ + 1} {name}: {json.dumps({k: v for k, v in row.items() if k != 'plan'})}", flush=True)
        results["lessonlib-full"] = [run_lessonlib(f"{tmp}/full", args.steps, args.device, method="full", learning_rate=5e-5)]
        print(f"lessonlib-full: {json.dumps({k: v for k, v in results['lessonlib-full'][0].items() if k != 'plan'})}", flush=True)
        report["resume"] = stop_and_resume(f"{tmp}/resume", args.device)
        print(f"stop and resume: {json.dumps(report['resume'])}", flush=True)
        report["answers"] = answer_with(f"{tmp}/resume", args.device)
        print(f"answers: {json.dumps(report['answers'])}", flush=True)
        report["exported"] = exported_runs(f"{tmp}/exported", args.steps, args.device)
        for name, row in report["exported"].items():
            print(f"exported run, {name}: {json.dumps(row)}", flush=True)
    report["results"] = results
    # The first use of each way on a GPU is slow (new shapes, kernel choices, lazy initialisation): best of the rounds.
    print(f"\n{args.steps} LoRA steps (batch 2, max_length 256) on the recipe set, best of {args.rounds} round(s), {report['environment'].get('gpu', args.device)}")
    tps = {}
    for name, rows in results.items():
        tps[name] = max(r["tokens_per_s"] for r in rows)
        secs = min(r["seconds"] for r in rows) / args.steps
        peak = max((r["gpu_peak_gb"] or 0) for r in rows)
        print(f"  {name:<15} {secs * 1000:7.1f} ms/step  {tps[name]:8.0f} tokens/s  GPU peak {peak:.2f} GB  loss {rows[0]['first_loss']} -> {rows[-1]['loss']}")
    same = min(r["seconds"] for r in results["lessonlib"]) / min(r["seconds"] for r in results["trl-same"])
    print(f"  lessonlib / trl-same    : {same:.3f}x wall time of training (the runner's overhead; same settings)")
    print(f"  lessonlib / trl-default : {tps['lessonlib'] / tps['trl-default']:.2f}x tokens/s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
