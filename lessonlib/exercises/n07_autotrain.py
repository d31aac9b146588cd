"""Notebook 07 · AutoTrain: its exercises and their checks."""

from __future__ import annotations

import shlex
from typing import Any

from ..i18n import N_, _
from .core import Hint, exercise


@exercise("07.1", 1, N_("Twice the steps, the same scale"), answer="mine", setup='''
import copy

from lessonlib.cloud import autotrain
from lessonlib.train import RunConfig

config = autotrain.build_config("runs/autotrain/recipes-data", run_config=RunConfig(max_steps=0, epochs=2, batch_size=2,
                                                                                    learning_rate=2e-4))
mine = copy.deepcopy(config)
''', solution='''
# A step learns from batch_size x gradient_accumulation rows: half as many rows a step, twice the steps.
mine["params"]["batch_size"] = config["params"]["batch_size"] // 2
# The adapter's scale is lora_alpha / lora_r: double both, the scale stays.
mine["params"]["lora_r"] = 2 * config["params"]["lora_r"]
mine["params"]["lora_alpha"] = 2 * config["params"]["lora_alpha"]
''', wrong='''
mine["params"]["epochs"] = 2 * config["params"]["epochs"]
mine["params"]["lora_r"] = 2 * config["params"]["lora_r"]
''', context={"original": "config"})
def _check_twice_the_steps(mine: Any, original: dict[str, Any] | None = None) -> str:
    from ..cloud import autotrain

    problems = autotrain.validate_config(mine)
    if problems:
        raise Hint(_("AutoTrain would refuse it: {problem}").format(problem=problems[0]))
    unknown = set(mine["params"]) - set(autotrain.build_config("x")["params"])
    if unknown:
        raise Hint(_("AutoTrain does not know {names}: use its own names, the keys of `config['params']` (the YAML above "
                     "lists them).").format(names=sorted(unknown)))
    if not original:
        raise Hint(_("pass the configuration you started from: check('07.1', mine, original=config)."))
    new, old = mine["params"], original["params"]
    if new.get("epochs") != old["epochs"] or mine["data"] != original["data"]:
        raise Hint(_("keep the data and the epochs: the steps must double within each epoch, on the same rows."))
    rows = new["batch_size"] * new.get("gradient_accumulation", 1)
    if 2 * rows != old["batch_size"] * old.get("gradient_accumulation", 1):
        raise Hint(_("an epoch still takes as many steps as before: each step learns from batch_size x gradient_accumulation "
                     "rows ({rows} now). What gives twice the steps?").format(rows=rows))
    if new["lora_r"] != 2 * old["lora_r"]:
        raise Hint(_("the adapter's rank (`lora_r`) should be twice the original's."))
    if new["lora_alpha"] / new["lora_r"] != old["lora_alpha"] / old["lora_r"]:
        raise Hint(_("the scale lora_alpha / lora_r is {yours:g}; it was {before:g}.").format(
            yours=new["lora_alpha"] / new["lora_r"], before=old["lora_alpha"] / old["lora_r"]))
    return _("{rows} row(s) a step, so twice the steps an epoch; rank {r} with alpha {alpha}, the same scale. More steps "
             "of smaller batches: noisier, and slower on a GPU.").format(rows=rows, r=new["lora_r"], alpha=new["lora_alpha"])


#: AutoTrain's llm-sft parameter -> the ``trl sft`` flag that sets the same thing (TRL's own script: SFTConfig and
#: ModelConfig names).
TRL_FLAGS = {
    "epochs": "--num_train_epochs", "lr": "--learning_rate", "batch_size": "--per_device_train_batch_size",
    "block_size": "--max_length", "lora_r": "--lora_r", "lora_alpha": "--lora_alpha", "target_modules": "--lora_target_modules",
}


def _flags(command: str) -> dict[str, list[str]]:
    """``--name value...`` pairs of a command line (a bare flag has no values; ``--name=value`` is split)."""
    values: dict[str, list[str]] = {}
    current = None
    for word in shlex.split(command.replace("\\\n", " ")):
        if word.startswith("--"):
            current, _eq, value = word.partition("=")
            values[current] = [value] if value else []
        elif current is not None:
            values[current].append(word)
    return values


def _same(flag_values: list[str], value: Any) -> bool:
    if isinstance(value, str) and "," in value:
        return sorted(v for part in flag_values for v in part.split(",") if v) == sorted(value.split(","))
    if len(flag_values) != 1:
        return False
    try:
        return float(flag_values[0]) == float(value)
    except (TypeError, ValueError):
        return flag_values[0] == str(value)


@exercise("07.2", 2, N_("The same run with TRL, for a GPU"), answer="trl_command", setup='''
from lessonlib.cloud import autotrain
from lessonlib.train import RunConfig

config = autotrain.build_config("runs/autotrain/recipes-data", run_config=RunConfig(max_steps=0, epochs=2, batch_size=2,
                                                                                    learning_rate=2e-4))
''', solution='''
p = config["params"]
trl_command = (
    f"trl sft --model_name_or_path {config['base_model']} --dataset_name {config['data']['path']} "
    f"--num_train_epochs {p['epochs']} --learning_rate {p['lr']} --per_device_train_batch_size {p['batch_size']} "
    f"--max_length {p['block_size']} "
    f"--use_peft --lora_r {p['lora_r']} --lora_alpha {p['lora_alpha']} --lora_target_modules {p['target_modules'].replace(',', ' ')} "
    "--output_dir runs/trl-sft"
)
print(trl_command)
''', wrong='''
p = config["params"]
trl_command = f"trl sft --model_name_or_path {config['base_model']} --epochs {p['epochs']} --lr {p['lr']}"
''', context={"config": "config"})
def _check_trl_command(trl_command: Any, config: dict[str, Any] | None = None) -> str:
    if not config:
        raise Hint(_("pass the AutoTrain configuration: check('07.2', trl_command, config=config)."))
    if not isinstance(trl_command, str) or not trl_command.split()[:2] == ["trl", "sft"]:
        raise Hint(_("a string: the command line, starting with `trl sft`."))
    flags = _flags(trl_command)
    if flags.get("--model_name_or_path") != [str(config["base_model"])]:
        raise Hint(_("start from the same model: `--model_name_or_path` and `config['base_model']`."))
    if "--use_peft" not in flags:
        raise Hint(_("AutoTrain's `peft: true` trains a LoRA adapter; which switch of `trl sft` does that? (`!trl sft --help` "
                     "lists them all.)"))
    params = config["params"]
    for name, flag in TRL_FLAGS.items():
        if flag not in flags:
            raise Hint(_("AutoTrain's `{name}` is missing: which flag of `trl sft` sets it? Notebook 04 names the SFTConfig ones; "
                         "`!trl sft --help` lists the LoRA ones.").format(name=name))
        if not _same(flags[flag], params[name]):
            raise Hint(_("`{flag}` should be `params['{name}']` ({value!r}).").format(flag=flag, name=name, value=params[name]))
    return _("the same run, in TRL's own words: on a GPU of yours or, with `hf jobs`, on Hugging Face's. This is the route "
             "to follow now that AutoTrain is no longer maintained.")
