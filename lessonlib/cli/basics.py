"""``lessonlib doctor``, ``lessonlib model prepare|info`` and ``lessonlib chat``: the machine and the local model."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import _
from .common import command_group, log, print_json


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    p = sub.add_parser("doctor", help=_("check that the offline course can run here"))
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))
    p.add_argument("--no-network", action="store_true", help=_("do not probe the network"))
    p.set_defaults(handler=cmd_doctor)

    model_sub = command_group(sub, "model", _("prepare or describe the local model"))
    p = model_sub.add_parser("prepare", help=_("convert the bundled GGUF once into the cache (idempotent)"))
    p.add_argument("--force", action="store_true", help=_("rebuild even if the cache looks fine"))
    p.set_defaults(handler=cmd_model_prepare)
    p = model_sub.add_parser("info", help=_("what the model is and where its cache lives"))
    p.add_argument("name", nargs="?", default=None, help=_("model name (default: smollm2)"))
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))
    p.set_defaults(handler=cmd_model_info)

    p = sub.add_parser("chat", help=_("one reply from the local model (greedy, deterministic)"))
    p.add_argument("prompt", help=_("what to ask"))
    p.add_argument("--system", default=None, help=_("system message"))
    p.add_argument("--model", default=None, help=_("smollm2 (default), a Hub id or a model folder"))
    p.add_argument("--adapter", default=None, help=_("LoRA adapter folder from a training run"))
    p.add_argument("--max-new-tokens", type=int, default=128, help=_("reply length limit (default 128)"))
    p.add_argument("--temperature", type=float, default=0.0, help=_("0 = greedy (default)"))
    p.set_defaults(handler=cmd_chat)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import doctor

    report = doctor(probe_network=not args.no_network)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def cmd_model_prepare(args: argparse.Namespace) -> int:
    from .. import models

    path = models.prepare(force=args.force, log=log)
    print(path)
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from .. import models

    info = models.info(args.name)
    if args.json:
        print_json(info)
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v not in ("", None))
        print(f"{key:>20}: {value}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from .. import models

    reply = models.chat(
        args.prompt,
        system=args.system,
        model=args.model,
        adapter=args.adapter,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
    )
    print(reply)
    return 0
