"""AutoTrain Advanced: a valid ``llm-sft`` YAML configuration from the same data and run settings, and a run of it.

AutoTrain trains from a YAML file: ``autotrain --config FILE``. :func:`build_config` writes one from
the course's chat data (a folder holding ``train.jsonl`` with a ``messages`` column, the chat
template taken from the tokenizer) and from a :class:`~lessonlib.train.RunConfig`, so the no-code
route trains the same model on the same data with the same settings as notebook 04. :func:`run`
runs the real AutoTrain on the CPU, offline, from the local model (:func:`model_copy`).

Scope and limits: AutoTrain 0.8.36 (January 2025, its last release) pins transformers 4.48, TRL 0.13
and PEFT 0.14, so it is never imported here: it lives in its own environment, ``.venv-autotrain/``
(``make autotrain``), and runs as a command. Only its LLM fine-tuning task is covered.

>>> cfg = build_config("runs/autotrain-data", project="demo")
>>> cfg["task"], cfg["data"]["column_mapping"]["text_column"], validate_config(cfg)
('llm-sft', 'messages', [])
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import LessonError
from ..i18n import N_, _

REQUIRED = {
    "task": str, "base_model": str, "project_name": str, "backend": str,
    "data": dict, "params": dict,
}
REQUIRED_DATA = ("path", "train_split", "chat_template", "column_mapping")
REQUIRED_PARAMS = ("epochs", "batch_size", "lr", "peft", "block_size", "model_max_length")


def build_config(data_folder: str | Path, *, run_config: Any = None, project: str = "recipes-autotrain", valid: bool = False,
                 base_model: str | Path | None = None) -> dict[str, Any]:
    """The AutoTrain LLM SFT configuration as a dict (see the module docstring). ``base_model`` replaces
    the Hub id, e.g. with the folder :func:`model_copy` makes for an offline run."""
    from .. import models
    from ..train import RunConfig

    cfg = run_config or RunConfig()
    base = models.DEFAULT_MODEL_ID if cfg.model.lower() == models.DEFAULT_MODEL else cfg.model
    base = str(base_model) if base_model else base
    epochs = cfg.epochs if cfg.max_steps == 0 else 1
    return {
        "task": "llm-sft",
        "base_model": base,
        "project_name": project,
        "log": "tensorboard",
        "backend": "local",
        "data": {
            "path": str(data_folder),
            "train_split": "train",
            "valid_split": "valid" if valid else None,
            "chat_template": "tokenizer",
            "column_mapping": {"text_column": "messages"},
        },
        "params": {
            "block_size": cfg.max_length,
            "model_max_length": cfg.max_length,
            "epochs": epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.learning_rate,
            "peft": cfg.method == "lora",
            "lora_r": cfg.lora_r,
            "lora_alpha": cfg.lora_alpha,
            "lora_dropout": cfg.lora_dropout,
            "target_modules": ",".join(cfg.lora_target_modules),
            "quantization": None,
            "padding": "right",
            "optimizer": "adamw_torch",
            "scheduler": cfg.lr_scheduler,
            "gradient_accumulation": cfg.grad_accum,
            "mixed_precision": None,
            "seed": cfg.seed,
            "merge_adapter": cfg.merge,
        },
        "hub": {"username": "${HF_USERNAME}", "token": "${HF_TOKEN}", "push_to_hub": False},
    }


def validate_config(config: dict[str, Any]) -> list[str]:
    """Problems with an AutoTrain configuration (empty list: valid)."""
    problems = []
    for key, kind in REQUIRED.items():
        if not isinstance(config.get(key), kind):
            problems.append(f"'{key}' is missing or not a {kind.__name__}")
    if isinstance(config.get("project_name"), str) and not re.fullmatch(r"[A-Za-z0-9-]+", config["project_name"]):
        problems.append(f"project_name {config['project_name']!r}: AutoTrain takes letters, digits and hyphens only")
    if config.get("task") not in {"llm-sft", "llm", "llm-generic"}:
        problems.append(f"task is {config.get('task')!r}; this companion writes 'llm-sft'")
    for key in REQUIRED_DATA:
        if key not in config.get("data", {}):
            problems.append(f"data.{key} is missing")
    if "text_column" not in (config.get("data", {}).get("column_mapping") or {}):
        problems.append("data.column_mapping.text_column is missing")
    for key in REQUIRED_PARAMS:
        if key not in config.get("params", {}):
            problems.append(f"params.{key} is missing")
    return problems


def write_config(data: str | Path, out: str | Path, *, run_config: Any = None, project: str = "recipes-autotrain",
                 valid: str | Path | None = None, base_model: str | Path | None = None) -> Path:
    """Write the data folder AutoTrain reads (beside ``out``) and the YAML; returns the YAML's path.

    ``run_config`` is a :class:`~lessonlib.train.RunConfig` or the path of its YAML file.
    """
    import yaml

    from .. import data as data_mod
    from ..train import RunConfig

    out = Path(out)
    folder = out.parent / f"{out.stem}-data"
    data_mod.convert(data, folder, "autotrain")
    if valid:
        data_mod.convert(valid, folder / "_valid", "autotrain")
        (folder / "_valid" / "train.jsonl").replace(folder / "valid.jsonl")
        (folder / "_valid").rmdir()
    if run_config is not None and not isinstance(run_config, RunConfig):
        run_config = RunConfig.load(run_config)  # a RUN.yaml path
    cfg = build_config(folder, run_config=run_config, project=project, valid=bool(valid), base_model=base_model)
    problems = validate_config(cfg)
    if problems:  # pragma: no cover - build_config writes valid configurations
        raise LessonError(_("the AutoTrain configuration is invalid: ") + "; ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# AutoTrain Advanced configuration written by lessonlib: autotrain --config " + out.name + "\n"
                   + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


#: The environment ``make autotrain`` makes: AutoTrain pins older transformers, TRL and PEFT than the
#: course, so it lives beside the course's environment, never in it.
VENV = settings.autotrain_venv()
command = settings.autotrain_command  # the ``autotrain`` command: VENV's, else one on PATH; None if neither
#: A real run of notebook 07's demo configuration, recorded where AutoTrain is installed (``make notebooks``):
#: what notebook 07 shows where it is not (Binder, CI).
RECORDED_RUN = settings.repo_root() / "notebooks" / "recorded" / "07-autotrain-run.txt"


def how_to_run(config_path: str | Path) -> str:
    """What to do with the configuration here: run it if AutoTrain is installed, else how to install it and Spaces."""
    if command():
        return f"AutoTrain is installed: `autotrain --config {config_path}` (in notebook 07: autotrain.run)."
    return (
        "AutoTrain is not installed here. `make autotrain` installs it in its own environment, .venv-autotrain/\n"
        "(about 2 GB and a few minutes; its pinned libraries are older than the course's). With it:\n"
        f"`autotrain --config {config_path}`. Without installing anything: create an AutoTrain Space on\n"
        "Hugging Face, upload the data folder, and pick the same settings in its web form."
    )


def llm_command(config: dict[str, Any] | str | Path) -> list[str]:
    """The same run from AutoTrain's command line: ``autotrain llm --train`` with one flag per setting
    (AutoTrain names its flags after its parameters, ``lora_r`` -> ``--lora-r``; a true switch is a bare
    flag, a false one or an empty value is left out).

    >>> " ".join(llm_command(build_config("runs/autotrain/recipes-data"))[:7])
    'autotrain llm --train --backend local --model HuggingFaceTB/SmolLM2-135M-Instruct'
    """
    import yaml

    if not isinstance(config, dict):
        config = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    data = config["data"]
    values: dict[str, Any] = {
        "model": config["base_model"], "project_name": config["project_name"], "data_path": data["path"],
        "train_split": data["train_split"], "valid_split": data.get("valid_split"), "chat_template": data["chat_template"],
        "text_column": data["column_mapping"]["text_column"], "log": config.get("log"),
        "trainer": config["task"].split("-", 1)[1] if "-" in config["task"] else None, **config["params"],
    }
    args = ["autotrain", "llm", "--train", "--backend", str(config.get("backend", "local"))]
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args += [flag, str(value)]
    return args


def model_copy(out: str | Path, model: str | None = None) -> Path:
    """A folder of the local model that AutoTrain's transformers (4.48) loads: the weights linked, the
    tokenizer named ``GPT2TokenizerFast`` (the converted copy names a class only transformers 5 knows)
    and the chat template written into ``tokenizer_config.json``, where 4.48 reads it. Idempotent."""
    import json

    from .. import models

    source, out = Path(models.resolve(model or models.DEFAULT_MODEL)), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        target = out / item.name
        if item.name in {"tokenizer_config.json", "chat_template.jinja"} or target.exists():
            continue
        if item.suffix == ".safetensors":
            target.symlink_to(item.resolve())
        elif item.is_file():
            shutil.copy2(item, target)
    settings = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    settings["tokenizer_class"] = "GPT2TokenizerFast"
    template = source / "chat_template.jinja"
    if template.exists():
        settings["chat_template"] = template.read_text(encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps(settings, indent=1, ensure_ascii=False), encoding="utf-8")
    return out


def _noise(line: str) -> bool:
    """AutoTrain's lines a learner need not read: progress bars and library warnings."""
    return ("%|" in line or "it/s]" in line or "s/it]" in line or "examples/s]" in line or "Warning" in line
            or line.lstrip().startswith("warnings.warn"))


def _short(line: str) -> str:
    """An AutoTrain log line without its time and code location: "INFO | 2026-… | autotrain.x:f:12 - text" -> "INFO text"."""
    return re.sub(r"^(\w+)\s*\| [\d-]+ [\d:.]+ \| \S+ - ", r"\1 ", line)


def run(config_path: str | Path, *, echo: Any = print) -> Path:
    """Run ``autotrain --config FILE`` on this machine's CPU and return the project folder it trained into,
    beside the configuration (AutoTrain names it after ``project_name``).

    AutoTrain runs in the configuration's folder, from a copy of it whose data and model paths are
    absolute (``FILE.run.yml``). Its own output goes to ``echo`` line by line (progress bars left out)
    and, whole, to ``autotrain.log`` in the project folder. Offline: nothing is downloaded or pushed.
    A failed run raises with the end of AutoTrain's output.
    """
    import os
    import subprocess

    import yaml

    exe = command()
    if exe is None:
        raise LessonError(_("AutoTrain is not installed"), fix=_("`make autotrain` (its own environment), or use an AutoTrain Space"))
    config_path = Path(config_path)
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["data"]["path"] = str(Path(config["data"]["path"]).resolve())
    if Path(config["base_model"]).exists():
        config["base_model"] = str(Path(config["base_model"]).resolve())
    cwd = config_path.parent
    ran = cwd / f"{config_path.stem}.run.yml"
    ran.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    project = cwd / config["project_name"]
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # AutoTrain launches `accelerate`
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("PYTHONPATH", None)
    lines: list[str] = []
    with subprocess.Popen([str(exe), "--config", ran.name], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            for line in raw.rstrip("\n").split("\r"):
                lines.append(line)
                if line.strip() and not _noise(line):
                    echo(_short(line))
    if project.is_dir():
        (project / "autotrain.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if process.returncode != 0 or not (project / "adapter_config.json").exists():
        tail = "\n".join(line for line in lines if line.strip())[-1500:]
        raise LessonError(_("AutoTrain stopped (exit code {returncode}) without saving an adapter in {project}").format(returncode=process.returncode, project=project),
                          fix=_("read its output:\n") + tail)
    return project


def log_summary(project: str | Path | None = None) -> dict[str, Any]:
    """What AutoTrain's own log says of its training: its steps and first and last losses (one logged a step), from
    ``project``'s ``autotrain.log`` (a run here) or, without a project, from :data:`RECORDED_RUN` (with its F1).

    >>> summary = log_summary()
    >>> summary["recorded"], summary["steps"] > 0, summary["first_loss"] > 0
    (True, True, True)
    """
    path = Path(project) / "autotrain.log" if project else RECORDED_RUN
    text = path.read_text(encoding="utf-8")
    losses = [float(value) for value in re.findall(r"\{'loss': ([\d.]+)", text)]
    if not losses:
        raise LessonError(_("no training loss in {path}").format(path=path), fix=_("run AutoTrain again (`autotrain.run`)"))
    f1 = re.search(r"^AutoTrain: F1 ([\d.]+)", text, re.MULTILINE)  # the recorded run's score, when it has one
    return {"steps": len(losses), "first_loss": losses[0], "last_loss": losses[-1], "recorded": project is None,
            "f1": float(f1.group(1)) if f1 else None}


# AutoTrain's llm-sft parameters: what each does, and the lessonlib RunConfig field and the TRL / PEFT
# argument it becomes (None where the local recipe has no counterpart).
SETTINGS: dict[str, tuple[str | None, str | None, str]] = {
    "epochs": ("epochs", "SFTConfig.num_train_epochs", N_("passes over the training data")),
    "batch_size": ("batch_size", "SFTConfig.per_device_train_batch_size", N_("examples a step")),
    "lr": ("learning_rate", "SFTConfig.learning_rate", N_("peak learning rate")),
    "scheduler": ("lr_scheduler", "SFTConfig.lr_scheduler_type", N_("how the learning rate falls from its peak")),
    "gradient_accumulation": ("grad_accum", "SFTConfig.gradient_accumulation_steps", N_("steps whose gradients add up before one update")),
    "block_size": ("max_length", "SFTConfig.max_length", N_("tokens in a packed row of examples (TRL 0.13: max_seq_length)")),
    "model_max_length": ("max_length", "tokenizer.model_max_length", N_("the tokenizer's limit (here the same as block_size)")),
    "peft": ("method", "SFTTrainer(peft_config=LoraConfig(...))", N_("true: LoRA adapters on a frozen model; false: every weight")),
    "lora_r": ("lora_r", "LoraConfig.r", N_("adapter rank")),
    "lora_alpha": ("lora_alpha", "LoraConfig.lora_alpha", N_("adapter scale numerator (scale = alpha / r)")),
    "lora_dropout": ("lora_dropout", "LoraConfig.lora_dropout", N_("dropout on the adapter's input")),
    "target_modules": ("lora_target_modules", "LoraConfig.target_modules", N_("the layers that get an adapter")),
    "seed": ("seed", None, N_("data order and adapter start: AutoTrain 0.8.36's SFT trainer leaves TRL's seed at 42")),
    "merge_adapter": ("merge", "PeftModel.merge_and_unload()", N_("also save a full model with the adapter folded in")),
    "optimizer": (None, "SFTConfig.optim", N_("the optimiser (adamw_torch here and in TRL by default)")),
    "padding": (None, "tokenizer.padding_side", N_("which side short examples are padded on")),
    "quantization": (None, "BitsAndBytesConfig", N_("int4 / int8 base weights (QLoRA): GPU only")),
    "mixed_precision": (None, "SFTConfig.bf16 / fp16", N_("half-precision compute: the local plan chooses bf16 itself")),
}


#: Where AutoTrain 0.8.36 hands each parameter to TRL, PEFT or transformers: a line of its own code
#: (``autotrain/trainers/clm/``), which ``tests/test_autotrain.py`` finds in the installed package.
IN_AUTOTRAIN_CODE: dict[str, str] = {
    "epochs": "num_train_epochs=config.epochs",
    "batch_size": "per_device_train_batch_size=config.batch_size",
    "lr": "learning_rate=config.lr",
    "scheduler": "lr_scheduler_type=config.scheduler",
    "gradient_accumulation": "gradient_accumulation_steps=config.gradient_accumulation",
    "optimizer": "optim=config.optimizer",
    "block_size": 'training_args["max_seq_length"] = config.block_size',
    "model_max_length": "tokenizer.model_max_length = config.model_max_length",
    "lora_r": "r=config.lora_r",
    "lora_alpha": "lora_alpha=config.lora_alpha",
    "lora_dropout": "lora_dropout=config.lora_dropout",
    "target_modules": "target_modules=utils.get_target_modules(config)",
    "padding": "tokenizer.padding_side = config.padding",
    "mixed_precision": 'training_args["bf16"] = True',
    "quantization": "BitsAndBytesConfig(",
    "merge_adapter": "if config.peft and config.merge_adapter:",
}

#: What AutoTrain's llm-sft trainer does on its own, whatever the YAML says (read in its code, as above).
AUTOTRAIN_ADDS: dict[str, str] = {
    "packing": 'training_args["packing"] = True',  # examples packed end to end into rows of block_size tokens
    "loss on the whole text": 'training_args["dataset_text_field"] = config.text_column',  # prompts included
    "gradient checkpointing": "gradient_checkpointing=not config.disable_gradient_checkpointing",
    "warmup": "warmup_ratio=config.warmup_ratio",
}


def settings_table(config: dict[str, Any]) -> str:
    """What each of ``config``'s parameters does, its value, and what it becomes in TRL / PEFT (Markdown)."""
    rows = ["| AutoTrain | " + _("value") + " | " + _("what it does") + " | " + _("in TRL / PEFT") + " |", "| --- | --- | --- | --- |"]
    for name, value in config.get("params", {}).items():
        _field, trl, what = SETTINGS.get(name, (None, None, N_("(not used by the local recipe)")))
        rows.append(f"| `{name}` | `{value}` | {_(what)} | {f'`{trl}`' if trl else '-'} |")
    return "\n".join(rows)


def to_run_config(config: dict[str, Any] | str | Path, *, output_dir: str | Path | None = None,
                  max_steps: int | None = None) -> Any:
    """The :class:`~lessonlib.train.RunConfig` that trains what an AutoTrain llm-sft configuration describes,
    with the local recipe (TRL + PEFT, as notebook 04). ``config`` is the dict or the YAML file's path;
    ``max_steps`` caps the run (a short demo); settings the CPU recipe cannot honour are refused by name.

    >>> cfg = to_run_config(build_config("runs/autotrain/recipes-data"), max_steps=4)
    >>> cfg.model, cfg.train_file, cfg.max_steps, cfg.method
    ('smollm2', 'runs/autotrain/recipes-data/train.jsonl', 4, 'lora')
    """
    import yaml

    from .. import models
    from ..train import RunConfig

    if not isinstance(config, dict):
        config = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    problems = validate_config(config)
    if problems:
        raise LessonError(_("the AutoTrain configuration is invalid: ") + "; ".join(problems))
    params, data = config["params"], config["data"]
    if params.get("quantization") not in (None, "none"):
        raise LessonError(_("quantization {quantization!r} needs a GPU (bitsandbytes)").format(quantization=params['quantization']), fix=_("set params.quantization to null for the CPU recipe"))
    folder = Path(data["path"])
    values: dict[str, Any] = {
        "model": "smollm2" if config["base_model"] == models.DEFAULT_MODEL_ID else config["base_model"],
        "train_file": str(folder / f"{data['train_split']}.jsonl"),
        "valid_file": str(folder / f"{data['valid_split']}.jsonl") if data.get("valid_split") else None,
        "output_dir": str(output_dir or Path("runs") / config["project_name"]),
        "method": "lora" if params.get("peft", True) else "full",
        "max_steps": 0 if max_steps is None else max_steps,
    }
    for name, value in params.items():
        field = SETTINGS.get(name, (None,))[0]
        if field is None or field in values or value is None:
            continue
        if field == "lora_target_modules":
            value = ["all-linear"] if value == "all-linear" else [m.strip() for m in str(value).split(",") if m.strip()]
        values[field] = value
    return RunConfig.from_dict(values)
