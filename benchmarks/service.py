"""The local fine-tuning service against the same work done directly, on this machine, in one run.

* **Training**: the wall time from ``jobs.create`` to ``succeeded`` (the SDK polling every 0.5 s)
  against ``lessonlib train local`` with the settings the job chose (same data, steps, batch, seed),
  each as a whole process, interleaved over ``--rounds``. Target: at most 1.10x.
* **Chat latency**: ``chat.completions.create`` through the service against ``models.generate`` in
  this process (the reply cache off), same prompts, greedy, 40 tokens. Target: at most 1.10x.
* **Concurrency**: replies per second with 8 clients sending at once (the service generates one
  reply at a time: the model is shared).
* **Memory**: the service's resident memory with the model loaded and no job (what it adds to a
  Binder session), and after a job (the worker gives its memory back when it exits).

    python benchmarks/service.py [--rounds 2] [--examples 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--examples", type=int, default=40, help="training examples (one epoch, batch 2)")
    args = parser.parse_args()
    os.environ.update(HF_HUB_OFFLINE="1", LESSONLIB_OFFLINE="1", LESSONLIB_GENERATION_CACHE="0")
    import psutil
    from test_service import Service, _data, _wait

    from lessonlib import models
    from lessonlib.corpora import recipes

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train, _ = _data(folder, args.examples)
        svc = Service(folder / "state").start()
        try:
            client = svc.client()
            uploaded = client.files.create(file=Path(train), purpose="fine-tune")
            job_s, cli_s = [], []
            for round_ in range(args.rounds):
                started = time.perf_counter()
                job = _wait(client, client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini",
                                                                  hyperparameters={"n_epochs": 1}).id, timeout=1800)
                job_s.append(time.perf_counter() - started)
                assert job.status == "succeeded", job.error
                steps = -(-args.examples // 2)
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "lessonlib", "train", "local", "--data", str(train), "--no-valid",
                                "--out", str(folder / f"cli-{round_}"), "--steps", str(steps), "--save-every", str(steps),
                                "--quiet"], check=True, capture_output=True)
                cli_s.append(time.perf_counter() - started)
            idle_after_job = psutil.Process(svc.process.pid).memory_info().rss / 1e9
            prompts = [[{"role": "system", "content": recipes.SYSTEM_PROMPT},
                        {"role": "user", "content": f"Recipe: Dish {i}\n\n- {i + 1} eggs\n- 200 g flour\n- 1 pinch salt"}]
                       for i in range(6)]
            client.chat.completions.create(model="gpt-4o-mini", messages=prompts[0], max_tokens=40)  # load once
            models.generate(prompts[0], max_new_tokens=40)
            service_s, direct_s = [], []
            for messages in prompts:
                started = time.perf_counter()
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=40, temperature=0)
                service_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                models.generate(messages, max_new_tokens=40)
                direct_s.append(time.perf_counter() - started)
            idle = psutil.Process(svc.process.pid).memory_info().rss / 1e9
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda m: client.chat.completions.create(model="gpt-4o-mini", messages=m, max_tokens=40),
                              [prompts[i % len(prompts)] for i in range(16)]))
            concurrent = 16 / (time.perf_counter() - started)
        finally:
            svc.stop()
    job_m, cli_m = statistics.median(job_s), statistics.median(cli_s)
    print(f"training, {args.examples} examples, 1 epoch (medians of {args.rounds}):")
    print(f"  service job (create -> succeeded) {job_m:6.1f} s   lessonlib train local {cli_m:6.1f} s   "
          f"ratio {job_m / cli_m:.2f}x (target at most 1.10x)")
    service_m, direct_m = statistics.median(service_s), statistics.median(direct_s)
    print(f"chat, 40 tokens greedy: service {service_m:.2f} s   direct {direct_m:.2f} s   ratio {service_m / direct_m:.2f}x (target at most 1.10x)")
    print(f"8 concurrent clients: {concurrent:.2f} replies/s (one generation at a time)")
    print(f"service memory: {idle:.2f} GB with the model loaded and no job; {idle_after_job:.2f} GB right after two jobs "
          "(before any chat: the worker's memory went with it)")


if __name__ == "__main__":
    main()
