"""Data doctor speed and memory: ``lessonlib.data.validate`` vs a plain cookbook loop, one run.

The baseline is what the OpenAI cookbook's data-preparation notebook does: ``json.loads`` each
line into a list, its format checks in a Python loop, then ``encoding.encode`` on every value of
every message (same tiktoken encoding, same counts). Ours streams the file, parses with orjson,
runs more checks (duplicates, personal data, secrets, tool calls), and encodes each distinct
string once in multi-threaded batches.

Each side runs in its own fresh process, interleaved A B A B, so peak RSS is per side.
Prints medians, the speed ratio, and peak RSS at two file sizes (memory must not grow with the file).

    python benchmarks/data_doctor.py [--examples 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS = """
import sys, resource
from lessonlib import data
r = data.validate(sys.argv[1], model="gpt-4o-mini")
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest worker process
print(r.tokens.total, self_kb, workers_kb)
"""

COOKBOOK = """
import sys, json, resource
from collections import defaultdict
from lessonlib import tokens
enc = tokens.encoding_for("gpt-4o-mini")
with open(sys.argv[1], "r", encoding="utf-8") as f:
    dataset = [json.loads(line) for line in f]
format_errors = defaultdict(int)
for ex in dataset:
    if not isinstance(ex, dict):
        format_errors["data_type"] += 1; continue
    messages = ex.get("messages", None)
    if not messages:
        format_errors["missing_messages_list"] += 1; continue
    for message in messages:
        if "role" not in message or "content" not in message:
            format_errors["message_missing_key"] += 1
        if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
            format_errors["message_unrecognized_key"] += 1
        if message.get("role", None) not in ("system", "user", "assistant", "function"):
            format_errors["unrecognized_role"] += 1
        content = message.get("content", None)
        function_call = message.get("function_call", None)
        if (not content and not function_call) or not isinstance(content, str):
            format_errors["missing_content"] += 1
    if not any(message.get("role", None) == "assistant" for message in messages):
        format_errors["example_missing_assistant_message"] += 1
def num_tokens_from_messages(messages, tokens_per_message=3, tokens_per_name=1):
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            num_tokens += len(enc.encode(value))
            if key == "name":
                num_tokens += tokens_per_name
    return num_tokens + 3
total = sum(num_tokens_from_messages(ex["messages"]) for ex in dataset)
print(total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 0)
"""


def run(code: str, path: Path) -> tuple[float, int, float, float]:
    """Wall seconds, token total, peak RSS of the process and of its largest worker (MB)."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True).stdout.split()
    return time.perf_counter() - started, int(out[0]), int(out[1]) / 1024, int(out[2]) / 1024


def make_file(n: int, folder: Path) -> Path:
    from lessonlib import corpora

    path = folder / f"recipes-{n}.jsonl"
    corpora.write_jsonl(corpora.generate("recipes", n, seed=7), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = make_file(args.examples, Path(tmp))
        small = make_file(args.examples // 10, Path(tmp))
        ours, base = [], []
        for _ in range(args.rounds):
            ours.append(run(OURS, big))
            base.append(run(COOKBOOK, big))
        assert ours[0][1] == base[0][1], f"token totals differ: {ours[0][1]} vs {base[0][1]}"
        t_ours, t_base = statistics.median(r[0] for r in ours), statistics.median(r[0] for r in base)
        small_ours, rss_small_base = run(OURS, small), run(COOKBOOK, small)[2]
        print(f"{args.examples:,} examples, {big.stat().st_size / 1e6:.0f} MB; identical token total {ours[0][1]:,}")
        print(f"  lessonlib validate : median {t_ours:6.2f} s  peak RSS {max(r[2] for r in ours):6.0f} MB, "
              f"largest worker {max(r[3] for r in ours):.0f} MB "
              f"(at {args.examples // 10:,} examples: {small_ours[2]:.0f} MB, workers {small_ours[3]:.0f} MB)")
        print(f"  cookbook loop      : median {t_base:6.2f} s  peak RSS {max(r[2] for r in base):6.0f} MB "
              f"(at {args.examples // 10:,} examples: {rss_small_base:.0f} MB)")
        print(f"  speed-up           : {t_base / t_ours:.2f}x (cookbook time / lessonlib time, same process start-up included)")


if __name__ == "__main__":
    main()
