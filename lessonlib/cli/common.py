"""What every command shares: the handler type, JSON and progress output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def print_json(value: Any) -> None:
    """One JSON object on stdout (``--json``)."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def log(message: str) -> None:
    """A progress line on stderr, so that stdout stays the command's result."""
    print(message, file=sys.stderr, flush=True)


def command_group(sub: Any, name: str, help: str, *, metavar: str = "ACTION") -> Any:
    """A command with actions of its own (``lessonlib data validate``): its subparsers, one of which is required."""
    actions = sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", metavar=metavar)
    actions.required = True
    return actions
