"""How much slower a played laptop CPU is than this one: the same work with this CPU's kernels and with AVX2's.

``LESSONLIB_CPU_WITHOUT=avx512`` plays a laptop's CPU (no AVX-512, no native bf16): lessonlib then computes in fp32,
and torch, oneDNN and MKL take their AVX2 kernels (:func:`lessonlib.system.play_cpu`). This script runs the same
work in fresh processes, interleaved A B A B, on one core each (as a ``make test`` worker has): a LoRA training
step of the default model on 4 recipes (forward and backward, fp32), and 8 greedy replies of 40 tokens. It prints
each side's median and the ratio played / this CPU's fp32, which is what ``make test``'s played run pays against
the same run with bf16 played alone (``avx512_bf16,amx``).

    python benchmarks/cpu_play.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORK = r"""
import json, time, torch
from lessonlib import corpora, data, models, system
from lessonlib.train.recipe import CHATML_TRAINING_TEMPLATE
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(1)
path = models.resolve("smollm2")
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
examples = data.read_examples(corpora.split_path("recipes", "train"))[:8]
tokenizer.chat_template = CHATML_TRAINING_TEMPLATE
batch = tokenizer.apply_chat_template([e["messages"] for e in examples[:4]], return_dict=True, return_tensors="pt",
                                      padding=True)
steps = []
for _ in range(3):
    started = time.perf_counter()
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    steps.append(time.perf_counter() - started)
model.zero_grad(set_to_none=True)
tokenizer.padding_side = "left"
prompts = tokenizer.apply_chat_template([e["messages"][:-1] for e in examples], add_generation_prompt=True,
                                        return_dict=True, return_tensors="pt", padding=True)
started = time.perf_counter()
with torch.no_grad():
    model.generate(**prompts, max_new_tokens=40, min_new_tokens=40, do_sample=False, pad_token_id=tokenizer.pad_token_id)
print(json.dumps({"step_s": min(steps[1:]), "replies_s": time.perf_counter() - started,
                  "kernels": torch.backends.cpu.get_cpu_capability(), "path": system.cpu_numeric_path()}))
"""


def measure(without: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")}
    env.update(LESSONLIB_CPU_WITHOUT=without, HF_HUB_OFFLINE="1", LESSONLIB_OFFLINE="1", PYTHONPATH=str(ROOT))
    core = max(os.sched_getaffinity(0))
    done = subprocess.run(["taskset", "-c", str(core), sys.executable, "-c", WORK], env=env, capture_output=True,
                          text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="A B rounds, interleaved (default 2)")
    args = parser.parse_args()
    sides = {"this CPU, fp32 (avx512_bf16,amx)": "avx512_bf16,amx", "played laptop (avx512)": "avx512"}
    results: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, without in sides.items():
            results[name].append(measure(without))
    medians = {}
    for name, runs in results.items():
        medians[name] = {key: statistics.median(r[key] for r in runs) for key in ("step_s", "replies_s")}
        print(f"{name:<34} kernels {runs[0]['kernels']:<8} {runs[0]['path']:<8} training step {medians[name]['step_s']:.2f} s, "
              f"8 replies of 40 tokens {medians[name]['replies_s']:.2f} s")
    base, played = medians.values()
    print(f"played / this CPU: training step x{played['step_s'] / base['step_s']:.2f}, replies x{played['replies_s'] / base['replies_s']:.2f}")


if __name__ == "__main__":
    main()
