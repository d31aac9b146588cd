"""``lessonlib train export --out DIR``: the run as a folder that TRL's own command line and accelerate read."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from lessonlib.train import RunConfig
from lessonlib.train.export import CPU_ARGS, TRL_CONFIGS, export


def test_the_exported_folder_is_what_trl_and_accelerate_read(tmp_path):
    """TRL's own parser of `trl sft` takes sft.yaml with no unknown key; accelerate loads every configuration."""
    from accelerate.commands.config.config_args import load_config_from_file
    from trl.scripts.sft import make_parser

    cfg = RunConfig(max_steps=4, lora_r=4, save_every=0)
    folder = export(cfg, tmp_path / "run")
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["train.jsonl", "validation.jsonl"]
    assert (folder / "data" / "train.jsonl").read_bytes() == Path(cfg.train_file).read_bytes()
    script, training, model, _ = make_parser().parse_args_and_config(["--config", str(folder / "sft.yaml"), *CPU_ARGS])
    assert (script.dataset_name, script.dataset_test_split) == ("data", "validation")
    assert (training.max_steps, training.per_device_train_batch_size, training.learning_rate) == (4, 2, cfg.learning_rate)
    assert (model.use_peft, model.lora_r, model.lora_target_modules) == (True, 4, ["q_proj", "v_proj"])
    kinds = {}
    for name in [*TRL_CONFIGS, "multi_cpu"]:
        kinds[name] = str(load_config_from_file(str(folder / "accelerate" / f"{name}.yaml")).distributed_type)
    assert kinds["single_gpu"].endswith("NO") and kinds["multi_gpu"].endswith("MULTI_GPU") and kinds["multi_cpu"].endswith("MULTI_CPU")
    assert yaml.safe_load((folder / "accelerate" / "fsdp2.yaml").read_text())["fsdp_config"]["fsdp_version"] == 2
    assert "deepspeed_config" in yaml.safe_load((folder / "accelerate" / "zero3.yaml").read_text())
    launch = (folder / "launch.sh").read_text()
    assert os.access(folder / "launch.sh", os.X_OK) and "--accelerate_config" in launch and " ".join(CPU_ARGS) in launch
    assert "torchrun --nproc_per_node" in launch
    readme = (folder / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in [*TRL_CONFIGS, "multi_cpu"])
