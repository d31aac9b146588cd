"""One finished trainer run, shared by the identical trainer after it: :mod:`lessonlib.train.replay` for code that
builds its own ``SFTTrainer``.

Notebook 04 writes TRL's code in its cells (``SFTTrainer(...)``, ``trainer.train()``), and its French twin runs the
same cells; the runner's replay (:func:`lessonlib.train.run`) cannot reach a trainer the learner built. So where runs
are shared (``LESSONLIB_RUN_CACHE``: ``make test`` and ``make notebooks`` set it; a learner's kernel never does), the
training monitor's callback (:func:`shared_progress_callback`) keys the run at ``on_train_begin`` by everything that
decides its numbers: the trainer's arguments (all but where it writes), the tokenized training rows, every weight of
the model as it starts (the LoRA adapter's initial values included, so the seed is in), the numeric path, lessonlib's
code and the libraries' versions. The first such run is kept when it ends: its trainable weights, its
``log_history`` and its progress events. An identical run later trains one step (a ``TrainerCallback`` cannot
skip the first), stops, and at ``on_train_end`` takes the kept weights, ``global_step``, ``log_history`` and token
count, and replays the kept events to its view: the cells after it (save, reload, generate, the loss assertions) see
the first run's result. A run stopped early is never kept.

Unset (a learner's default), this is the plain :func:`lessonlib.train.events.progress_callback`.

>>> import os
>>> "LESSONLIB_RUN_CACHE" in os.environ or shared_progress_callback.__name__ == "shared_progress_callback"
True
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .events import EventHandler, ProgressEvent, StopFlag, progress_callback
from .replay import folder, run_identity

#: The trainer's arguments that say where it writes, not what it computes.
_PLACES = ("output_dir", "logging_dir", "hub_model_id", "hub_token", "run_name")


def trainer_key(args: Any, model: Any, dataset: Any) -> str:
    """What decides a trainer's numbers, as one digest: its arguments, its training rows, the model's weights now."""
    import torch

    digest = hashlib.sha256()
    settings_ = {k: v for k, v in args.to_dict().items() if k not in _PLACES}
    digest.update(json.dumps(settings_, sort_keys=True, default=str).encode())
    digest.update(json.dumps(dataset.with_format(None)[:], sort_keys=True, default=str).encode())
    for name, param in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(param.dtype).encode())
        digest.update(param.detach().contiguous().cpu().view(-1).view(dtype=torch.uint8).numpy().tobytes())
    digest.update(json.dumps(run_identity(), sort_keys=True, default=str).encode())
    return "trainer-" + digest.hexdigest()[:32]


def shared_progress_callback(emit: EventHandler, stop: StopFlag | None = None) -> Any:
    """:func:`~lessonlib.train.events.progress_callback` (``emit``, ``stop``) that, where runs are shared, also keeps
    the run it watches or replays an identical kept one (see the module docstring)."""
    if folder() is None:
        return progress_callback(emit, stop)
    from transformers import TrainerCallback

    class SharedRun(TrainerCallback):
        """The progress callback's hooks, passed on while training for real; a kept run's result when replaying."""

        def __init__(self) -> None:
            self.events: list[ProgressEvent] = []
            self.inner = progress_callback(self.events.append, stop)
            self.progress = self.inner.progress
            self.key: str | None = None
            self.kept: Path | None = None

        def _pass(self, hook: str, *a: Any, **k: Any) -> None:
            if self.kept is None:
                before = len(self.events)
                getattr(self.inner, hook)(*a, **k)
                for event in self.events[before:]:
                    emit(event)

        def on_train_begin(self, args: Any, state: Any, control: Any, **k: Any) -> None:
            loader = k.get("train_dataloader")
            dataset = getattr(loader, "dataset", None)
            if state.global_step == 0 and dataset is not None and hasattr(dataset, "with_format") and k.get("model") is not None:
                self.key = trainer_key(args, k["model"], dataset)
                kept = folder() / self.key
                self.kept = kept if (kept / "trainer.json").is_file() else None
            self._pass("on_train_begin", args, state, control, **k)

        def on_log(self, *a: Any, **k: Any) -> None:
            self._pass("on_log", *a, **k)

        def on_save(self, *a: Any, **k: Any) -> None:
            self._pass("on_save", *a, **k)

        def on_step_end(self, args: Any, state: Any, control: Any, **k: Any) -> None:
            if self.kept is not None:
                control.should_training_stop = True  # the kept run's result is taken at the end
            self._pass("on_step_end", args, state, control, **k)

        def on_train_end(self, args: Any, state: Any, control: Any, **k: Any) -> None:
            model = k.get("model")
            if self.kept is not None and model is not None:
                _take(self.kept, model, state, emit)
            elif self.key is not None and model is not None and not self.progress.stopped and state.global_step >= state.max_steps:
                _keep(self.key, model, state, self.events)

    return SharedRun()


def _trainable(model: Any) -> dict[str, Any]:
    return {name: param.detach().cpu().contiguous() for name, param in model.named_parameters() if param.requires_grad}


def _keep(key: str, model: Any, state: Any, events: list[ProgressEvent]) -> None:
    """Keep a finished run (written aside, then renamed: a reader never sees half)."""
    from safetensors.torch import save_file

    base = folder()
    if base is None or (base / key).exists():
        return
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=base))
    save_file(_trainable(model), str(staging / "trainable.safetensors"))
    (staging / "events.jsonl").write_text("".join(json.dumps(asdict(e)) + "\n" for e in events), encoding="utf-8")
    kept = {"global_step": state.global_step, "log_history": state.log_history,
            "num_input_tokens_seen": getattr(state, "num_input_tokens_seen", 0)}
    (staging / "trainer.json").write_text(json.dumps(kept, default=str), encoding="utf-8")
    try:
        staging.rename(base / key)
    except OSError:  # another process kept the same run first
        shutil.rmtree(staging, ignore_errors=True)


def _take(kept: Path, model: Any, state: Any, emit: EventHandler) -> None:
    """The kept run's weights into ``model`` and its progress into ``state``; its events replayed to ``emit``."""
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(kept / "trainable.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    saved = json.loads((kept / "trainer.json").read_text(encoding="utf-8"))
    state.global_step = saved["global_step"]
    state.log_history = saved["log_history"]
    state.num_input_tokens_seen = saved["num_input_tokens_seen"]
    for line in (kept / "events.jsonl").read_text(encoding="utf-8").splitlines():
        emit(ProgressEvent(**json.loads(line)))
