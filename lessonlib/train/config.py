"""The run configuration: one typed dataclass, saved as YAML next to every run so it can be repeated.

>>> cfg = RunConfig(max_steps=10)
>>> RunConfig.from_dict(cfg.to_dict()) == cfg
True
>>> RunConfig.from_dict({"learning_rat": 1e-3})
Traceback (most recent call last):
...
lessonlib.errors.LessonError: unknown setting 'learning_rat' in the run configuration (fix: did you mean 'learning_rate'?)
"""

from __future__ import annotations

import argparse
import difflib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import LessonError
from ..i18n import _

AUTO_ON_OFF = ("auto", "on", "off")


def setting(default: Any, help: str, *, flags: tuple[str, ...] = (), choices: tuple[str, ...] | None = None,
            factory: bool = False) -> Any:
    """A :class:`RunConfig` field: its default, one line of help, and what the command line needs of it.

    The command line's training flags are made from these fields (:func:`add_arguments`): ``--NAME``
    with dashes, plus any short ``flags``.
    """
    metadata = {"help": help, "flags": flags, "choices": choices}
    return field(default_factory=default, metadata=metadata) if factory else field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """Everything that defines a local fine-tuning run (defaults: a ~1 minute LoRA demo on 2 cores)."""

    # what to train
    model: str = setting("smollm2", "base model: smollm2 (the offline default), a Hub id or a model folder")
    train_file: str = setting("data/recipes/train.jsonl", "training chat JSONL in OpenAI's format", flags=("--data",))
    valid_file: str | None = setting("data/recipes/valid.jsonl", "held-out chat JSONL for the validation loss (None: none)", flags=("--valid",))
    output_dir: str = setting("runs/recipes-lora", "the run folder: adapter, checkpoints, config, metrics, model card", flags=("--out",))
    method: str = setting("lora", "lora (adapters on a frozen model) or full (every weight)", choices=("lora", "full"))
    # LoRA
    lora_r: int = setting(8, "adapter rank")
    lora_alpha: int = setting(16, "scaling numerator (effective scale alpha / r)")
    lora_dropout: float = setting(0.0, "dropout on the adapter input (0 is faster and fine for short runs)")
    lora_target_modules: list[str] = setting(lambda: ["q_proj", "v_proj"], "layers that get adapters", factory=True)  # noqa: RUF009 - a field with a factory
    # optimisation
    learning_rate: float = setting(2e-3, "peak learning rate (short LoRA runs like 1e-3 to 2e-3, full fine-tuning ~5e-5)")
    lr_scheduler: str = setting("linear", "how the learning rate falls from its peak", choices=("linear", "cosine", "constant"))
    warmup_steps: int = setting(0, "steps of linear warm-up")
    max_steps: int = setting(20, "optimiser steps; 0 means: use epochs", flags=("--steps",))
    epochs: float = setting(1.0, "passes over the data when max_steps is 0")
    batch_size: int = setting(2, "examples per step (2 is faster per token than 4 on 2 cores: less padding)")
    grad_accum: int = setting(1, "steps of gradient accumulation per optimiser step")
    max_length: int = setting(320, "most tokens an example may have after the chat template (longer ones are cut)")
    packing: bool = setting(False, "pack several examples into each sequence")
    assistant_only_loss: bool = setting(True, "learn only the assistant replies, not the prompts")
    seed: int = setting(18, "for data order and adapter initialisation: same seed, same losses")
    # bookkeeping
    eval_every: int = setting(0, "validation loss every N steps (0: only at the end; each pass costs time)")
    early_stopping_patience: int = setting(0, "stop after N evaluations without a better validation loss, keep the best (0: off)",
                                           flags=("--early-stopping",))
    save_every: int = setting(10, "checkpoint every N steps, for --resume (0: only at the end)")
    log_every: int = setting(1, "progress event every N steps")
    # machine (auto = decided from what this machine offers, see lessonlib.train.machine)
    threads: int = setting(0, "torch threads; 0 = one per usable core")
    bf16: str = setting("auto", "bf16 autocast (auto: on a CPU only where it is faster)", choices=AUTO_ON_OFF)
    activation_checkpointing: str = setting("auto", "recompute activations in the backward pass: less memory, more time", choices=AUTO_ON_OFF)
    memory_budget_gb: float = setting(1.5, "the most resident memory the run should need (GB)", flags=("--memory",))
    qlora: str = setting("auto", "4-bit base weights on a GPU (auto: bitsandbytes installed and the model big for the card)", choices=AUTO_ON_OFF)
    measures: str = setting("auto", "optional speed and memory measures beyond the public recipe (lessonlib.train.optimizations)", choices=("auto", "off"))
    # results
    merge: bool = setting(False, "also save a merged full model (LoRA weights folded in)")
    overwrite: bool = setting(False, "allow writing into an existing run folder")

    @property
    def early_stopping(self) -> bool:
        """Whether early stopping is on (``check`` guarantees it then has eval_every and a validation file)."""
        return self.early_stopping_patience > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                raise LessonError(_("unknown setting '{key}' in the run configuration").format(key=key), fix=(_("did you mean '{close}'?").format(close=close[0]) if close else _("see `lessonlib train local --help`")))
        cfg = cls(**values)
        cfg.check()
        return cfg

    def save(self, path: str | Path) -> Path:
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# lessonlib run configuration: `lessonlib train local --config THIS_FILE` repeats the run\n" + yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        import yaml

        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise LessonError(_("cannot read the run configuration {path}: {reason}").format(path=path, reason=exc.strerror or exc), exit_code=2) from None
        except yaml.YAMLError as exc:
            raise LessonError(_("{path} is not valid YAML ({problem})").format(path=path, problem=str(exc).splitlines()[0]), exit_code=2) from None
        if not isinstance(values, dict):
            raise LessonError(_("{path} must hold a mapping of settings").format(path=path), exit_code=2)
        return cls.from_dict(values)

    def check(self) -> None:
        """Refuse impossible settings with a suggested value."""
        def bad(name: str, problem: str, suggestion: Any) -> LessonError:
            return LessonError(_("{name} {problem}").format(name=name, problem=problem), fix=_("use {name}={suggestion!r}").format(name=name, suggestion=suggestion))

        if self.method not in {"lora", "full"}:
            raise bad("method", _("is {value!r}; it must be 'lora' or 'full'").format(value=self.method), "lora")
        if self.lr_scheduler not in {"linear", "cosine", "constant"}:
            raise bad("lr_scheduler", _("is {value!r}").format(value=self.lr_scheduler), "linear")
        for name in ("bf16", "activation_checkpointing", "qlora"):
            if getattr(self, name) not in AUTO_ON_OFF:
                raise bad(name, _("must be auto, on or off"), "auto")
        if self.measures not in {"auto", "off"}:
            raise bad("measures", _("must be auto or off"), "auto")
        for name in ("batch_size", "grad_accum", "lora_r", "max_length"):
            if getattr(self, name) < 1:
                raise bad(name, _("must be at least 1"), getattr(RunConfig, name, 1))
        if self.max_steps < 0 or (self.max_steps == 0 and self.epochs <= 0):
            raise bad("max_steps", _("and epochs leave nothing to train"), 20)
        if not 0 < self.learning_rate < 1:
            raise bad("learning_rate", _("is {value}").format(value=self.learning_rate), 1e-3 if self.method == "lora" else 5e-5)
        if not 0 <= self.lora_dropout < 1:
            raise bad("lora_dropout", _("must be in [0, 1)"), 0.0)
        if self.early_stopping_patience < 0:
            raise bad("early_stopping_patience", _("cannot be negative"), 0)
        if self.early_stopping_patience and (self.eval_every < 1 or not self.valid_file):
            raise LessonError(_("early stopping watches the validation loss, so it needs a validation file and eval_every"),
                              fix=_("set eval_every (e.g. 5) and valid_file, or early_stopping_patience: 0"))
        if self.threads < 0:
            raise bad("threads", _("cannot be negative"), 0)


_TYPES = {"int": int, "float": float, "str": str, "str | None": str}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag for every :class:`RunConfig` field to ``parser`` (default ``None``: "not given").

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> overrides(parser.parse_args(["--steps", "5", "--lora-target-modules", "q_proj", "k_proj", "--no-assistant-only-loss"]))
    {'lora_target_modules': ['q_proj', 'k_proj'], 'max_steps': 5, 'assistant_only_loss': False}
    """
    group = parser.add_argument_group("run settings (RunConfig; a --config file's values are the defaults)")
    for f in fields(RunConfig):
        meta = f.metadata
        names = [*meta.get("flags", ()), "--" + f.name.replace("_", "-")]
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{meta.get('help', '')} (default: {default})".replace("%", "%%")
        if f.type == "bool":
            group.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif f.type == "list[str]":
            group.add_argument(*names, dest=f.name, nargs="+", default=None, metavar="NAME", help=help_text)
        else:
            group.add_argument(*names, dest=f.name, type=_TYPES[str(f.type)], choices=meta.get("choices"), default=None,
                               metavar=None if meta.get("choices") else f.name.split("_")[-1].upper(), help=help_text)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`RunConfig` values given on the command line (those not given are left out)."""
    return {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name, None) is not None}
