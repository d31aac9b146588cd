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
    p.add_argument("--stop-with", type=int, default=None, metavar="PID",
                   help=_("end when process PID ends (a notebook kernel starts the service with its Jupyter server's)"))
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..service.run import serve

    serve(host=args.host, port=args.port, state=args.state, keys=args.keys, stop_with=args.stop_with)
    return 0
