"""AutoTrain Advanced: a valid ``llm-sft`` YAML configuration from the same data and run settings.

AutoTrain (``pip install autotrain-advanced``, an optional extra: it is not in the default
requirements) trains from a YAML file: ``autotrain --config FILE``. :func:`build_config` writes
one from the course's chat data (a folder holding ``train.jsonl`` with a ``messages`` column, the
chat template taken from the tokenizer) and from a :class:`~lessonlib.train.RunConfig`, so the
no-code route trains the same model on the same data with the same settings as notebook 04.

>>> cfg = build_config("runs/autotrain-data", project="demo")
>>> cfg["task"], cfg["data"]["column_mapping"]["text_column"], validate_config(cfg)
('llm-sft', 'messages', [])
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..errors import LessonError

REQUIRED = {
    "task": str, "base_model": str, "project_name": str, "backend": str,
    "data": dict, "params": dict,
}
REQUIRED_DATA = ("path", "train_split", "chat_template", "column_mapping")
REQUIRED_PARAMS = ("epochs", "batch_size", "lr", "peft", "block_size", "model_max_length")


def build_config(data_folder: str | Path, *, run_config: Any = None, project: str = "recipes-autotrain", valid: bool = False) -> dict[str, Any]:
    """The AutoTrain LLM SFT configuration as a dict (see the module docstring)."""
    from .. import models
    from ..train import RunConfig

    cfg = run_config or RunConfig()
    base = models.DEFAULT_MODEL_ID if cfg.model.lower() == models.DEFAULT_MODEL else cfg.model
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
                 valid: str | Path | None = None) -> Path:
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
    cfg = build_config(folder, run_config=run_config, project=project, valid=bool(valid))
    problems = validate_config(cfg)
    if problems:  # pragma: no cover - build_config writes valid configurations
        raise LessonError("the AutoTrain configuration is invalid: " + "; ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# AutoTrain Advanced configuration written by lessonlib: autotrain --config " + out.name + "\n"
                   + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def how_to_run(config_path: str | Path) -> str:
    """What to do with the configuration here: run it if AutoTrain is installed, else the command and Spaces."""
    if shutil.which("autotrain"):
        return f"AutoTrain is installed: run `autotrain --config {config_path}`"
    return (
        "AutoTrain is not installed here (it is an optional extra: `pip install -e .[autotrain]`, several GB with its\n"
        f"own pinned libraries). With it: `autotrain --config {config_path}`. Without installing anything: create an\n"
        "AutoTrain Space on Hugging Face, upload the data folder, and pick the same settings in its web form."
    )


def run(config_path: str | Path) -> int:
    """Run AutoTrain on the configuration (returns its exit code); a clear error when it is absent."""
    import subprocess

    if not shutil.which("autotrain"):
        raise LessonError("AutoTrain is not installed", fix="`pip install -e .[autotrain]`, or use an AutoTrain Space (see how_to_run)")
    return subprocess.call(["autotrain", "--config", str(config_path)])


# AutoTrain's llm-sft parameters: what each does, and the lessonlib RunConfig field and the TRL / PEFT
# argument it becomes (None where the local recipe has no counterpart).
SETTINGS: dict[str, tuple[str | None, str | None, str]] = {
    "epochs": ("epochs", "SFTConfig.num_train_epochs", "passes over the training data"),
    "batch_size": ("batch_size", "SFTConfig.per_device_train_batch_size", "examples a step"),
    "lr": ("learning_rate", "SFTConfig.learning_rate", "peak learning rate"),
    "scheduler": ("lr_scheduler", "SFTConfig.lr_scheduler_type", "how the learning rate falls from its peak"),
    "gradient_accumulation": ("grad_accum", "SFTConfig.gradient_accumulation_steps", "steps whose gradients add up before one update"),
    "block_size": ("max_length", "SFTConfig.max_length", "most tokens of an example (longer ones are cut)"),
    "model_max_length": ("max_length", "SFTConfig.max_length", "the model's own limit (here the same as block_size)"),
    "peft": ("method", "SFTTrainer(peft_config=LoraConfig(...))", "true: LoRA adapters on a frozen model; false: every weight"),
    "lora_r": ("lora_r", "LoraConfig.r", "adapter rank"),
    "lora_alpha": ("lora_alpha", "LoraConfig.lora_alpha", "adapter scale numerator (scale = alpha / r)"),
    "lora_dropout": ("lora_dropout", "LoraConfig.lora_dropout", "dropout on the adapter's input"),
    "target_modules": ("lora_target_modules", "LoraConfig.target_modules", "the layers that get an adapter"),
    "seed": ("seed", "SFTConfig.seed", "data order and adapter start"),
    "merge_adapter": ("merge", "PeftModel.merge_and_unload()", "also save a full model with the adapter folded in"),
    "optimizer": (None, "SFTConfig.optim", "the optimiser (adamw_torch here and in TRL by default)"),
    "padding": (None, "tokenizer.padding_side", "which side short examples are padded on"),
    "quantization": (None, "BitsAndBytesConfig", "int4 / int8 base weights (QLoRA): GPU only"),
    "mixed_precision": (None, "SFTConfig.bf16 / fp16", "half-precision compute: the local plan chooses bf16 itself"),
}


def settings_table(config: dict[str, Any]) -> str:
    """What each of ``config``'s parameters does, its value, and what it becomes in TRL / PEFT (Markdown)."""
    rows = ["| AutoTrain | value | what it does | in TRL / PEFT |", "| --- | --- | --- | --- |"]
    for name, value in config.get("params", {}).items():
        _field, trl, what = SETTINGS.get(name, (None, None, "(not used by the local recipe)"))
        rows.append(f"| `{name}` | `{value}` | {what} | {f'`{trl}`' if trl else '-'} |")
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
        raise LessonError("the AutoTrain configuration is invalid: " + "; ".join(problems))
    params, data = config["params"], config["data"]
    if params.get("quantization") not in (None, "none"):
        raise LessonError(f"quantization {params['quantization']!r} needs a GPU (bitsandbytes)", fix="set params.quantization to null for the CPU recipe")
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
