"""``lessonlib cost estimate|break-even|prices``: what fine-tuning costs, and when it pays for itself."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import LessonError
from ..i18n import _
from .common import command_group, print_json


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    cost_sub = command_group(sub, "cost", _("training cost, break-even, price table"))
    p = cost_sub.add_parser("estimate", help=_("what fine-tuning on FILE costs"))
    p.add_argument("file")
    p.add_argument("--model", required=True)
    p.add_argument("--provider", default=None, choices=["openai", "azure", "local"])
    p.add_argument("--epochs", type=int, default=None, help=_("default: OpenAI's rule"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_cost_estimate)
    p = cost_sub.add_parser("break-even", help=_("few-shot prompting vs a fine-tuned model, per month"))
    p.add_argument("--model", required=True)
    p.add_argument("--provider", default=None, choices=["openai", "azure", "local"])
    p.add_argument("--requests", type=int, required=True, help=_("requests per month"))
    p.add_argument("--shots", type=int, default=5, help=_("examples sent with every few-shot request (default 5)"))
    p.add_argument("--data", default=None, help=_("training file: example and training tokens are measured from it"))
    p.add_argument("--example-tokens", type=float, default=None, help=_("tokens per example (default: measured, else 150)"))
    p.add_argument("--prompt-tokens", type=float, default=100, help=_("tokens of the request itself (default 100)"))
    p.add_argument("--completion-tokens", type=float, default=None, help=_("tokens per reply (default: measured, else 50)"))
    p.add_argument("--training-tokens", type=int, default=None, help=_("training tokens per epoch (default: measured, else 100000)"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--months", type=float, default=1.0, help=_("spread the training cost over this many months"))
    p.add_argument("--hosted-hours", type=float, default=730, help=_("hours a month the deployment is up (Azure bills them)"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_cost_break_even)
    p = cost_sub.add_parser("prices", help=_("the price table, with the date of each row"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_cost_prices)


def cmd_cost_estimate(args: argparse.Namespace) -> int:
    from .. import data

    report = data.validate(args.file, model=args.model, provider=args.provider, epochs=args.epochs)
    if report.cost is None:
        raise LessonError(_("no price for model '{model}'").format(model=args.model), fix=_("see `lessonlib cost prices`"))
    if args.json:
        print_json({"file": args.file, "examples": report.valid_examples, **report.cost.to_dict()})
    else:
        print(report.cost)
        if not report.ok:
            print(f"note: {report.error_count} example(s) with errors were left out; run `lessonlib data validate {args.file}`")
    return 0


def cmd_cost_break_even(args: argparse.Namespace) -> int:
    from .. import costs

    price = costs.get_price(args.model, args.provider)
    example_tokens, training_tokens, base_prompt, completion = args.example_tokens, args.training_tokens, args.prompt_tokens, args.completion_tokens
    if args.data:
        from .. import data

        report = data.validate(args.data, model=args.model, provider=args.provider)
        if not report.valid_examples:
            raise LessonError(_("{file} has no valid examples").format(file=args.data), fix=_("run `lessonlib data validate {file}`").format(file=args.data))
        example_tokens = example_tokens or report.tokens.total / report.valid_examples
        training_tokens = training_tokens or costs.billed_tokens(report.tokens.per_example, price)
        completion = completion or report.tokens.assistant / report.valid_examples
    result = costs.break_even(
        price=price,
        requests_per_month=args.requests,
        base_prompt_tokens=base_prompt,
        example_tokens=example_tokens or 150,
        shots=args.shots,
        completion_tokens=completion or 50,
        training_tokens=training_tokens or 100_000,
        epochs=args.epochs,
        months=args.months,
        hosted_hours_per_month=args.hosted_hours,
    )
    if args.json:
        print_json(result.to_dict())
    else:
        print(result)
    return 0


def cmd_cost_prices(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .. import costs

    rows = costs.load_prices()
    if args.json:
        print_json([asdict(p) for p in rows])
        return 0
    print(f"{'provider':<8} {'model':<26} {'train/1M':>9} {'in/1M':>7} {'out/1M':>7} {'ft in':>7} {'ft out':>7} {'host/h':>7}  as of")
    for p in rows:
        print(
            f"{p.provider:<8} {p.model:<26} {p.training_per_1m:>9.2f} {p.input_per_1m:>7.3f} {p.output_per_1m:>7.2f} "
            f"{p.ft_input_per_1m:>7.3f} {p.ft_output_per_1m:>7.2f} {p.hosting_per_hour:>7.2f}  {p.as_of}"
        )
    print(f"source of each row: {costs.prices_file()} (USD; check before you spend)")
    return 0
