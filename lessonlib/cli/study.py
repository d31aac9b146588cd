"""``lessonlib limits``, ``lessonlib evaluate`` and ``lessonlib decide``: measure the options, then choose."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import _
from .common import command_group, print_json


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    limits_sub = command_group(sub, "limits", _("the limits of fine-tuning, measured: forgetting, data size"), metavar="EXPERIMENT")
    p = limits_sub.add_parser("forgetting", help=_("general questions answered before and after tuning, scored"))
    p.add_argument("--adapter", required=True, help=_("LoRA adapter folder from a training run"))
    p.add_argument("--questions", default=None, help=_("JSONL of {question, answers} (default data/general/questions.jsonl)"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_limits_forgetting)
    p = limits_sub.add_parser("data-size", help=_("the same run on the first N training examples, for each N"))
    p.add_argument("--sizes", default="10,50,all", help=_("comma-separated counts, 'all' for the whole file (default 10,50,all)"))
    p.add_argument("--steps", type=int, default=None, help=_("most optimiser steps per run (default 32; early stopping may end sooner)"))
    p.add_argument("--data", default="data/recipes/train.jsonl", help=_("training chat JSONL"))
    p.add_argument("--valid", default="data/recipes/valid.jsonl", help=_("validation chat JSONL (its first 12 examples are used)"))
    p.add_argument("--out", default="runs/limits", help=_("folder for the runs"))
    p.add_argument("--f1-limit", type=int, default=0, help=_("also score each adapter on this many held-out recipes"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_limits_data_size)

    p = sub.add_parser("evaluate", help=_("score zero-shot, few-shot, retrieval and a tuned adapter on a test set"))
    p.add_argument("--task", required=True, choices=["recipes", "sql"])
    p.add_argument("--strategies", default="zero-shot,few-shot,rag,fine-tuned", help=_("comma-separated (default: all four)"))
    p.add_argument("--adapter", default=None, help=_("LoRA run folder for the fine-tuned strategy"))
    p.add_argument("--limit", type=int, default=None, help=_("score only the first N test examples"))
    p.add_argument("--k", type=int, default=3, help=_("examples per prompt for few-shot and rag (default 3)"))
    p.add_argument("--price-model", default="gpt-4o-mini", help=_("whose token prices the costs use"))
    p.add_argument("--out", default=None, help=_("save the results as JSON (for `lessonlib decide --results`)"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("decide", help=_("the lesson's checklist -> fine-tune or not, with the reasons"))
    p.add_argument("--answers", required=True, help=_("YAML with the checklist answers (see lessonlib.decide.Answers)"))
    p.add_argument("--results", default=None, help=_("evaluation JSON from `lessonlib evaluate --out`"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true", help=_("print the filled checklist and decision as a Markdown report"))
    p.set_defaults(handler=cmd_decide)


def cmd_limits_forgetting(args: argparse.Namespace) -> int:
    from .. import limits

    report = limits.forgetting(args.adapter, limits.load_questions(args.questions) if args.questions else None)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.table())
        print(report.summary())
    return 0


def cmd_limits_data_size(args: argparse.Namespace) -> int:
    from .. import limits

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for size in sizes:
        limits.run_size(size)  # a bad size is refused before anything trains
    overrides = {"max_steps": args.steps} if args.steps else {}
    results = limits.data_size_study(sizes, train_file=args.data, valid_file=args.valid, folder=args.out,
                                     f1_limit=args.f1_limit, **overrides)
    if args.json:
        print_json(limits.size_results_to_dicts(results))
    else:
        print(limits.size_table(results))
        print(limits.lowest_loss(results))
        print(f"runs in {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import evaluate

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    report = evaluate.evaluate(args.task, strategies, adapter=args.adapter, limit=args.limit, k=args.k, price_model=args.price_model)
    if args.out:
        report.save(args.out)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.table())
        if args.out:
            print(f"saved: {args.out}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from .. import decide

    answers = decide.load_answers(args.answers)
    scores, paired = {}, {}
    if args.results:
        from ..evaluate import load_report

        report = load_report(args.results)
        scores, paired = decide.scores_from_report(report), decide.paired_from_report(report)
    decision = decide.decide(answers, scores, paired)
    if args.json:
        print_json(decision.to_dict())
    elif args.markdown:
        print(decision.markdown(answers))
    else:
        print(f"recommendation: {decision.recommendation}")
        for i, reason in enumerate(decision.reasons, 1):
            print(f"  {i}. {reason}")
    return 0
