"""The same run for another machine: a folder that TRL's own command line trains, on one GPU, several, or CPU processes.

Scope: :func:`export` writes, for a :class:`~lessonlib.train.config.RunConfig`,

* ``sft.yaml``: the run as TRL's own configuration file (``trl sft --config sft.yaml``): model, data, LoRA and the
  optimisation settings of the run;
* ``chat_template.jinja``: the model's chat template with the replies marked (``{% generation %}``), so that the
  loss is on the replies only, as in the course;
* ``data/``: the run's training and validation files (``train.jsonl``, ``validation.jsonl``), so the folder travels
  alone;
* ``accelerate/``: accelerate's configurations for one GPU, several GPUs (DDP), FSDP2 and DeepSpeed ZeRO-3, as TRL
  ships them (``trl/accelerate_configs``), and one for several CPU processes (``multi_cpu.yaml``);
* ``launch.sh``: ``trl sft --config sft.yaml --accelerate_config accelerate/<which>.yaml`` (for CPU processes,
  ``torchrun -m trl.scripts.sft``: accelerate's own MULTI_CPU launcher needs mpirun);
* ``README.md``: which configuration to pick, and what each changes in memory and speed.

Limits: TRL's script trains with TRL's and PEFT's public settings only: the lessonlib runner's machine plan and its
optional optimizations are for this laptop, not part of the export. The base model is the Hub id of the local model
(``HuggingFaceTB/SmolLM2-135M-Instruct``) unless the run names another; ``model_name_or_path`` in ``sft.yaml`` may
point at a local folder instead.

>>> from lessonlib.train import RunConfig
>>> sorted(trl_settings(RunConfig(max_steps=4)))[:3]
['assistant_only_loss', 'chat_template_path', 'dataset_name']
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import LessonError
from ..i18n import _
from .config import RunConfig

#: accelerate's configurations copied from TRL's package: name -> what it is for.
TRL_CONFIGS = {
    "single_gpu": "one GPU",
    "multi_gpu": "several GPUs of one machine, each with a whole copy of the model (DDP)",
    "fsdp2": "several GPUs, the model's weights, gradients and optimiser state sharded across them (FSDP2)",
    "zero3": "several GPUs with DeepSpeed ZeRO-3 (sharded like FSDP; needs `pip install deepspeed`)",
}

#: What `trl sft` needs on CPUs: TRL turns bf16 on by default, which only a GPU may take.
CPU_ARGS = ("--use_cpu", "true", "--bf16", "false")
#: Several processes on one machine's CPUs (gloo), for a check without a GPU.
MULTI_CPU = """\
compute_environment: LOCAL_MACHINE
debug: false
distributed_type: MULTI_CPU
downcast_bf16: 'no'
machine_rank: 0
main_training_function: main
mixed_precision: 'no'
num_machines: 1
num_processes: 2
rdzv_backend: static
same_network: true
use_cpu: true
"""


def trl_settings(cfg: RunConfig, *, data: str = "data") -> dict[str, Any]:
    """The run as the arguments of TRL's ``sft`` script (its ``ScriptArguments``, ``SFTConfig`` and ``ModelConfig``)."""
    from .. import models

    base = models.DEFAULT_MODEL_ID if cfg.model.lower() == models.DEFAULT_MODEL else cfg.model
    values: dict[str, Any] = {
        "model_name_or_path": base,
        "dataset_name": data,  # a folder: train.jsonl and validation.jsonl become the train and validation splits
        "dataset_train_split": "train",
        "dataset_test_split": "validation",
        "output_dir": "output",
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler,
        "warmup_steps": cfg.warmup_steps,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "max_length": cfg.max_length,
        "packing": cfg.packing,
        "assistant_only_loss": cfg.assistant_only_loss,
        "seed": cfg.seed,
        "logging_steps": cfg.log_every,
        "save_strategy": "steps" if cfg.save_every else "no",
        "report_to": "none",
    }
    if cfg.save_every:
        values["save_steps"] = cfg.save_every
    if cfg.max_steps:
        values["max_steps"] = cfg.max_steps
    else:
        values["num_train_epochs"] = cfg.epochs
    if cfg.valid_file:
        values.update(eval_strategy="steps" if cfg.eval_every else "no", per_device_eval_batch_size=cfg.batch_size)
        if cfg.eval_every:
            values["eval_steps"] = cfg.eval_every
    else:
        values["eval_strategy"] = "no"
    if cfg.assistant_only_loss and cfg.model.lower() == models.DEFAULT_MODEL:
        values["chat_template_path"] = "chat_template.jinja"  # SmolLM2's template with the replies marked for the loss
    if cfg.method == "lora":
        values.update(use_peft=True, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      lora_target_modules=list(cfg.lora_target_modules))
    return values


def export(cfg: RunConfig, out: str | Path) -> Path:
    """Write the folder described above into ``out`` (created; an existing file there is replaced) and return it."""
    import yaml

    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "accelerate").mkdir(exist_ok=True)
    for name, source in (("train", cfg.train_file), ("validation", cfg.valid_file)):
        if source is None:
            continue
        path = settings.project_path(source)
        if not path.is_file():
            raise LessonError(_("{path} does not exist").format(path=source),
                              fix=_("pass --data FILE (and --valid FILE, or --no-valid) with files that exist"))
        shutil.copyfile(path, out / "data" / f"{name}.jsonl")
    values = trl_settings(cfg)
    if cfg.valid_file is None:
        del values["dataset_test_split"]
    if "chat_template_path" in values:
        from .recipe import CHATML_TRAINING_TEMPLATE

        (out / values["chat_template_path"]).write_text(CHATML_TRAINING_TEMPLATE, encoding="utf-8")
    (out / "sft.yaml").write_text("# TRL's own configuration of this run: trl sft --config sft.yaml\n"
                                  + yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    shipped = resources.files("trl").joinpath("accelerate_configs")
    for name in TRL_CONFIGS:
        (out / "accelerate" / f"{name}.yaml").write_text(shipped.joinpath(f"{name}.yaml").read_text(encoding="utf-8"),
                                                          encoding="utf-8")
    (out / "accelerate" / "multi_cpu.yaml").write_text(MULTI_CPU, encoding="utf-8")
    launch = out / "launch.sh"
    launch.write_text(_LAUNCH, encoding="utf-8")
    launch.chmod(0o755)
    (out / "README.md").write_text(_README.format(model=values["model_name_or_path"]), encoding="utf-8")
    return out


_LAUNCH = """\
#!/usr/bin/env bash
# Train this run with TRL's own command line. Usage: ./launch.sh [single_gpu|multi_gpu|fsdp2|zero3|multi_cpu] [more trl sft flags]
# (README.md says which to pick). Extra flags go to `trl sft`, e.g. --num_processes 4 or --max_steps 100.
set -euo pipefail
cd "$(dirname "$0")"
which="${1:-single_gpu}"
shift || true
if [ "$which" = multi_cpu ]; then
  # CPU processes talk through gloo; accelerate's own MULTI_CPU launcher needs mpirun, torchrun does not.
  # TRL turns bf16 on by default, which only a GPU may take. NPROC sets the number of processes (default 2).
  exec torchrun --nproc_per_node "${NPROC:-2}" -m trl.scripts.sft --config sft.yaml --use_cpu true --bf16 false "$@"
fi
exec trl sft --config sft.yaml --accelerate_config "accelerate/${which}.yaml" "$@"
"""

_README = """\
# This run, for TRL's command line

`sft.yaml` is the run as TRL's own configuration (model `{model}`, the data in `data/`, the LoRA and optimisation
settings of the run). Install TRL, PEFT and accelerate (`pip install trl peft accelerate`), then:

```bash
./launch.sh single_gpu            # or: trl sft --config sft.yaml --accelerate_config accelerate/single_gpu.yaml
```

| configuration | for | memory | speed |
| --- | --- | --- | --- |
| `single_gpu` | one GPU | the whole model, its gradients and optimiser state on the card | the baseline |
| `multi_gpu` | several GPUs, DDP | each GPU holds a whole copy: no saving per GPU | each GPU takes its share of every batch: up to N times faster |
| `fsdp2` | several GPUs, FSDP2 | weights, gradients and optimiser state sharded: about 1/N each | as DDP, less the traffic of gathering the shards |
| `zero3` | several GPUs, DeepSpeed ZeRO-3 | sharded as FSDP (needs `pip install deepspeed`) | as FSDP |
| `multi_cpu` | several CPU processes (gloo, started by `torchrun`; `NPROC=4 ./launch.sh multi_cpu`) | a whole copy per process | for checking the set-up without a GPU, not for speed |

The global batch is `per_device_train_batch_size` x `gradient_accumulation_steps` x the number of processes: with
more processes, lower the accumulation to keep the run's batch (and its learning rate) as it was. Set the number of
processes with `--num_processes N` after the configuration's name. With LoRA (`use_peft: true`) a small model fits
one GPU: DDP is the simple way to go faster, FSDP and ZeRO-3 matter for models that do not fit one card.
"""
