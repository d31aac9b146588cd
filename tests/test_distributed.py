"""The exported run on several processes, for real: TRL's own command line under accelerate, 2 CPU processes (gloo).

It takes about a minute and both cores, so `make test` leaves it out for now (its time budget); `make
test-distributed` runs it (``RUN_DISTRIBUTED_TEST=1``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from lessonlib.train import RunConfig
from lessonlib.train.export import CPU_ARGS, export

pytestmark = pytest.mark.skipif(os.environ.get("RUN_DISTRIBUTED_TEST") != "1",
                                reason="two training processes take a minute: `make test-distributed` runs this")


def test_the_exported_run_trains_on_two_cpu_processes_as_on_one(tmp_path):
    """The exported folder trains with TRL's own script (``trl.scripts.sft``) started by torchrun on this machine's
    CPUs: one process with 2 steps of gradient accumulation, then 2 processes (DDP over gloo) with none. The global
    batch is the same (4), and so is the order of the examples (each process takes every other one of the same
    shuffled order), so each step's loss is the same to rounding: within 0.02."""
    import re
    import subprocess
    import sys

    from lessonlib import models

    data = tmp_path / "small.jsonl"
    data.write_text("".join(Path("data/recipes/train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:16]))
    cfg = RunConfig(train_file=str(data), valid_file=None, max_steps=0, epochs=1, batch_size=2, grad_accum=2,
                    max_length=160, lora_r=4, save_every=0)
    folder = export(cfg, tmp_path / "run")
    settings = yaml.safe_load((folder / "sft.yaml").read_text())
    (folder / "sft.yaml").write_text(yaml.safe_dump({**settings, "model_name_or_path": models.resolve(None)}))  # offline
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    losses = {}
    for processes, accumulation in ((1, 2), (2, 1)):
        done = subprocess.run(["torchrun", "--nproc_per_node", str(processes), "-m", "trl.scripts.sft", "--config", "sft.yaml",
                               *CPU_ARGS, "--gradient_accumulation_steps", str(accumulation), "--output_dir", f"out{processes}"],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        losses[processes] = [float(loss) for loss in re.findall(r"\{'loss': '([0-9.]+)'", done.stdout)]  # the trainer's log
        assert len(losses[processes]) >= 3, done.stdout[-2000:]  # an epoch of about 16 examples, 4 a step
    assert len(losses[1]) == len(losses[2]), losses
    assert all(abs(a - b) <= 0.02 for a, b in zip(losses[1], losses[2], strict=True)), losses
