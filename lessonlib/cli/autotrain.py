"""``lessonlib autotrain config|run``: a valid AutoTrain Advanced configuration, and a run of it."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import _
from .common import command_group, log
from .train import train_here


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    auto_sub = command_group(sub, "autotrain", _("AutoTrain Advanced: write a valid llm-sft configuration, and run it"))
    p = auto_sub.add_parser("config", help=_("write an AutoTrain YAML from the data and a run configuration"))
    p.add_argument("--data", required=True, help=_("training chat JSONL"))
    p.add_argument("--valid", default=None, help=_("validation chat JSONL"))
    p.add_argument("--out", required=True, help=_("the YAML file to write (its data folder is written beside it)"))
    p.add_argument("--run-config", default=None, help=_("RUN.yaml of the local launcher, for the same settings"))
    p.add_argument("--project", default="recipes-autotrain", help=_("AutoTrain project name"))
    p.set_defaults(handler=cmd_autotrain_config)
    p = auto_sub.add_parser("run", help=_("train an AutoTrain YAML: with AutoTrain where installed, else with the local recipe"))
    p.add_argument("config", help=_("the AutoTrain YAML (lessonlib autotrain config writes one)"))
    p.add_argument("--local", action="store_true", help=_("use the local recipe (TRL + PEFT) even where AutoTrain is installed"))
    p.add_argument("--steps", type=int, default=None, help=_("stop after this many steps (a short demo; default: the epochs)"))
    p.add_argument("--out", default=None, help=_("run folder (default: runs/PROJECT_NAME)"))
    p.add_argument("--overwrite", action="store_true", help=_("allow writing into an existing run folder"))
    p.add_argument("--resume", action="store_true", help=_("go on from the run folder's last checkpoint"))
    p.add_argument("--quiet", action="store_true", help=_("no progress bar"))
    p.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    p.set_defaults(handler=cmd_autotrain_run)


def cmd_autotrain_config(args: argparse.Namespace) -> int:
    from ..cloud import autotrain

    path = autotrain.write_config(args.data, args.out, run_config=args.run_config, project=args.project, valid=args.valid)
    print(path)
    print(autotrain.how_to_run(path))
    return 0


def cmd_autotrain_run(args: argparse.Namespace) -> int:
    from ..cloud import autotrain

    if autotrain.command() and not args.local:
        project = autotrain.run(args.config)
        log(f"AutoTrain saved its adapter in {project}")
        return 0
    cfg = autotrain.to_run_config(args.config, output_dir=args.out, max_steps=args.steps)
    if args.overwrite:
        cfg.overwrite = True
    if not autotrain.command():
        log("AutoTrain is not installed (`make autotrain` installs it): the configuration runs with the local recipe "
             "(TRL + PEFT, as `lessonlib train local`)")
    return train_here(cfg, args)
