"""The dated facts the course states about the world outside it: one table, ``data/prices.csv``.

Each row is one way to fine-tune a model somewhere (a provider, a model, an Azure tier): its prices
(dated ``as_of``, from ``source``) and where it stands (``status``, dated ``status_as_of``, from
``status_source``): ``trains``, ``closing`` (new jobs refused from ``since``, to everyone from
``until``), ``retired`` (on ``since``), ``unmaintained`` (last release on ``since``) or ``unlisted``
(no longer in the provider's list of fine-tunable models). ``retires`` is the day the model stops
answering, tuned copies included; on Azure ``until`` is the "no earlier than" retirement of training.
:mod:`lessonlib.costs` reads the prices from the same rows; :func:`stale` says which facts are over six
months old (``lessonlib doctor`` warns), given the day to compare with, so no test depends on the date.

>>> [line.split(" is ")[0] for line in where_paths_stand("autotrain")]
['AutoTrain Advanced']
>>> from datetime import date
>>> stale(date(2026, 12, 7), table=[{"provider": "p", "model": "m", "as_of": "2026-01-02", "status_as_of": "2026-12-01"}])
[('p/m', 'prices', '2026-01-02')]
"""

from __future__ import annotations

import csv
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import LessonError
from .i18n import N_, _
from .settings import data_dir

STATUSES = ("trains", "closing", "retired", "unmaintained", "unlisted")
STALE_AFTER_MONTHS = 6

#: What each status says, for one row (``{since}``, ``{until}``, ``{retires}``, ``{model}`` filled from it).
SAYS = {
    ("openai", "closing"): N_("OpenAI is winding down self-serve fine-tuning: since {since}, only organisations that used a "
                              "fine-tuned model in the last 60 days can start a job (those that never fine-tuned were refused "
                              "first); from {until}, no one can. Tuned models answer until their base model retires "
                              "({model}: {retires})."),
    ("openai", "retired"): N_("OpenAI: {model} shut down on {since}, its tuned copies with it."),
    ("azure", "trains"): N_("Azure OpenAI: fine-tuning continues; {models} train today; training retires \"no earlier than\" "
                            "{until} for existing customers."),
    ("azure", "retired"): N_("Azure OpenAI: {model}, the lesson's model, retired on {since}."),
    ("azure", "developer"): N_("Azure's Developer tier trains at half the Global price (Global is 10-30% below Standard), "
                               "on spare capacity, and its deployments have no hosting fee and are deleted after 24 hours."),
    ("huggingface", "unmaintained"): N_("AutoTrain Advanced is no longer maintained: its last release, {model}, dates from "
                                        "{since}. On a GPU, follow TRL's own route: `trl sft`, or `hf jobs` on Hugging Face's GPUs."),
}
AS_OF = N_("(as of {date}: {source})")


def table_file() -> Path:
    return data_dir() / "prices.csv"


@lru_cache(maxsize=4)
def rows(path: str | None = None) -> tuple[dict[str, str], ...]:
    """Every row of the table as strings (checked: a known status, and a date and a source for each fact it holds)."""
    file = Path(path) if path else table_file()
    out = []
    with open(file, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            row = {key: (value or "").strip() for key, value in row.items() if key}
            if row.get("status") and row["status"] not in STATUSES:
                raise LessonError(_("{file}, line {line}: unknown status '{status}'").format(file=file, line=line, status=row["status"]),
                                  fix=_("use one of: {names}").format(names=", ".join(STATUSES)))
            if row.get("status") and not (row.get("status_as_of") and row.get("status_source")):
                raise LessonError(_("{file}, line {line}: a status needs its date (status_as_of) and its source").format(file=file, line=line))
            out.append(row)
    return tuple(out)


def _say(key: tuple[str, str], row: dict[str, str], **extra: str) -> str:
    text = _(SAYS[key]).format(model=row["model"], since=row.get("since", ""), until=row.get("until", ""), retires=row.get("retires", ""),
                               **extra)
    return f"{text} " + _(AS_OF).format(date=row["status_as_of"], source=row["status_source"])


def where_paths_stand(provider: str, table: tuple[dict[str, str], ...] | None = None) -> list[str]:
    """One line a fact about ``provider``'s fine-tuning ("openai", "azure" or "autotrain"), each with its date and source.

    The lines do not depend on today's date: they say what was read, and when.
    """
    table = table or rows()
    mine = [r for r in table if r.get("provider") == ("huggingface" if provider == "autotrain" else provider) and r.get("status")]
    lines = []
    if provider == "openai":
        closing = [r for r in mine if r["status"] == "closing"]
        lines += [_say(("openai", "closing"), closing[0])] if closing else []
        lines += [_say(("openai", "retired"), r) for r in mine if r["status"] == "retired"]
    elif provider == "azure":
        training = [r for r in mine if r["status"] == "trains" and r.get("tier") in ("", "standard")]
        if training:
            lines.append(_say(("azure", "trains"), training[0], models=", ".join(r["model"] for r in training)))
        lines += [_say(("azure", "retired"), r) for r in mine if r["status"] == "retired"]
        lines += [_say(("azure", "developer"), r) for r in mine if r.get("tier") == "developer"]
    elif provider == "autotrain":
        lines += [_say(("huggingface", "unmaintained"), r) for r in mine if r["status"] == "unmaintained"]
    else:
        raise LessonError(_("unknown provider '{provider}'").format(provider=provider), fix=_("use openai, azure or autotrain"))
    return lines


def refused_training(provider: str = "openai") -> str:
    """Why a provider refuses new fine-tuning jobs, dated: the first line of :func:`where_paths_stand`."""
    lines = where_paths_stand(provider)
    return lines[0] if lines else ""


def _months_between(then: date, today: date) -> float:
    return (today.year - then.year) * 12 + (today.month - then.month) + (today.day - then.day) / 31


def _parse(text: str) -> date | None:
    try:
        return date.fromisoformat(text if len(text) == 10 else text + "-01")
    except ValueError:
        return None


def stale(today: date, *, months: int = STALE_AFTER_MONTHS, table: Any = None) -> list[tuple[str, str, str]]:
    """The facts read more than ``months`` before ``today``: (provider/model, "prices" or "status", date read)."""
    out = []
    for row in table if table is not None else rows():
        for kind, column in ((N_("prices"), "as_of"), (N_("status"), "status_as_of")):
            read = _parse(row.get(column, ""))
            if read and _months_between(read, today) > months:
                out.append((f"{row['provider']}/{row['model']}", kind, row[column]))
    return out
