"""Local training speed and memory: lessonlib's runner vs plain TRL scripts, on this machine, in one run.

Four ways to run the same LoRA fine-tune (same model, data, LoRA, batch, max length, steps, seed),
each in its own fresh process, interleaved A B C A B C so drift hits all alike:

* ``lessonlib``  — ``lessonlib.train.run`` with its machine-chosen settings;
* ``trl-same``   — a plain TRL script with exactly the settings the runner chose (bf16 autocast and
  bf16 frozen weights where the CPU has native bf16, else the lean fp32 path of
  ``lessonlib.train.lean``; the loss head on reply tokens only, padding-free batches (padded to a
  multiple of 32 with bf16 weights), freed memory returned, the heap trimmed in forward passes, checkpointing by the
  memory budget): the runner's overhead;
* ``trl-good``   — a plain TRL script with good CPU settings (fp32, no activation checkpointing,
  one thread per core, loss on replies only, TRL's own padding-free batches), what a careful
  learner would write without the runner's machine plan, progress events and bookkeeping;
* ``trl-default`` — a plain TRL script with ``SFTConfig``'s defaults on CPU (bf16 autocast and
  activation checkpointing on, as TRL ships them).

Printed per way: median seconds per step, real (non-padding) training tokens per second, peak RSS,
and the share of the CPU's peak fp32 FLOP/s (LoRA training costs about 4 x parameters FLOPs a token;
the peak assumes 2 AVX-512 FMA units, or 2 AVX2 ones, at the CPU's reported clock). Then the ratios.

    python benchmarks/train_settings.py [--steps 8] [--rounds 2] [--budget 1.5] [--ways lessonlib,trl-same,trl-good,trl-default]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

COMMON = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
STEPS, OUT, BUDGET = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
"""

LESSONLIB = COMMON + """
from lessonlib.train import RunConfig, run
r = run(RunConfig(output_dir=OUT, max_steps=STEPS, valid_file=None, save_every=0, overwrite=True, memory_budget_gb=BUDGET))
print(json.dumps({"seconds": r.train_seconds, "tokens_per_s": r.tokens_per_s, "peak_gb": r.peak_rss_gb,
                  "loss": r.final_loss, "plan": r.plan.reasons}))
"""

PLAIN = COMMON + """
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer
from lessonlib import corpora, data, models
from lessonlib.system import cpu_info
from lessonlib.train.runner import CHATML_TRAINING_TEMPLATE
MODE = sys.argv[4]  # "default": SFTConfig as shipped; "good": fp32, no checkpointing; "same": the runner's plan
torch.set_num_threads(cpu_info()["cores"])
source = models.resolve("smollm2")
tok = AutoTokenizer.from_pretrained(source)
tok.chat_template = CHATML_TRAINING_TEMPLATE
from contextlib import nullcontext
context = nullcontext()
dtype = torch.float32
train = Dataset.from_list([{"messages": e["messages"]} for e in data.read_examples(corpora.split_path("recipes", "train"))])
settings = dict(output_dir=OUT, max_steps=STEPS, per_device_train_batch_size=2, learning_rate=2e-3, seed=18,
                max_length=256, assistant_only_loss=True, use_cpu=True, report_to="none", disable_tqdm=True,
                save_strategy="no", logging_steps=1, include_num_input_tokens_seen="non_padding")
collator = None
if MODE == "good":  # padding-free: TRL's own switch (it then leaves truncation to the data: these examples fit)
    settings.update(bf16=False, gradient_checkpointing=False, padding_free=True, max_length=None)
elif MODE == "same":  # every choice of the runner's machine plan, applied by hand
    from lessonlib.train import RunConfig, plan_for
    from lessonlib.train.runner import adapt_model, model_load_settings, plan_collator, return_freed_memory, while_training
    plan = plan_for(RunConfig(valid_file=None, memory_budget_gb=BUDGET))
    settings.update(bf16=plan.bf16, gradient_checkpointing=plan.activation_checkpointing, pad_to_multiple_of=plan.pad_to_multiple_of)
    dtype = model_load_settings(plan)["dtype"]
    context = while_training(plan)
    collator = plan_collator(plan, tok)
    if plan.return_memory:
        return_freed_memory()
model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
args = SFTConfig(**settings)
lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tok, peft_config=lora, data_collator=collator)
if MODE == "same":
    adapt_model(trainer.model, plan)
start = time.perf_counter()
with context:
    trainer.train()
seconds = time.perf_counter() - start
tokens = trainer.state.num_input_tokens_seen
print(json.dumps({"seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
                  "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2),
                  "loss": trainer.state.log_history[-2].get("loss"), "bf16": args.bf16, "ckpt": args.gradient_checkpointing}))
"""


def run(code: str, steps: int, folder: str, budget: float, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(steps), folder, str(budget), *extra], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_gflops() -> float:
    from lessonlib.system import cpu_info

    cpu = cpu_info()
    mhz = 0.0
    try:
        with open("/proc/cpuinfo") as handle:
            mhz = max(float(line.split(":")[1]) for line in handle if line.startswith("cpu MHz"))
    except (OSError, ValueError):
        mhz = 2500.0
    lanes = 16 if cpu["avx512"] else 8 if cpu["avx2"] else 4
    return cpu["cores"] * mhz / 1000 * lanes * 2 * 2  # cores x GHz x fp32 lanes x 2 FMA units x 2 FLOP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget", type=float, default=1.5, help="memory_budget_gb for the runner's plan (default 1.5, as RunConfig)")
    parser.add_argument("--ways", default="lessonlib,trl-same,trl-good,trl-default",
                        help="which of lessonlib, trl-same, trl-good, trl-default to run (lessonlib is always run)")
    args = parser.parse_args()
    every = {"lessonlib": (LESSONLIB,), "trl-same": (PLAIN, "same"), "trl-good": (PLAIN, "good"), "trl-default": (PLAIN, "default")}
    chosen = {"lessonlib", *(w.strip() for w in args.ways.split(",") if w.strip())}
    unknown = chosen - set(every)
    if unknown:
        parser.error(f"unknown way(s): {', '.join(sorted(unknown))}")
    ways = {name: value for name, value in every.items() if name in chosen}
    results: dict[str, list[dict]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, (code, *extra) in ways.items():
                results[name].append(run(code, args.steps, f"{tmp}/{name}", args.budget, *extra))
    peak = peak_gflops()
    flops_per_token = 4 * 134.5e6
    print(f"{args.steps} LoRA steps (batch 2, max_length 256) on the recipe set; medians of {args.rounds} runs; memory budget {args.budget} GB; "
          f"CPU peak ~{peak:.0f} GFLOP/s fp32")
    tps = {}
    for name, rows in results.items():
        tps[name] = statistics.median(r["tokens_per_s"] for r in rows)
        secs = statistics.median(r["seconds"] for r in rows) / args.steps
        share = tps[name] * flops_per_token / 1e9 / peak
        print(f"  {name:<12} {secs:5.2f} s/step  {tps[name]:6.1f} tokens/s  peak RSS {max(r['peak_gb'] for r in rows):.2f} GB  "
              f"~{share:.0%} of peak FLOP/s  final loss {rows[-1]['loss']}")
    if "trl-same" in results:
        same = statistics.median(r["seconds"] for r in results["lessonlib"]) / statistics.median(r["seconds"] for r in results["trl-same"])
        print(f"  lessonlib / trl-same    : {same:.3f}x wall time of training (the runner's overhead; same settings; target at most 1.05x)")
    if "trl-good" in results:
        print(f"  lessonlib / trl-good    : {tps['lessonlib'] / tps['trl-good']:.2f}x tokens/s (target: at least 1.5x)")
    if "trl-default" in results:
        print(f"  lessonlib / trl-default : {tps['lessonlib'] / tps['trl-default']:.2f}x tokens/s")
    print("  machine plan: " + "; ".join(results["lessonlib"][0]["plan"]))


if __name__ == "__main__":
    main()
