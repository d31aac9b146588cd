"""The real AutoTrain Advanced, in the environment ``make autotrain`` makes (``.venv-autotrain/``).

Its own parser accepts the configuration notebook 07 writes; every line of AutoTrain's code that the
settings table cites is in the installed package; a few steps of ``autotrain --config`` on the CPU
leave a LoRA adapter that the course's chat loads and that answers.

Skipped where that environment is absent, as in ``make test``: it takes about 2 GB and minutes to
install, more than ``make test``'s budget. ``make test-autotrain`` installs it, then runs this file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lessonlib import corpora, data, evaluate, limits, models
from lessonlib.cloud import autotrain
from lessonlib.prompting import zero_shot_messages
from lessonlib.train import RunConfig

PYTHON = autotrain.VENV / "bin" / "python"
pytestmark = pytest.mark.skipif(not (autotrain.VENV / "bin" / "autotrain").exists(),
                                reason="AutoTrain's own environment is absent: `make test-autotrain` makes it, then runs these")


def _in_autotrain(code: str, *args: str) -> str:
    """What ``code`` prints, run by AutoTrain's own Python."""
    done = subprocess.run([str(PYTHON), "-c", code, *args], capture_output=True, text=True, timeout=300, check=False,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_autotrains_own_parser_accepts_the_configuration_notebook_07_writes(tmp_path):
    run_config = RunConfig(max_steps=0, epochs=2, batch_size=2, learning_rate=2e-4)  # notebook 07's settings
    path = autotrain.write_config(corpora.split_path("recipes", "train"), tmp_path / "recipes.yml", run_config=run_config,
                                  valid=corpora.split_path("recipes", "valid"))
    printed = _in_autotrain(
        "import sys\n"
        "from autotrain.parser import AutoTrainConfigParser\n"
        "from autotrain.trainers.clm.params import LLMTrainingParams\n"
        "parser = AutoTrainConfigParser(sys.argv[1])\n"
        "print(parser.task, LLMTrainingParams(**parser.parsed_config).model_dump_json())\n", str(path))
    task, params = printed.strip().splitlines()[-1].split(" ", 1)
    params = json.loads(params)
    assert task == "lm_training" and params["trainer"] == "sft"
    assert (params["epochs"], params["batch_size"], params["lr"]) == (2, 2, 2e-4)
    assert (params["lora_r"], params["lora_alpha"], params["target_modules"]) == (8, 16, "q_proj,v_proj")
    assert params["text_column"] == "messages" and params["valid_split"] == "valid"


def test_autotrains_command_line_takes_the_same_run_from_llm_command(tmp_path):
    path = autotrain.write_config(corpora.split_path("recipes", "train"), tmp_path / "recipes.yml",
                                  run_config=RunConfig(max_steps=0, epochs=2, batch_size=2, learning_rate=2e-4))
    command = autotrain.llm_command(path)
    assert command[:3] == ["autotrain", "llm", "--train"]
    printed = _in_autotrain(
        "import json, sys\n"
        "from argparse import ArgumentParser\n"
        "from autotrain.cli.run_llm import RunAutoTrainLLMCommand\n"
        "parser = ArgumentParser()\n"
        "RunAutoTrainLLMCommand.register_subcommand(parser.add_subparsers())\n"
        "args = parser.parse_args(sys.argv[1:])\n"
        "RunAutoTrainLLMCommand(args)  # its own checks of a training command\n"
        "print(json.dumps(vars(args), default=str))\n", *command[1:])
    args = json.loads(printed.strip().splitlines()[-1])
    assert args["train"] and args["peft"] and args["trainer"] == "sft" and args["chat_template"] == "tokenizer"
    assert (args["lr"], args["epochs"], args["batch_size"], args["block_size"]) == (2e-4, 2, 2, 320)
    assert (args["lora_r"], args["lora_alpha"], args["target_modules"], args["text_column"]) == (8, 16, "q_proj,v_proj", "messages")


def test_each_line_of_autotrains_code_the_settings_table_cites_is_in_the_installed_package():
    package = Path(_in_autotrain("import autotrain, os; print(os.path.dirname(autotrain.__file__))").strip())
    code = "\n".join(p.read_text(encoding="utf-8") for p in (package / "trainers" / "clm").glob("*.py"))
    cited = {**autotrain.IN_AUTOTRAIN_CODE, **autotrain.AUTOTRAIN_ADDS}
    missing = {name: line for name, line in cited.items() if line not in code}
    assert not missing, f"not in AutoTrain's trainers/clm code: {missing}"
    assert set(autotrain.IN_AUTOTRAIN_CODE) <= set(autotrain.SETTINGS)
    assert "seed=config.seed" not in code  # the table says AutoTrain's SFT trainer leaves TRL's seed alone


def test_a_few_steps_of_the_real_autotrain_leave_an_adapter_that_answers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    few = limits.subset(corpora.split_path("recipes", "train"), 16, "runs/autotrain/train-16.jsonl")
    path = autotrain.write_config(few, "runs/autotrain/demo.yml", project="demo-autotrain",
                                  run_config=RunConfig(max_steps=0, epochs=1, batch_size=2, learning_rate=2e-3),
                                  base_model=autotrain.model_copy("runs/autotrain/model"))
    printed: list[str] = []
    project = autotrain.run(path, echo=printed.append)
    assert (project / "adapter_config.json").exists() and (project / "adapter_model.safetensors").exists()
    assert any("Starting SFT training" in line for line in printed), printed[-20:]
    example = data.read_examples(corpora.split_path("recipes", "test"))[0]
    reply = models.generate(zero_shot_messages(example), adapter=str(project), max_new_tokens=40)
    assert reply.strip()
    assert 0 <= evaluate.ingredient_scores(reply, example["messages"][-1]["content"])["f1"] <= 1
