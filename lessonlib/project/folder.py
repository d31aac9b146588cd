"""A project folder: the learner's file, the settings chosen for it, and where each step leaves its results.

Layout (``lessonlib project new DIR --data FILE``)::

    DIR/project.yaml           the settings (data, columns, system prompt, metric, seed, sizes)
    DIR/source/                a copy of the learner's file(s) and metric, so the folder travels alone
    DIR/data/                  train.jsonl, valid.jsonl, test.jsonl (chat format), written by the prepare step
    DIR/results/STEP.json      what each step measured
    DIR/model/adapter/         the LoRA run (lessonlib.train)    DIR/model/merged/  the merged model
    DIR/export/                OpenAI chat files, the trl sft folder, the model card
    DIR/report.json, report.md the whole answer

>>> Settings(data="source/x.csv").to_dict()["seed"]
18
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import LessonError
from ..i18n import _

SETTINGS_FILE = "project.yaml"


@dataclass
class Settings:
    """What a project is made of (``project.yaml``); paths are relative to the project folder."""

    data: str  # the learner's file (or dataset folder), copied under source/
    test: str | None = None  # the learner's own test file, used as given
    input: str | None = None  # a table's input column
    output: str | None = None  # a table's output column
    system: str | None = None  # a system prompt for every example (labels: one listing them is made when none is given)
    metric: str | None = None  # accuracy, exact_match, token_f1, json, or a .py file under source/ (None: inferred)
    seed: int = 18  # the split's and the training's seed
    valid: float = 0.1  # share of the examples for validation (early stopping)
    test_share: float = 0.25  # share for the test set (without the learner's own test file)
    k: int = 3  # examples in a few-shot or retrieval prompt
    model: str = "smollm2"  # the base model
    price_model: str = "gpt-4o-mini"  # whose prices the costs use
    epochs: float = 3.0  # passes over the training split (early stopping may end sooner)
    max_steps: int = 300  # at most this many optimiser steps
    batch_size: int = 4  # examples per step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Project:
    """One project folder (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        path = self.root / SETTINGS_FILE
        if not path.is_file():
            raise LessonError(_("{root} is not a project folder (no {name})").format(root=self.root, name=SETTINGS_FILE),
                              fix=_("make one with `lessonlib project new DIR --data FILE`"), exit_code=2)
        import yaml

        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise LessonError(_("{path} is not valid YAML ({problem})").format(path=path, problem=str(exc).splitlines()[0]), exit_code=2) from None
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(values) - known)
        if unknown or "data" not in values:
            raise LessonError(_("{path}: unknown or missing setting '{name}'").format(path=path, name=(unknown or ["data"])[0]),
                              fix=_("use some of: {names}").format(names=", ".join(sorted(known))), exit_code=2)
        self.settings = Settings(**values)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    @property
    def data_dir(self) -> Path:
        return self.path("data")

    def result(self, step: str) -> dict[str, Any] | None:
        """What a step left (``results/STEP.json``), or None before it ran."""
        path = self.path("results", f"{step}.json")
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def need(self, step: str, before: str) -> dict[str, Any]:
        """A step's result, or an error saying which step to run first."""
        found = self.result(step)
        if found is None:
            raise LessonError(_("the {before} step needs the {step} step's results").format(before=before, step=step),
                              fix=_("run `lessonlib project run {root} --step {step}` first").format(root=self.root, step=step))
        return found

    def save_result(self, step: str, value: dict[str, Any]) -> Path:
        path = self.path("results", f"{step}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        return path


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def new(root: str | Path, data: str | Path, *, test: str | Path | None = None, input: str | None = None, output: str | None = None,
        system: str | None = None, metric: str | None = None, seed: int = 18, overwrite: bool = False) -> Project:
    """Make a project folder from the learner's file: the file is read and checked now, so a bad one is refused at once."""
    import yaml

    from .. import metrics
    from ..data.tables import read_table

    root = Path(root).expanduser().resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if not overwrite:
            raise LessonError(_("{root} already exists and is not empty").format(root=root),
                              fix=_("choose another folder, or pass --overwrite to replace it"), exit_code=2)
        shutil.rmtree(root) if root.is_dir() else root.unlink()
    sources = {"data": Path(data).expanduser(), "test": Path(test).expanduser() if test else None}
    custom = metric not in (None, *metrics.METRICS[:-1])
    if custom:
        sources["metric"] = Path(str(metric)).expanduser()
        metrics.load_custom(sources["metric"])  # refused now, not after training
    elif metric == "custom":
        raise LessonError(_("the custom metric needs its file"), fix=_("--metric path/to/metric.py"), exit_code=2)
    for path in (p for p in sources.values() if p is not None):
        if not path.exists():
            raise LessonError(_("no file at {path}").format(path=path), exit_code=2)
    read_table(sources["data"], input=input, output=output, system=system)  # bad input is refused before anything is written
    if sources["test"]:
        read_table(sources["test"], input=input, output=output, system=system)
    (root / "source").mkdir(parents=True)
    copied: dict[str, str | None] = {}
    for name, path in sources.items():
        if path is None:
            copied[name] = None
            continue
        target = root / "source" / (f"test-{path.name}" if name == "test" and path.name == sources["data"].name else path.name)
        _copy(path, target)
        copied[name] = target.relative_to(root).as_posix()
    values = Settings(data=str(copied["data"]), test=copied["test"], input=input, output=output, system=system,
                      metric=copied.get("metric") if custom else metric, seed=seed)
    (root / SETTINGS_FILE).write_text("# lessonlib project: `lessonlib project run THIS_FOLDER` runs every step\n"
                                      + yaml.safe_dump(values.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Project(root)
