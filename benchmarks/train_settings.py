"""Local training speed and memory: lessonlib's runner, with and without its optional measures, vs plain TRL scripts.

Four ways to run the same LoRA fine-tune (same model, data, LoRA, batch, max length, steps, seed),
each in its own fresh process, interleaved A B C A B C so drift hits all alike:

* ``lessonlib``   — ``lessonlib.train.run`` with its machine plan and the optional measures it switches on
  (``lessonlib.train.optimizations``), under the memory budget;
* ``public``      — ``lessonlib.train.run`` with ``measures="off"`` and the public settings of ``trl-good``
  (no activation checkpointing, bf16 only where the CPU has it natively): the runner's own overhead;
* ``trl-good``    — a plain TRL script with good public settings for this CPU (bf16 autocast only with native
  bf16, else fp32; no activation checkpointing; one thread per core; loss on replies only; TRL's own
  padding-free batches), what a careful learner would write;
* ``trl-default`` — a plain TRL script with ``SFTConfig``'s defaults on CPU (bf16 autocast and
  activation checkpointing on, as TRL ships them).

Printed per way: median seconds per step, real (non-padding) training tokens per second, peak RSS,
and the share of the CPU's peak fp32 FLOP/s (LoRA training costs about 4 x parameters FLOPs a token;
the peak assumes 2 AVX-512 FMA units, or 2 AVX2 ones, at the CPU's reported clock). Then the ratios:
``public / trl-good`` (the runner's overhead: at least 0.95x) and ``lessonlib / trl-good`` (what the
plan and the measures buy). ``--bf16 off`` compares on fp32 as a CPU without native bf16 would.

    python benchmarks/train_settings.py [--steps 8] [--rounds 2] [--budget 1.5] [--bf16 auto|off] [--ways lessonlib,public,trl-good,trl-default]
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
STEPS, OUT, BUDGET, BF16 = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
"""

LESSONLIB = COMMON + """
from lessonlib.train import RunConfig, run
MODE = sys.argv[5]  # "plan": the machine plan and its measures; "public": measures off, trl-good's public settings
extra = dict(measures="off", activation_checkpointing="off") if MODE == "public" else {}
r = run(RunConfig(output_dir=OUT, max_steps=STEPS, valid_file=None, save_every=0, overwrite=True, memory_budget_gb=BUDGET, bf16=BF16,
                  **extra))
print(json.dumps({"seconds": r.train_seconds, "tokens_per_s": r.tokens_per_s, "peak_gb": r.peak_rss_gb,
                  "loss": r.final_loss, "plan": r.plan.reasons}))
"""

PLAIN = COMMON + """
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
from lessonlib import corpora, data, models
from lessonlib.system import cpu_info
from lessonlib.train.recipe import CHATML_TRAINING_TEMPLATE
MODE = sys.argv[5]  # "default": SFTConfig as shipped; "good": good public settings for this CPU
cpu = cpu_info()
torch.set_num_threads(cpu["cores"])
source = models.resolve("smollm2")
tok = AutoTokenizer.from_pretrained(source)
tok.chat_template = CHATML_TRAINING_TEMPLATE
train = Dataset.from_list([{"messages": e["messages"]} for e in data.read_examples(corpora.split_path("recipes", "train"))])
settings = dict(output_dir=OUT, max_steps=STEPS, per_device_train_batch_size=2, learning_rate=2e-3, seed=18,
                max_length=320, assistant_only_loss=True, use_cpu=True, report_to="none", disable_tqdm=True,
                save_strategy="no", logging_steps=1, include_num_input_tokens_seen="non_padding")
if MODE == "good":  # padding-free: TRL's own switch (it then leaves truncation to the data: these examples fit)
    native = bool(cpu["avx512_bf16"] or cpu["amx"]) and BF16 != "off"
    settings.update(bf16=native, gradient_checkpointing=False, padding_free=True, max_length=None)
model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
args = SFTConfig(**settings)
lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tok, peft_config=lora)
start = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - start
tokens = trainer.state.num_input_tokens_seen
print(json.dumps({"seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
                  "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2),
                  "loss": trainer.state.log_history[-2].get("loss"), "bf16": args.bf16, "ckpt": args.gradient_checkpointing}))
"""


def run(code: str, steps: int, folder: str, budget: float, bf16: str, *extra: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(steps), folder, str(budget), bf16, *extra], check=True, capture_output=True, text=True)
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
    parser.add_argument("--bf16", choices=["auto", "off"], default="auto", help="off: fp32 everywhere, as on a CPU without native bf16")
    parser.add_argument("--ways", default="lessonlib,public,trl-good,trl-default",
                        help="which of lessonlib, public, trl-good, trl-default to run (lessonlib is always run)")
    args = parser.parse_args()
    every = {"lessonlib": (LESSONLIB, "plan"), "public": (LESSONLIB, "public"), "trl-good": (PLAIN, "good"), "trl-default": (PLAIN, "default")}
    chosen = {"lessonlib", *(w.strip() for w in args.ways.split(",") if w.strip())}
    unknown = chosen - set(every)
    if unknown:
        parser.error(f"unknown way(s): {', '.join(sorted(unknown))}")
    ways = {name: value for name, value in every.items() if name in chosen}
    results: dict[str, list[dict]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, (code, *extra) in ways.items():
                results[name].append(run(code, args.steps, f"{tmp}/{name}", args.budget, args.bf16, *extra))
    peak = peak_gflops()
    flops_per_token = 4 * 134.5e6
    print(f"{args.steps} LoRA steps (batch 2) on the recipe set; medians of {args.rounds} runs; memory budget {args.budget} GB; bf16 {args.bf16}; "
          f"CPU peak ~{peak:.0f} GFLOP/s fp32")
    tps = {}
    for name, rows in results.items():
        tps[name] = statistics.median(r["tokens_per_s"] for r in rows)
        secs = statistics.median(r["seconds"] for r in rows) / args.steps
        share = tps[name] * flops_per_token / 1e9 / peak
        print(f"  {name:<12} {secs:5.2f} s/step  {tps[name]:6.1f} tokens/s  peak RSS {max(r['peak_gb'] for r in rows):.2f} GB  "
              f"~{share:.0%} of peak FLOP/s  final loss {rows[-1]['loss']}")
    if "trl-good" in results and "public" in results:
        print(f"  public / trl-good       : {tps['public'] / tps['trl-good']:.2f}x tokens/s (the runner with every measure off; target at least 0.95x)")
    if "trl-good" in results:
        print(f"  lessonlib / trl-good    : {tps['lessonlib'] / tps['trl-good']:.2f}x tokens/s (what the plan and its measures buy)")
    if "trl-default" in results:
        print(f"  lessonlib / trl-default : {tps['lessonlib'] / tps['trl-default']:.2f}x tokens/s")
    print("  machine plan: " + "; ".join(results["lessonlib"][0]["plan"]))


if __name__ == "__main__":
    main()
