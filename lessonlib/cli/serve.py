"""``lessonlib serve``: the local fine-tuning service (the OpenAI and Azure OpenAI APIs on this machine)."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import _


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    p = sub.add_parser("serve", help=_("the local fine-tuning service: the OpenAI API's files, fine_tuning/jobs, models, chat"))
    p.add_argument("--host", default="127.0.0.1", help=_("address to listen on (another than loopback needs --keys)"))
    p.add_argument("--port", type=int, default=None, help=_("port to listen on (default: $LESSONLIB_SERVICE_PORT or 8765)"))
    p.add_argument("--state", default=None,
                   help=_("folder for everything the service keeps (default: $LESSONLIB_SERVICE_STATE or under the lessonlib "
                          "cache)"))
    p.add_argument("--keys", default=None, metavar="FILE", help=_("NAME:KEY lines: only these keys get in, each sees only its own work"))
    p.add_argument("--learners", type=int, default=None, metavar="N",
                   help=_("with --keys: first write keys for N learners into FILE (learner01, learner02, ...; existing lines kept)"))
    p.add_argument("--launcher", default=None, metavar="COMMAND",
                   help=_("start each training job with COMMAND, e.g. \"torchrun --nproc_per_node 2\" or \"accelerate launch "
                          "--num_processes 8\" (default: $LESSONLIB_SERVICE_LAUNCHER, else one Python process)"))
    p.add_argument("--stop-with", type=int, default=None, metavar="PID",
                   help=_("end when process PID ends (a notebook kernel starts the service with its Jupyter server's)"))
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("class", help=_("the instructor's view of a class's service: learners, jobs, waits, memory"))
    p.add_argument("--state", default=None, help=_("the service's folder (default: $LESSONLIB_SERVICE_STATE or under the lessonlib cache)"))
    p.add_argument("--keys", default=None, metavar="FILE", help=_("the class's keys file, so that learners without a job show too"))
    p.add_argument("--json", action="store_true", help=_("print JSON"))
    p.set_defaults(handler=cmd_class)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..errors import LessonError
    from ..service.run import make_keys, serve
    from .common import log

    if args.learners is not None:
        if args.keys is None or args.learners < 1:
            raise LessonError(_("--learners needs --keys FILE and a number of learners of 1 or more"), exit_code=2)
        added, total = make_keys(args.keys, args.learners)
        log(_("{path}: {total} learners ({added} added); hand each learner their own line").format(path=args.keys, total=total, added=added))
    serve(host=args.host, port=args.port, state=args.state, keys=args.keys, stop_with=args.stop_with, launcher=args.launcher)
    return 0


def cmd_class(args: argparse.Namespace) -> int:
    from ..service import default_state
    from ..service.roster import class_view, render
    from ..service.run import read_keys
    from .common import print_json

    names = sorted(set(read_keys(args.keys).values())) if args.keys else None
    view = class_view(args.state or default_state(), names)
    if args.json:
        print_json(view)
    else:
        print(render(view))
    return 0
