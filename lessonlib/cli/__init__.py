"""The ``lessonlib`` command line: parse, call the same functions the notebooks call, print.

Every subcommand prints plain text (or one JSON object with ``--json``) and exits with a
meaningful code: 0 success, 1 a problem the learner can fix (the message says how), 2 bad usage
or unreadable input, 130 interrupted. Nothing heavy is imported until a command needs it.

    $ lessonlib doctor
    $ lessonlib model prepare
    $ lessonlib chat "Give me a recipe for pancakes" --max-new-tokens 80

One module a command group, each with its parser (``add_commands``) beside its handlers:
:mod:`~lessonlib.cli.basics`, :mod:`~lessonlib.cli.data`, :mod:`~lessonlib.cli.cost`,
:mod:`~lessonlib.cli.train`, :mod:`~lessonlib.cli.serve`, :mod:`~lessonlib.cli.cloud`,
:mod:`~lessonlib.cli.autotrain`, :mod:`~lessonlib.cli.study`, :mod:`~lessonlib.cli.project`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import LessonError
from ..i18n import _
from . import autotrain, basics, cloud, cost, data, project, serve, study, train
from .common import Handler


def build_parser() -> argparse.ArgumentParser:
    """The ``lessonlib`` parser: every command group adds its own subcommands."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="lessonlib",
        description=_("Fine-Tuning Companion: the command-line face of the course's notebooks."),
    )
    parser.add_argument("--version", action="version", version=f"lessonlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in (basics, data, cost, train, project, serve, cloud, autotrain, study):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lessonlib`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except LessonError as exc:
        print(_("error: {message}").format(message=exc.message), file=sys.stderr)
        if exc.fix:
            print(_("fix: {fix}").format(fix=exc.fix), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(_("interrupted"), file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
