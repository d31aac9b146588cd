"""``lessonlib openai ...`` and ``lessonlib azure ...``: fine-tuning jobs in the cloud (a dry run without a key)."""

from __future__ import annotations

import argparse
from typing import Any

from ..i18n import N_, _
from .common import command_group, print_json


def _add_provider(sub: Any, provider: str) -> None:
    name = "Azure OpenAI" if provider == "azure" else "OpenAI"
    cloud_sub = command_group(sub, provider, _("{name} fine-tuning jobs (dry run without a key)").format(name=name))
    p = cloud_sub.add_parser("submit", help=_("upload data and create a job: cost shown first, budget respected"))
    p.add_argument("--data", required=True, help=_("training chat JSONL"))
    p.add_argument("--valid", default=None, help=_("validation chat JSONL"))
    p.add_argument("--model", required=True, help=_("base model, e.g. gpt-4o-mini") + (_(" (Azure: gpt-4o-mini, gpt-4.1-mini, ...)") if provider == "azure" else ""))
    if provider == "azure":
        p.add_argument("--tier", choices=("developer",), default="", help=_("Azure's Developer training tier: cheaper, on spare capacity"))
    p.add_argument("--epochs", type=int, default=None, help=_("default: the provider's rule"))
    p.add_argument("--suffix", default=None, help=_("text in the tuned model's name"))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--budget", type=float, default=None, help=_("most US dollars you accept for training"))
    p.add_argument("--yes", action="store_true", help=_("confirm the paid job without a budget"))
    p.add_argument("--dry-run", action="store_true", help=_("show the requests and the cost; send nothing"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_cloud_submit, provider=provider)
    for action, handler, text in (("status", cmd_cloud_status, N_("the job's status")), ("events", cmd_cloud_events, N_("the job's events")),
                                  ("checkpoints", cmd_cloud_checkpoints, N_("the job's checkpoints")), ("cancel", cmd_cloud_cancel, N_("cancel the job"))):
        p = cloud_sub.add_parser(action, help=_(text))
        p.add_argument("job", help=_("job id (ftjob-...)"))
        p.add_argument("--json", action="store_true")
        if action == "status":
            p.add_argument("--follow", action="store_true", help=_("poll and print events until the job ends"))
            p.add_argument("--interval", type=float, default=10.0, help=_("seconds between polls (default 10)"))
        p.set_defaults(handler=handler, provider=provider)
    if provider == "azure":
        p = cloud_sub.add_parser("deploy", help=_("deploy a tuned model (hosting is billed by the hour): cost shown, --yes needed"))
        p.add_argument("--model", required=True, help=_("the fine-tuned model name from the job"))
        p.add_argument("--name", required=True, help=_("deployment name"))
        p.add_argument("--yes", action="store_true", help=_("confirm the hourly hosting charge"))
        p.add_argument("--tier", choices=("developer",), default="", help=_("a Developer deployment: no hosting fee, deleted after 24 hours"))
        p.add_argument("--dry-run", action="store_true")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=cmd_azure_deploy, provider=provider)
        p = cloud_sub.add_parser("undeploy", help=_("delete a deployment: hosting charges stop"))
        p.add_argument("--name", required=True)
        p.set_defaults(handler=cmd_azure_undeploy, provider=provider)
    p = cloud_sub.add_parser("chat", help=_("one reply from a (tuned) model") + (_("; --model is the deployment name") if provider == "azure" else ""))
    p.add_argument("prompt")
    p.add_argument("--model", required=True)
    p.add_argument("--system", default=None)
    p.set_defaults(handler=cmd_cloud_chat, provider=provider)


def add_commands(sub: Any) -> None:
    """``lessonlib openai ...`` and ``lessonlib azure ...``."""
    for provider in ("openai", "azure"):
        _add_provider(sub, provider)


def cmd_cloud_submit(args: argparse.Namespace) -> int:
    from ..cloud import jobs

    plan = jobs.plan_job(args.data, model=args.model, provider=args.provider, validation_file=args.valid, epochs=args.epochs,
                         suffix=args.suffix, seed=args.seed, tier=getattr(args, "tier", ""))
    if not args.json:
        print(plan.describe())
    result = jobs.submit(plan, budget=args.budget, confirm=args.yes, dry_run=args.dry_run)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.note)
        if result.job:
            print(f"job: {result.job['id']} ({result.job['status']})")
    return 0


def cmd_cloud_status(args: argparse.Namespace) -> int:
    from ..cloud import jobs

    if args.follow:
        def show(event: dict[str, Any]) -> None:
            if not args.json:
                print(event.get("message", ""), flush=True)

        job = jobs.follow(args.job, provider=args.provider, on_event=show, interval=args.interval)
    else:
        job = jobs.status(args.job, provider=args.provider)
    if args.json:
        print_json(job)
    else:
        print(f"{job['id']}: {job['status']}" + (f" -> model {job['fine_tuned_model']}" if job.get("fine_tuned_model") else ""))
        if job.get("error") and job["status"] == "failed":
            print(f"error: {job['error'].get('message')}")
    return 1 if job["status"] == "failed" else 0


def cmd_cloud_events(args: argparse.Namespace) -> int:
    from ..cloud import jobs

    rows = jobs.events(args.job, provider=args.provider)
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['created_at']} {row['level']:<5} {row['message']}")
    return 0


def cmd_cloud_checkpoints(args: argparse.Namespace) -> int:
    from ..cloud import jobs

    rows = jobs.checkpoints(args.job, provider=args.provider)
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"step {row['step']}: {row['model']} {row['metrics']}")
        if not rows:
            print("no checkpoints yet")
    return 0


def cmd_cloud_cancel(args: argparse.Namespace) -> int:
    from ..cloud import jobs

    job = jobs.cancel(args.job, provider=args.provider)
    print(f"{job['id']}: {job['status']}")
    return 0


def cmd_cloud_chat(args: argparse.Namespace) -> int:
    from ..cloud import jobs

    print(jobs.chat(args.model, args.prompt, provider=args.provider, system=args.system))
    return 0


def cmd_azure_deploy(args: argparse.Namespace) -> int:
    from ..cloud import azure

    plan = azure.plan_deployment(args.model, args.name, tier=args.tier)
    if not args.json:
        print(plan.describe())
    result = azure.deploy(args.model, args.name, confirm=args.yes, dry_run=args.dry_run, tier=args.tier)
    if args.json:
        print_json(result)
    else:
        print(result["note"])
    return 0


def cmd_azure_undeploy(args: argparse.Namespace) -> int:
    from ..cloud import azure

    print(azure.delete(args.name)["note"])
    return 0
