"""``lessonlib train local|export``: fine-tune the local model here, or write the run for a GPU box."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..i18n import _
from .common import command_group, log, print_json


def add_commands(sub: Any) -> None:
    """Add this group's subcommands, each with its handler, to ``sub``."""
    train_sub = command_group(sub, "train", _("fine-tune the local model (LoRA or full) with TRL"), metavar="WHERE")
    p = train_sub.add_parser("local", help=_("train on this machine; prints progress, ends with the run folder"))
    p.add_argument("--config", default=None, help=_("RUN.yaml with any RunConfig settings (a run folder's config.yaml repeats it)"))
    p.add_argument("--no-valid", action="store_true", help=_("no validation file"))
    p.add_argument("--resume", action="store_true", help=_("continue the run in --out from its last checkpoint"))
    p.add_argument("--quiet", action="store_true", help=_("no progress bar"))
    p.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    add_run_arguments(p)
    p.set_defaults(handler=cmd_train_local)
    p = train_sub.add_parser("export", help=_("the same run for TRL's command line: a folder (--out), or a `trl sft` command"))
    p.add_argument("--config", default=None, help=_("RUN.yaml with any RunConfig settings"))
    p.add_argument("--out", default=None, metavar="DIR",
                   help=_("write TRL's config, the data, accelerate's configurations, a launch script and a README here"))
    p.set_defaults(handler=cmd_train_export)


def cmd_train_local(args: argparse.Namespace) -> int:
    from ..train import RunConfig
    from ..train.config import overrides

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    values = {**cfg.to_dict(), **overrides(args)}
    if args.no_valid:
        values["valid_file"] = None
    return train_here(RunConfig.from_dict(values), args)


def train_here(cfg: Any, args: argparse.Namespace) -> int:
    """Train ``cfg`` in this process with a progress bar; Ctrl-C stops after the step and saves."""
    import signal

    from ..train import StopFlag, run

    stop = StopFlag()
    interrupted = {"count": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt
        log("\nstopping after this step and saving (press Ctrl-C again to abort without saving)")
        stop.request()

    previous = signal.signal(signal.SIGINT, on_sigint)
    bar = None
    try:
        from tqdm import tqdm

        def on_event(event: Any) -> None:
            nonlocal bar
            if event.kind == "plan":
                log("machine: " + event.message)
            elif event.kind == "start":
                bar = tqdm(total=event.total, initial=event.step, unit="step", file=sys.stderr, dynamic_ncols=True, disable=args.quiet)
            elif event.kind == "step" and bar is not None:
                bar.update(event.step - bar.n)
                bar.set_postfix(loss=f"{event.loss:.3f}", tok_s=f"{event.tokens_per_s or 0:.0f}", rss=f"{event.rss_gb or 0:.2f}GB")
            elif event.kind == "eval":
                (bar.write if bar is not None else log)(f"step {event.step}: validation loss {event.eval_loss:.3f}")

        result = run(cfg, on_event=on_event, stop=stop, resume=args.resume, owns_process=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    if args.json:
        print_json({k: v for k, v in result.to_dict().items() if k != "history"})
    else:
        state = "stopped early; resume with --resume" if result.stopped else (
            f"early stopping (best validation loss at step {result.best_step}, that adapter kept)" if result.early_stopped else "done")
        loss = f"loss {result.first_loss:.3f} -> {result.final_loss:.3f}" if result.first_loss is not None else ""
        evl = f", validation {result.eval_loss:.3f}" if result.eval_loss is not None else ""
        log(f"{state}: {result.steps} steps in {result.train_seconds:.0f} s, {loss}{evl}, {result.tokens_per_s or 0:.0f} tokens/s, peak {result.peak_rss_gb:.2f} GB")
        print(result.output_dir)
    return 0


def cmd_train_export(args: argparse.Namespace) -> int:
    from ..train import RunConfig, export_command
    from ..train.export import export

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    if args.out is None:
        print(export_command(cfg))
        return 0
    folder = export(cfg, args.out)
    print(_("{folder}: train it with `{folder}/launch.sh single_gpu` (its README says which configuration to pick)")
          .format(folder=folder))
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, one for each ``RunConfig`` field (imported here: the parser is built for every command)."""
    from ..train.config import add_arguments

    add_arguments(parser)
