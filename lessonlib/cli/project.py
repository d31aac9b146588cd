"""``lessonlib project new|run``: a learner's own file through every step of the lesson.

    $ lessonlib project new my-topics --data data/topics/questions.csv --input question --output topic
    $ lessonlib project run my-topics                 # every step, then report.md
    $ lessonlib project run my-topics --step baselines
"""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import _
from .common import command_group, log, print_json


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    from ..project import STEPS

    actions = command_group(sub, "project", _("your own data: make a project folder from a file, then run the lesson's steps on it"))
    p = actions.add_parser("new", help=_("make a project folder from a data file (nothing is written if the file is refused)"))
    p.add_argument("dir", help=_("the project folder to make"))
    p.add_argument("--data", required=True, help=_("chat or prompt/completion JSONL, CSV, TSV, or a saved 🤗 dataset folder"))
    p.add_argument("--test", default=None, help=_("your own test file, used as given (same shape and columns)"))
    p.add_argument("--input", default=None, help=_("a table's input column (a file without a header: 1, 2, ...)"))
    p.add_argument("--output", default=None, help=_("a table's output column: what the model should answer"))
    p.add_argument("--system", default=None, help=_("a system prompt for every example"))
    p.add_argument("--metric", default=None, help=_("accuracy, exact_match, token_f1, json, or a .py file with score(reply, reference) (default: inferred)"))
    p.add_argument("--seed", type=int, default=18, help=_("the split's and the training's seed (default 18)"))
    p.add_argument("--overwrite", action="store_true", help=_("replace an existing folder"))
    p.set_defaults(handler=cmd_project_new)
    p = actions.add_parser("run", help=_("run every step (or one) and write report.md and report.json"))
    p.add_argument("dir", help=_("the project folder"))
    p.add_argument("--step", choices=STEPS, default=None, help=_("run this step alone"))
    p.add_argument("--resume", action="store_true", help=_("continue an interrupted training from its last checkpoint"))
    p.add_argument("--anyway", action="store_true", help=_("train even when the test set is too small to show a real gain"))
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout (the report)"))
    p.set_defaults(handler=cmd_project_run)


def cmd_project_new(args: argparse.Namespace) -> int:
    from .. import project

    made = project.new(args.dir, args.data, test=args.test, input=args.input, output=args.output, system=args.system,
                       metric=args.metric, seed=args.seed, overwrite=args.overwrite)
    print(_("Project made in {root}. Next: lessonlib project run {root}").format(root=made.root))
    return 0


def _progress(event: Any) -> None:
    """Training events as lines on stderr."""
    if event.kind == "step" and event.total:
        loss = f" loss {event.loss:.3f}" if event.loss is not None else ""
        log(_("  step {step}/{total}{loss}").format(step=event.step, total=event.total, loss=loss))
    elif event.kind == "eval" and event.eval_loss is not None:
        log(_("  step {step}: validation loss {loss:.3f}").format(step=event.step, loss=event.eval_loss))


def cmd_project_run(args: argparse.Namespace) -> int:
    from .. import project
    from ..project.report import text

    found = project.Project(args.dir)
    report = project.run(found, step=args.step, log=log, resume=args.resume, anyway=args.anyway, on_event=_progress)
    if args.json:
        print_json(report)
    else:
        print(text(report))
        print(_("(report.md and report.json in {root})").format(root=found.root))
    return 0
