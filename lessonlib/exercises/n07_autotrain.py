"""Notebook 07 · AutoTrain: its exercises and their checks."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, _
from .core import Hint, exercise


@exercise("07.1", 1, N_("Change the AutoTrain configuration"), answer="config", setup='''
from lessonlib import corpora
from lessonlib.cloud import autotrain

config = autotrain.build_config("runs/autotrain/recipes-data")
''', solution='''
config["params"]["epochs"] = 3
config["params"]["lr"] = 1e-4
config["params"]["lora_r"] = 16
config["params"]["lora_alpha"] = 32
''', wrong='''
config["params"]["epochs"] = 3
config["params"]["learning_rate"] = 1e-4
''')
def _check_autotrain(config: Any) -> str:
    from ..cloud import autotrain

    problems = autotrain.validate_config(config)
    if problems:
        raise Hint(_("AutoTrain would refuse it: {problem}").format(problem=problems[0]))
    params = config["params"]
    unknown = set(params) - set(autotrain.build_config("x")["params"])
    if unknown:
        raise Hint(_("AutoTrain does not know {names}: use its own names, the keys of `config['params']` (the YAML above "
                     "lists them).").format(names=sorted(unknown)))
    for name, value in (("epochs", 3), ("lr", 1e-4), ("lora_r", 16), ("lora_alpha", 32)):
        if params.get(name) != value:
            raise Hint(_("set `params['{name}']` to {value} (it is {yours!r}).").format(name=name, value=value, yours=params.get(name)))
    return _("3 epochs at 1e-4 with a rank-16 adapter: `autotrain --config` would train it, and notebook 04's "
             "RunConfig can say the same.")


_AUTOTRAIN_TO_TRL = {  # AutoTrain's llm-sft parameter -> the TRL / PEFT argument it becomes
    "epochs": "num_train_epochs", "lr": "learning_rate", "batch_size": "per_device_train_batch_size",
    "block_size": "max_length", "lora_r": "r", "lora_alpha": "lora_alpha",
}


@exercise("07.2", 2, N_("From AutoTrain's names to TRL's"), answer="trl_settings", setup='''
from lessonlib.cloud import autotrain

config = autotrain.build_config("runs/autotrain/recipes-data")
params = config["params"]
''', solution='''
trl_settings = {
    "num_train_epochs": params["epochs"],                   # SFTConfig
    "learning_rate": params["lr"],                          # SFTConfig
    "per_device_train_batch_size": params["batch_size"],    # SFTConfig
    "max_length": params["block_size"],                     # SFTConfig
    "r": params["lora_r"],                                  # LoraConfig
    "lora_alpha": params["lora_alpha"],                     # LoraConfig
}
''', wrong='''
trl_settings = {"epochs": params["epochs"], "lr": params["lr"]}
''', context={"params": "params"})
def _check_autotrain_to_trl(trl_settings: Any, params: dict[str, Any] | None = None) -> str:
    if not params:
        raise Hint(_("pass the AutoTrain parameters: check('07.2', trl_settings, params=config['params'])."))
    if not isinstance(trl_settings, dict):
        raise Hint(_("a dict: TRL's argument name -> the value from `params`."))
    for source, target in _AUTOTRAIN_TO_TRL.items():
        if target not in trl_settings:
            near = _(" (`{source}` is AutoTrain's name)").format(source=source) if source in trl_settings else ""
            raise Hint(_("which TRL or PEFT argument does AutoTrain's `{source}` become? It is missing{near}; notebook 04's "
                         "SFTConfig and LoraConfig cells name them all.").format(source=source, near=near))
        if trl_settings[target] != params[source]:
            raise Hint(_("`{target}` should be `params['{source}']` ({value!r}).").format(target=target, source=source, value=params[source]))
    return _("the same six settings, under TRL's and PEFT's names: AutoTrain writes the SFTConfig and LoraConfig "
             "for you.")
