"""The ``lessonlib`` command line: parse, call the same functions the notebooks call, print.

Every subcommand prints plain text (or one JSON object with ``--json``) and exits with a
meaningful code: 0 success, 1 a problem the learner can fix (the message says how), 2 bad usage
or unreadable input, 130 interrupted. Nothing heavy is imported until a command needs it.

    $ lessonlib doctor
    $ lessonlib model prepare
    $ lessonlib chat "Give me a recipe for pancakes" --max-new-tokens 80
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from .errors import LessonError

Handler = Callable[[argparse.Namespace], int]


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from .system import doctor

    report = doctor(probe_network=not args.no_network)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def cmd_model_prepare(args: argparse.Namespace) -> int:
    from . import models

    path = models.prepare(force=args.force, log=_log)
    print(path)
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from . import models

    info = models.info(args.name)
    if args.json:
        _print_json(info)
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v not in ("", None))
        print(f"{key:>20}: {value}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from . import models

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


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="lessonlib",
        description="Fine-Tuning Companion: the command-line face of the course's notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"lessonlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("doctor", help="check that the offline course can run here")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--no-network", action="store_true", help="do not probe the network")
    p.set_defaults(handler=cmd_doctor)

    model = sub.add_parser("model", help="prepare or describe the local model")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    model_sub.required = True
    p = model_sub.add_parser("prepare", help="convert the bundled GGUF once into the cache (idempotent)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache looks fine")
    p.set_defaults(handler=cmd_model_prepare)
    p = model_sub.add_parser("info", help="what the model is and where its cache lives")
    p.add_argument("name", nargs="?", default=None, help="model name (default: smollm2)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(handler=cmd_model_info)

    p = sub.add_parser("chat", help="one reply from the local model (greedy, deterministic)")
    p.add_argument("prompt", help="what to ask")
    p.add_argument("--system", default=None, help="system message")
    p.add_argument("--model", default=None, help="smollm2 (default), a Hub id or a model folder")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder from a training run")
    p.add_argument("--max-new-tokens", type=int, default=128, help="reply length limit (default 128)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.set_defaults(handler=cmd_chat)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lessonlib`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except LessonError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
