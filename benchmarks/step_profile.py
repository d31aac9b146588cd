"""Where the time of a default training step goes on this CPU, and how much any speed-up could still win.

Runs the default local fine-tune (``RunConfig()`` with the machine plan the runner would choose,
no validation) under ``torch.profiler`` and sorts the CPU time of the profiled steps into:

* **matrix products** (``aten::mm``/``addmm``/``bmm``…), with their FLOP/s against the CPU's peak;
* **attention** (the SDPA kernels, forward and backward);
* **bf16 weight widening** (the lean path's ``copy_`` of frozen bf16 weights to fp32);
* **other tensor ops** (elementwise, reductions, other copies, allocation);
* **Python and framework**: the rest of the step (modules, hooks, autograd engine, Trainer).

Then the ceiling: how much faster a step would be if everything but matrix products and attention
cost nothing, which is about what fused kernels (``torch.compile``, a C++ extension) could
approach. A plain TRL script does the same matrix products on the same tokens (more, in fact: it
scores every position), so this bounds what any runner can gain over it on this CPU.

The profiler adds a little time to every op, so the small categories read slightly high.

    python benchmarks/step_profile.py [--steps 8] [--budget 1.5]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from tempfile import TemporaryDirectory

MATMUL = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="steps timed without the profiler, then as many profiled (after 2 warm-up steps)")
    parser.add_argument("--budget", type=float, default=1.5, help="memory_budget_gb for the plan (default 1.5, as RunConfig)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch
    from transformers import TrainerCallback

    from lessonlib.train import RunConfig, run

    sys.path.insert(0, str(Path(__file__).parent))
    from train_settings import peak_gflops

    settle, warmup = 2, 1  # first steps: allocator and kernel warm-up; then args.steps timed without the profiler
    wait = settle + args.steps
    with TemporaryDirectory() as tmp:
        cfg = RunConfig(output_dir=f"{tmp}/run", max_steps=wait + warmup + args.steps, valid_file=None, save_every=0,
                        overwrite=True, memory_budget_gb=args.budget)
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True, record_shapes=True,
                                          schedule=torch.profiler.schedule(wait=wait, warmup=warmup, active=args.steps, repeat=1))

        timed: dict[str, list[tuple[float, int]]] = {"plain": [], "profiled": []}  # (seconds, tokens) of each step in each window

        weight_shapes: set[str] = set()

        class Step(TrainerCallback):
            def on_train_begin(self, args: object, state: object, control: object, model: object = None, **_: object) -> None:
                weight_shapes.update(repr(list(m.weight.shape)) for m in model.modules() if isinstance(m, torch.nn.Linear))
                profiler.start()

            def on_train_end(self, *_: object, **__: object) -> None:
                profiler.stop()

            def on_step_begin(self, args: object, state: object, *_: object, **__: object) -> None:
                self.started, self.tokens = time.perf_counter(), state.num_input_tokens_seen

            def on_step_end(self, args: object, state: object, *_: object, **__: object) -> None:
                window = "plain" if settle < state.global_step <= wait else "profiled" if state.global_step > wait + warmup else None
                if window:
                    timed[window].append((time.perf_counter() - self.started, state.num_input_tokens_seen - self.tokens))
                profiler.step()

        plan = run(cfg, callbacks=[Step()], owns_process=True).plan  # the runner itself: its plan and measures
    events = profiler.key_averages(group_by_input_shape=True)
    total = sum(e.cpu_time_total for e in events if e.key.startswith("ProfilerStep"))
    parts = {"matrix products": 0.0, "attention (SDPA)": 0.0, "bf16 weight widening": 0.0, "other tensor ops": 0.0}
    flops = 0.0
    for e in events:
        if not e.key.startswith("aten::"):
            continue
        if e.key in MATMUL:
            parts["matrix products"] += e.self_cpu_time_total
            flops += e.flops or 0
        elif "scaled_dot_product" in e.key or "flash_attention" in e.key:
            parts["attention (SDPA)"] += e.self_cpu_time_total
        elif plan.uses("lean_fp32") and e.key == "aten::copy_" and e.input_shapes and repr(list(e.input_shapes[0])) in weight_shapes:
            parts["bf16 weight widening"] += e.self_cpu_time_total  # a weight-shaped copy: widening a frozen bf16 weight
        else:
            parts["other tensor ops"] += e.self_cpu_time_total
    parts["Python and framework"] = max(0.0, total - sum(parts.values()))
    step = total / args.steps / 1e6
    peak = peak_gflops()
    plain_rate = sum(t for _, t in timed["plain"]) / sum(s for s, _ in timed["plain"])
    profiled_tokens = sum(t for _, t in timed["profiled"])
    print(f"the default run: {args.steps} steps timed ({plain_rate:.0f} real tokens/s), then {args.steps} profiled "
          f"({step:.2f} s a step, {profiled_tokens / args.steps:.0f} real tokens a step; the profiler slows small ops)")
    print("  plan: " + "; ".join(plan.reasons[:5]))
    for name, micros in parts.items():
        extra = ""
        if name == "matrix products" and micros:
            rate = flops / (micros / 1e6) / 1e9
            extra = f"  {rate:5.0f} GFLOP/s = {rate / peak:.0%} of the CPU's ~{peak:.0f} GFLOP/s fp32 peak"
        print(f"  {name:<22} {micros / total:5.0%}  {micros / args.steps / 1e6:5.2f} s a step{extra}")
    essential = (parts["matrix products"] + parts["attention (SDPA)"]) / 1e6 / profiled_tokens  # seconds a token
    ceiling = 1 / plain_rate / essential
    print(f"  ceiling: matrix products and attention alone take {essential * plain_rate:.0%} of an unprofiled step's time a token; "
          f"with everything else free a step would be at most {ceiling:.2f}x faster, on this CPU, for any runner doing the same products")


if __name__ == "__main__":
    main()
