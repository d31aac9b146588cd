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
from .i18n import N_, _

Handler = Callable[[argparse.Namespace], int]


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor

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


def cmd_data_validate(args: argparse.Namespace) -> int:
    from . import data

    report = data.validate(args.file, model=args.model, provider=args.provider, epochs=args.epochs)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary(max_lines=args.show))
    return 0 if report.ok else 1


def cmd_data_convert(args: argparse.Namespace) -> int:
    from . import data

    print(data.convert(args.source, args.target, args.to))
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from . import data

    written = data.split(args.file, valid=args.valid, test=args.test, seed=args.seed, out_dir=args.out_dir)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    from . import corpora

    written = corpora.write(args.name, args.out, seed=args.seed)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def cmd_cost_estimate(args: argparse.Namespace) -> int:
    from . import data

    report = data.validate(args.file, model=args.model, provider=args.provider, epochs=args.epochs)
    if report.cost is None:
        raise LessonError(_("no price for model '{model}'").format(model=args.model), fix=_("see `lessonlib cost prices`"))
    if args.json:
        _print_json({"file": args.file, "examples": report.valid_examples, **report.cost.to_dict()})
    else:
        print(report.cost)
        if not report.ok:
            print(f"note: {report.error_count} example(s) with errors were left out; run `lessonlib data validate {args.file}`")
    return 0


def cmd_cost_break_even(args: argparse.Namespace) -> int:
    from . import costs

    price = costs.get_price(args.model, args.provider)
    example_tokens, training_tokens, base_prompt, completion = args.example_tokens, args.training_tokens, args.prompt_tokens, args.completion_tokens
    if args.data:
        from . import data

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
        _print_json(result.to_dict())
    else:
        print(result)
    return 0


def cmd_cost_prices(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from . import costs

    rows = costs.load_prices()
    if args.json:
        _print_json([asdict(p) for p in rows])
        return 0
    print(f"{'provider':<8} {'model':<26} {'train/1M':>9} {'in/1M':>7} {'out/1M':>7} {'ft in':>7} {'ft out':>7} {'host/h':>7}  as of")
    for p in rows:
        print(
            f"{p.provider:<8} {p.model:<26} {p.training_per_1m:>9.2f} {p.input_per_1m:>7.3f} {p.output_per_1m:>7.2f} "
            f"{p.ft_input_per_1m:>7.3f} {p.ft_output_per_1m:>7.2f} {p.hosting_per_hour:>7.2f}  {p.as_of}"
        )
    print(f"source of each row: {costs.prices_file()} (USD; check before you spend)")
    return 0


def cmd_train_local(args: argparse.Namespace) -> int:
    from .train import RunConfig
    from .train.config import overrides

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    values = {**cfg.to_dict(), **overrides(args)}
    if args.no_valid:
        values["valid_file"] = None
    return _train_here(RunConfig.from_dict(values), args)


def _train_here(cfg: Any, args: argparse.Namespace) -> int:
    """Train ``cfg`` in this process with a progress bar; Ctrl-C stops after the step and saves."""
    import signal

    from .train import StopFlag, run

    stop = StopFlag()
    interrupted = {"count": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt
        _log("\nstopping after this step and saving (press Ctrl-C again to abort without saving)")
        stop.request()

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = None
    try:
        from tqdm import tqdm

        def on_event(event: Any) -> None:
            nonlocal bar
            if event.kind == "plan":
                _log("machine: " + event.message)
            elif event.kind == "start":
                bar = tqdm(total=event.total, initial=event.step, unit="step", file=sys.stderr, dynamic_ncols=True, disable=args.quiet)
            elif event.kind == "step" and bar is not None:
                bar.update(event.step - bar.n)
                bar.set_postfix(loss=f"{event.loss:.3f}", tok_s=f"{event.tokens_per_s or 0:.0f}", rss=f"{event.rss_gb or 0:.2f}GB")
            elif event.kind == "eval":
                (bar.write if bar is not None else _log)(f"step {event.step}: validation loss {event.eval_loss:.3f}")

        result = run(cfg, on_event=on_event, stop=stop, resume=args.resume, owns_process=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    if args.json:
        _print_json({k: v for k, v in result.to_dict().items() if k != "history"})
    else:
        state = "stopped early; resume with --resume" if result.stopped else (
            f"early stopping (best validation loss at step {result.best_step}, that adapter kept)" if result.early_stopped else "done")
        loss = f"loss {result.first_loss:.3f} -> {result.final_loss:.3f}" if result.first_loss is not None else ""
        evl = f", validation {result.eval_loss:.3f}" if result.eval_loss is not None else ""
        _log(f"{state}: {result.steps} steps in {result.train_seconds:.0f} s, {loss}{evl}, {result.tokens_per_s or 0:.0f} tokens/s, peak {result.peak_rss_gb:.2f} GB")
        print(result.output_dir)
    return 0


def cmd_train_export(args: argparse.Namespace) -> int:
    from .train import RunConfig, export_command

    print(export_command(RunConfig.load(args.config) if args.config else RunConfig()))
    return 0


def cmd_cloud_submit(args: argparse.Namespace) -> int:
    from .cloud import jobs

    plan = jobs.plan_job(args.data, model=args.model, provider=args.provider, validation_file=args.valid, epochs=args.epochs,
                         suffix=args.suffix, seed=args.seed)
    if not args.json:
        print(plan.describe())
    result = jobs.submit(plan, budget=args.budget, confirm=args.yes, dry_run=args.dry_run)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.note)
        if result.job:
            print(f"job: {result.job['id']} ({result.job['status']})")
    return 0


def cmd_cloud_status(args: argparse.Namespace) -> int:
    from .cloud import jobs

    if args.follow:
        def show(event: dict[str, Any]) -> None:
            if not args.json:
                print(event.get("message", ""), flush=True)

        job = jobs.follow(args.job, provider=args.provider, on_event=show, interval=args.interval)
    else:
        job = jobs.status(args.job, provider=args.provider)
    if args.json:
        _print_json(job)
    else:
        print(f"{job['id']}: {job['status']}" + (f" -> model {job['fine_tuned_model']}" if job.get("fine_tuned_model") else ""))
        if job.get("error") and job["status"] == "failed":
            print(f"error: {job['error'].get('message')}")
    return 1 if job["status"] == "failed" else 0


def cmd_cloud_events(args: argparse.Namespace) -> int:
    from .cloud import jobs

    rows = jobs.events(args.job, provider=args.provider)
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"{row['created_at']} {row['level']:<5} {row['message']}")
    return 0


def cmd_cloud_checkpoints(args: argparse.Namespace) -> int:
    from .cloud import jobs

    rows = jobs.checkpoints(args.job, provider=args.provider)
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"step {row['step']}: {row['model']} {row['metrics']}")
        if not rows:
            print("no checkpoints yet")
    return 0


def cmd_cloud_cancel(args: argparse.Namespace) -> int:
    from .cloud import jobs

    job = jobs.cancel(args.job, provider=args.provider)
    print(f"{job['id']}: {job['status']}")
    return 0


def cmd_cloud_chat(args: argparse.Namespace) -> int:
    from .cloud import jobs

    print(jobs.chat(args.model, args.prompt, provider=args.provider, system=args.system))
    return 0


def cmd_azure_deploy(args: argparse.Namespace) -> int:
    from .cloud import azure

    plan = azure.plan_deployment(args.model, args.name)
    if not args.json:
        print(plan.describe())
    result = azure.deploy(args.model, args.name, confirm=args.yes, dry_run=args.dry_run)
    if args.json:
        _print_json(result)
    else:
        print(result["note"])
    return 0


def cmd_azure_undeploy(args: argparse.Namespace) -> int:
    from .cloud import azure

    print(azure.delete(args.name)["note"])
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluate

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    report = evaluate.evaluate(args.task, strategies, adapter=args.adapter, limit=args.limit, k=args.k, price_model=args.price_model)
    if args.out:
        report.save(args.out)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.table())
        if args.out:
            print(f"saved: {args.out}")
    return 0


def cmd_limits_forgetting(args: argparse.Namespace) -> int:
    from . import limits

    report = limits.forgetting(args.adapter, limits.load_questions(args.questions) if args.questions else None)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.table())
        print(report.summary())
    return 0


def cmd_limits_data_size(args: argparse.Namespace) -> int:
    from . import limits

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for size in sizes:
        limits.run_size(size)  # a bad size is refused before anything trains
    overrides = {"max_steps": args.steps} if args.steps else {}
    results = limits.data_size_study(sizes, train_file=args.data, valid_file=args.valid, folder=args.out,
                                     f1_limit=args.f1_limit, **overrides)
    if args.json:
        _print_json(limits.size_results_to_dicts(results))
    else:
        print(limits.size_table(results))
        print(limits.lowest_loss(results))
        print(f"runs in {args.out}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from . import decide

    answers = decide.load_answers(args.answers)
    scores, paired = {}, {}
    if args.results:
        from .evaluate import load_report

        report = load_report(args.results)
        scores, paired = decide.scores_from_report(report), decide.paired_from_report(report)
    decision = decide.decide(answers, scores, paired)
    if args.json:
        _print_json(decision.to_dict())
    elif args.markdown:
        print(decision.markdown(answers))
    else:
        print(f"recommendation: {decision.recommendation}")
        for i, reason in enumerate(decision.reasons, 1):
            print(f"  {i}. {reason}")
    return 0


def cmd_autotrain_run(args: argparse.Namespace) -> int:
    from .cloud import autotrain

    if autotrain.command() and not args.local:
        project = autotrain.run(args.config)
        _log(f"AutoTrain saved its adapter in {project}")
        return 0
    cfg = autotrain.to_run_config(args.config, output_dir=args.out, max_steps=args.steps)
    if args.overwrite:
        cfg.overwrite = True
    if not autotrain.command():
        _log("AutoTrain is not installed (`make autotrain` installs it): the configuration runs with the local recipe "
             "(TRL + PEFT, as `lessonlib train local`)")
    return _train_here(cfg, args)


def cmd_autotrain_config(args: argparse.Namespace) -> int:
    from .cloud import autotrain

    path = autotrain.write_config(args.data, args.out, run_config=args.run_config, project=args.project, valid=args.valid)
    print(path)
    print(autotrain.how_to_run(path))
    return 0


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="lessonlib",
        description=_("Fine-Tuning Companion: the command-line face of the course's notebooks."),
    )
    parser.add_argument("--version", action="version", version=f"lessonlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("doctor", help=_("check that the offline course can run here"))
    p.add_argument("--json", action="store_true", help=_("one JSON object on stdout"))
    p.add_argument("--no-network", action="store_true", help=_("do not probe the network"))
    p.set_defaults(handler=cmd_doctor)

    model = sub.add_parser("model", help=_("prepare or describe the local model"))
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION")
    model_sub.required = True
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

    _add_data_commands(sub)
    _add_cost_commands(sub)
    _add_train_commands(sub)
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
    for provider in ("openai", "azure"):
        _add_cloud_commands(sub, provider)
    _add_autotrain_commands(sub)

    limits = sub.add_parser("limits", help=_("the limits of fine-tuning, measured: forgetting, data size"))
    limits_sub = limits.add_subparsers(dest="limits_command", metavar="EXPERIMENT")
    limits_sub.required = True
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
    return parser


def _add_cloud_commands(sub: Any, provider: str) -> None:
    name = "Azure OpenAI" if provider == "azure" else "OpenAI"
    cloud = sub.add_parser(provider, help=_("{name} fine-tuning jobs (dry run without a key)").format(name=name))
    cloud_sub = cloud.add_subparsers(dest=f"{provider}_command", metavar="ACTION")
    cloud_sub.required = True
    p = cloud_sub.add_parser("submit", help=_("upload data and create a job: cost shown first, budget respected"))
    p.add_argument("--data", required=True, help=_("training chat JSONL"))
    p.add_argument("--valid", default=None, help=_("validation chat JSONL"))
    p.add_argument("--model", required=True, help=_("base model, e.g. gpt-4o-mini") + (_(" (Azure: gpt-4o-mini, gpt-35-turbo, ...)") if provider == "azure" else ""))
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


def _add_autotrain_commands(sub: Any) -> None:
    auto = sub.add_parser("autotrain", help=_("AutoTrain Advanced: write a valid llm-sft configuration, and run it"))
    auto_sub = auto.add_subparsers(dest="autotrain_command", metavar="ACTION")
    auto_sub.required = True
    p = auto_sub.add_parser("config", help=_("write an AutoTrain YAML from the data and a run configuration"))
    p.add_argument("--data", required=True, help=_("training chat JSONL"))
    p.add_argument("--valid", default=None, help=_("validation chat JSONL"))
    p.add_argument("--out", required=True, help=_("the YAML file to write (its data folder is written beside it)"))
    p.add_argument("--run-config", default=None, help=_("RUN.yaml of the local launcher, for the same settings"))
    p.add_argument("--project", default="recipes-autotrain", help=_("AutoTrain project name"))
    p.set_defaults(handler=cmd_autotrain_config)
    p = auto_sub.add_parser("run", help=_("train an AutoTrain YAML: with AutoTrain where installed, else with the local recipe"))
    p.add_argument("config", help=_("the AutoTrain YAML (lessonlib autotrain config writes one)"))
    p.add_argument("--local", action="store_true", help=_("use the local recipe (TRL + PEFT) even where AutoTrain is installed"))
    p.add_argument("--steps", type=int, default=None, help=_("stop after this many steps (a short demo; default: the epochs)"))
    p.add_argument("--out", default=None, help=_("run folder (default: runs/PROJECT_NAME)"))
    p.add_argument("--overwrite", action="store_true", help=_("allow writing into an existing run folder"))
    p.add_argument("--resume", action="store_true", help=_("go on from the run folder's last checkpoint"))
    p.add_argument("--quiet", action="store_true", help=_("no progress bar"))
    p.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    p.set_defaults(handler=cmd_autotrain_run)


def cmd_serve(args: argparse.Namespace) -> int:
    from .service.app import serve

    serve(host=args.host, port=args.port, state=args.state, keys=args.keys, stop_with=args.stop_with)
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, one for each ``RunConfig`` field (imported here: the parser is built for every command)."""
    from .train.config import add_arguments

    add_arguments(parser)


def _add_train_commands(sub: Any) -> None:
    train = sub.add_parser("train", help=_("fine-tune the local model (LoRA or full) with TRL"))
    train_sub = train.add_subparsers(dest="train_command", metavar="WHERE")
    train_sub.required = True
    p = train_sub.add_parser("local", help=_("train on this machine; prints progress, ends with the run folder"))
    p.add_argument("--config", default=None, help=_("RUN.yaml with any RunConfig settings (a run folder's config.yaml repeats it)"))
    p.add_argument("--no-valid", action="store_true", help=_("no validation file"))
    p.add_argument("--resume", action="store_true", help=_("continue the run in --out from its last checkpoint"))
    p.add_argument("--quiet", action="store_true", help=_("no progress bar"))
    p.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    add_run_arguments(p)
    p.set_defaults(handler=cmd_train_local)
    p = train_sub.add_parser("export", help=_("print the same run as a `trl sft` command for a GPU machine"))
    p.add_argument("--config", default=None)
    p.set_defaults(handler=cmd_train_export)


def _add_data_commands(sub: Any) -> None:
    from .data import FORMATS

    data = sub.add_parser("data", help=_("validate, convert, split or generate chat data files"))
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
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


def _add_cost_commands(sub: Any) -> None:
    cost = sub.add_parser("cost", help=_("training cost, break-even, price table"))
    cost_sub = cost.add_subparsers(dest="cost_command", metavar="ACTION")
    cost_sub.required = True
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
