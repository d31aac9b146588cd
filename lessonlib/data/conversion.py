"""Converting between the formats the tutorials use, and splitting a file into train, validation and test."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..corpora import split_path  # noqa: F401  (re-exported for notebooks: data.split_path)
from ..errors import LessonError
from ..i18n import _
from .checks import check_example
from .validation import iter_examples, read_examples

FORMATS = ("openai", "hf", "prompt-completion", "autotrain")


def to_prompt_completion(example: dict[str, Any]) -> dict[str, Any]:
    """Chat example -> TRL's conversational prompt/completion pair (the last assistant turn is the completion).

    >>> to_prompt_completion({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]})
    {'prompt': [{'role': 'user', 'content': '2+2?'}], 'completion': [{'role': 'assistant', 'content': '4'}]}
    """
    messages = example["messages"]
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
    return {"prompt": messages[:last], "completion": [messages[last]]}


def from_prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    """Prompt/completion pair (conversational or plain strings) -> chat example."""
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    if not isinstance(prompt, list) or not isinstance(completion, list):
        raise LessonError(_("a prompt/completion record needs 'prompt' and 'completion' (strings or message lists)"))
    return {"messages": prompt + completion}


def to_hf_dataset(examples: Sequence[dict[str, Any]]):
    """A ``datasets.Dataset`` with a ``messages`` column (what TRL's SFTTrainer takes)."""
    from datasets import Dataset

    return Dataset.from_list([{"messages": e["messages"]} for e in examples])


def read_any(path: Path) -> list[dict[str, Any]]:
    """Examples from an OpenAI JSONL file, a prompt/completion JSONL file or a saved HF dataset folder."""
    if path.is_dir():
        from datasets import load_from_disk

        try:
            return [{"messages": row["messages"]} for row in load_from_disk(str(path))]
        except (FileNotFoundError, KeyError, ValueError) as exc:
            raise LessonError(_("{path} is not a saved dataset with a 'messages' column ({exc})").format(path=path, exc=exc), exit_code=2) from None
    records: list[dict[str, Any]] = []
    for line, obj, findings in iter_examples(path):
        errors = [f for f in findings if f.severity == "error"]
        if errors:
            raise LessonError(_("{path}: {error}").format(path=path, error=errors[0]), fix=_("run `lessonlib data validate {path}`").format(path=path))
        if obj is None:
            continue
        if isinstance(obj, dict) and "prompt" in obj and "messages" not in obj:
            obj = from_prompt_completion(obj)
        problems = [f for f in check_example(obj, line) if f.severity == "error"]
        if problems:
            raise LessonError(_("{path}: {problem}").format(path=path, problem=problems[0]), fix=_("run `lessonlib data validate {path}`").format(path=path))
        records.append(obj)
    return records


def convert(source: str | Path, target: str | Path, to: str) -> Path:
    """Convert a data file between formats; returns what was written.

    ``openai``: chat JSONL. ``prompt-completion``: TRL's conversational pairs, JSONL. ``hf``: a
    ``datasets`` folder (``save_to_disk``). ``autotrain``: a folder with ``train.jsonl`` holding a
    ``messages`` column, as AutoTrain's ``llm-sft`` task reads it (``column_mapping: text_column:
    messages`` with a chat template).
    """
    from ..corpora import write_jsonl

    if to not in FORMATS:
        raise LessonError(_("unknown format '{to}'").format(to=to), fix=_("use one of: {names}").format(names=', '.join(FORMATS)), exit_code=2)
    examples = read_any(Path(source))
    target = Path(target)
    if to == "openai":
        write_jsonl(examples, target)
    elif to == "prompt-completion":
        write_jsonl((to_prompt_completion(e) for e in examples), target)
    elif to == "hf":
        to_hf_dataset(examples).save_to_disk(str(target))
    else:  # autotrain
        target.mkdir(parents=True, exist_ok=True)
        write_jsonl(examples, target / "train.jsonl")
    return target


def split(
    path: str | Path, *, valid: float = 0.1, test: float = 0.0, seed: int = 18, out_dir: str | Path | None = None
) -> dict[str, Path]:
    """Shuffle (seeded) and split a file into ``NAME.train.jsonl``, ``NAME.valid.jsonl`` [, ``NAME.test.jsonl``]."""
    from ..corpora import write_jsonl

    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise LessonError(_("valid ({valid}) and test ({test}) must be fractions that leave room for training").format(valid=valid, test=test), exit_code=2)
    path = Path(path)
    examples = read_examples(path)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_valid, n_test = round(len(examples) * valid), round(len(examples) * test)
    parts = {"test": order[:n_test], "valid": order[n_test:n_test + n_valid], "train": order[n_test + n_valid:]}
    folder = Path(out_dir) if out_dir else path.parent
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.stem
    written = {}
    for name in ("train", "valid", "test"):
        if name == "test" and not test:
            continue
        written[name] = folder / f"{stem}.{name}.jsonl"
        write_jsonl((examples[i] for i in sorted(parts[name])), written[name])
    return written
