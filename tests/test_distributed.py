"""Training on several processes, for real, on 2 CPU processes (gloo): the exported run with TRL's own command line,
and the service's jobs under a launcher.

Each takes about a minute and both cores, so `make test` leaves them out (its time budget); `make
test-distributed` runs them (``RUN_DISTRIBUTED_TEST=1``).
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


def _workers(job_id: str) -> list:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        if job_id in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def test_the_service_trains_each_job_on_two_processes_resumes_it_and_cancel_ends_them_all(tmp_path):
    """``lessonlib serve --launcher "torchrun --nproc_per_node 2"``: a job trains on 2 CPU processes (gloo); after a
    kill -9 of the service it resumes from its checkpoint on 2 processes again; a cancelled job leaves no process."""
    import sys
    import time

    from test_service import Service, _data, _wait

    launcher = f"{sys.executable} -m torch.distributed.run --nproc_per_node 2"
    svc = Service(tmp_path / "state", "--launcher", launcher, OMP_NUM_THREADS="1").start()
    try:
        client = svc.client()
        train, _ = _data(tmp_path, 16)
        uploaded = client.files.create(file=Path(train), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini", hyperparameters={"n_epochs": 2})
        _wait(client, job.id, until=lambda j: bool(client.fine_tuning.jobs.checkpoints.list(j.id).data), timeout=600)
        assert len([p for p in _workers(job.id) if "lessonlib.service.worker" in " ".join(p.cmdline())]) >= 2
        svc.kill()
        svc.start()
        client = svc.client()
        done = _wait(client, job.id, timeout=600)
        assert done.status == "succeeded", done.error
        messages = [e.message for e in client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=200).data]
        assert "Training on 2 processes, 1 example(s) each a step" in messages
        assert any("Resuming from checkpoint-8" in m for m in messages), messages
        assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id).data] == [16, 8]
        assert client.chat.completions.create(model=done.fine_tuned_model, max_tokens=4,
                                              messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content is not None

        job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini", hyperparameters={"n_epochs": 3})
        _wait(client, job.id, until=lambda j: any(e.message.startswith("Step 1/") for e in
                                                  client.fine_tuning.jobs.list_events(fine_tuning_job_id=j.id, limit=5).data))
        assert len(_workers(job.id)) >= 3  # the launcher and its 2 processes
        assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
        deadline = time.monotonic() + 30
        while _workers(job.id) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _workers(job.id) == []
    finally:
        svc.stop()
