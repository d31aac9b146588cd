"""``lessonlib data validate|convert|split|generate``: the data doctor and the course's data sets."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import _
from .common import command_group, print_json


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    from ..data import FORMATS

    data_sub = command_group(sub, "data", _("validate, convert, split or generate chat data files"))
    p = data_sub.add_parser("validate", help=_("check a chat JSONL file; exit 0 no errors, 1 errors, 2 unreadable"))
    p.add_argument("file")
    p.add_argument("--model", default="gpt-4o-mini", help=_("count tokens and price for this model (default gpt-4o-mini; 'smollm2' = local)"))
    p.add_argument("--provider", default=None, choices=["openai", "azure", "local"], help=_("price list to use"))
    p.add_argument("--epochs", type=int, default=None, help=_("training epochs (default: OpenAI's rule)"))
    p.add_argument("--show", type=int, default=5, help=_("lines shown per finding code (default 5)"))
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))
    p.set_defaults(handler=cmd_data_validate)
    p = data_sub.add_parser("convert", help=_("convert between chat JSONL, HF datasets, prompt/completion and AutoTrain layouts"))
    p.add_argument("source", help=_("chat or prompt/completion JSONL, or a saved HF dataset folder"))
    p.add_argument("target", help=_("file (openai, prompt-completion) or folder (hf, autotrain)"))
    p.add_argument("--to", required=True, choices=FORMATS)
    p.set_defaults(handler=cmd_data_convert)
    p = data_sub.add_parser("split", help=_("seeded shuffle and split into NAME.train/.valid[/.test].jsonl"))
    p.add_argument("file")
    p.add_argument("--valid", type=float, default=0.1, help=_("fraction for validation (default 0.1)"))
    p.add_argument("--test", type=float, default=0.0, help=_("fraction for test (default 0)"))
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--out-dir", default=None)
    p.set_defaults(handler=cmd_data_split)
    p = data_sub.add_parser("generate", help=_("(re)build one of the project's data sets"))
    p.add_argument("name", choices=["recipes", "sql"])
    p.add_argument("--out", default=None, help=_("folder (default data/NAME)"))
    p.add_argument("--seed", type=int, default=18)
    p.set_defaults(handler=cmd_data_generate)


def cmd_data_validate(args: argparse.Namespace) -> int:
    from .. import data

    report = data.validate(args.file, model=args.model, provider=args.provider, epochs=args.epochs)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.summary(max_lines=args.show))
    return 0 if report.ok else 1


def cmd_data_convert(args: argparse.Namespace) -> int:
    from .. import data

    print(data.convert(args.source, args.target, args.to))
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from .. import data

    written = data.split(args.file, valid=args.valid, test=args.test, seed=args.seed, out_dir=args.out_dir)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    from .. import corpora

    written = corpora.write(args.name, args.out, seed=args.seed)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0
