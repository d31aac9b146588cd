"""What fine-tuning and prompting cost, from a dated price table kept as data.

Scope: training cost (billed tokens x epochs, with OpenAI's default-epoch rule when epochs are
not given), inference cost per request for base and fine-tuned models, and the break-even
between *few-shot prompting* (examples sent with every request) and a *fine-tuned model*
(training once, maybe hosting by the hour, its own token prices, a short prompt).
Limits: list prices only (no batch or cached-input discounts, no taxes); Azure hosting is billed
per hour whether or not the deployment is used. Prices live in ``data/prices.csv``, each row
with the date it was read and its source (the same dated table as :mod:`lessonlib.facts`, which also says
where each provider's fine-tuning stands); every result carries that date.

>>> price = get_price("gpt-4o-mini")
>>> price.as_of
'2025-06-01'
>>> default_epochs(20), default_epochs(200)   # OpenAI: at least ~100 example passes
(5, 3)
>>> round(training_cost(100_000, 3, price).usd, 2)
0.9
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import facts
from .errors import LessonError
from .i18n import N_, _

# OpenAI's default epochs (as in the cookbook's data-preparation notebook).
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Price:
    """One row of ``data/prices.csv``: US dollars per 1M tokens unless stated."""

    provider: str  # "openai", "azure" or "local"
    model: str  # model name as the provider spells it
    training_per_1m: float  # training tokens (billed tokens x epochs)
    input_per_1m: float  # base model, prompt tokens
    output_per_1m: float  # base model, completion tokens
    ft_input_per_1m: float  # fine-tuned model, prompt tokens
    ft_output_per_1m: float  # fine-tuned model, completion tokens
    hosting_per_hour: float  # deployed fine-tuned model, per hour (Azure); 0 when not billed
    training_context: int  # longest training example accepted, in tokens
    context_window: int  # longest request (prompt + reply) the model takes, in tokens
    as_of: str  # date the row was read from its source (YYYY-MM-DD)
    source: str  # where the numbers come from
    tier: str = ""  # Azure's training tier: "standard" (list price), "developer"; "" elsewhere

    @property
    def label(self) -> str:
        if self.tier not in ("", "standard"):
            return _("{provider}/{model}, {tier} tier (prices of {date})").format(provider=self.provider, model=self.model, tier=self.tier,
                                                                                 date=self.as_of)
        return _("{provider}/{model} (prices of {date})").format(provider=self.provider, model=self.model, date=self.as_of)


def prices_file() -> Path:
    return facts.table_file()


@lru_cache(maxsize=4)
def load_prices(path: str | None = None, *, tiers: tuple[str, ...] = ("", "standard")) -> tuple[Price, ...]:
    """The priced rows of the dated table (``lessonlib.facts``), list prices only unless ``tiers`` names others
    (Azure's "developer"); checked: numbers parse, every row has a date and a source."""
    file = Path(path) if path else prices_file()
    prices: list[Price] = []
    for line, row in enumerate(facts.rows(str(file)), start=2):
        if not row.get("training_per_1m") or row.get("tier", "") not in tiers:
            continue  # a status without prices (a retired model, AutoTrain), or another tier
        try:
            price = Price(
                provider=row["provider"],
                model=row["model"],
                training_per_1m=float(row["training_per_1m"]),
                input_per_1m=float(row["input_per_1m"]),
                output_per_1m=float(row["output_per_1m"]),
                ft_input_per_1m=float(row["ft_input_per_1m"]),
                ft_output_per_1m=float(row["ft_output_per_1m"]),
                hosting_per_hour=float(row["hosting_per_hour"]),
                training_context=int(row["training_context"]),
                context_window=int(row["context_window"]),
                as_of=row["as_of"],
                source=row["source"],
                tier=row.get("tier", ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LessonError(_("{file}, line {line}: bad price row ({exc})").format(file=file, line=line, exc=exc), fix=_("fix that row of the price table")) from None
        if not price.as_of or not price.source:
            raise LessonError(_("{file}, line {line}: every price needs a date (as_of) and a source").format(file=file, line=line))
        prices.append(price)
    return tuple(prices)


def get_price(model: str, provider: str | None = None, tier: str | None = None) -> Price:
    """The price row for ``model`` (exact name, then the first row whose name starts with it).

    ``ft:BASE:org::id`` names resolve to their base model. ``provider`` picks between OpenAI and
    Azure rows of the same model (default: OpenAI first); ``tier="developer"`` picks Azure's Developer tier.
    """
    name = model.split(":")[1] if model.startswith("ft:") else model
    if name.startswith("gpt-35"):
        provider = provider or "azure"
    rows = [p for p in load_prices(tiers=(tier,) if tier else ("", "standard")) if provider is None or p.provider == provider]
    rows.sort(key=lambda p: (p.provider != "openai", p.provider))
    dated = re.compile(re.escape(name) + r"-[\d-]+$")  # "gpt-4o" -> "gpt-4o-2024-08-06", not "gpt-4o-mini-..."
    for match in (lambda p: p.model == name, lambda p: bool(dated.match(p.model)), lambda p: name.startswith(p.model)):
        for price in rows:
            if match(price):
                return price
    known = sorted({p.model for p in load_prices()})
    raise LessonError(_("no price for model '{model}'").format(model=model) + (_(" at provider '{provider}'").format(provider=provider) if provider else ""), fix=_("use one of: {names}").format(names=', '.join(known)))


def default_epochs(n_examples: int) -> int:
    """Epochs OpenAI picks when you do not say: 3, more for tiny sets, fewer for huge ones."""
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class TrainingCost:
    billed_tokens_per_epoch: int  # sum over examples of min(tokens, training context)
    epochs: int  # passes over the data
    billed_tokens: int  # billed_tokens_per_epoch x epochs
    usd: float  # billed_tokens x training price
    price: Price  # the row used (with its date)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "price"}, "model": self.price.model, "provider": self.price.provider, "prices_as_of": self.price.as_of, "source": self.price.source}

    def __str__(self) -> str:
        return (
            _("{tokens:,} tokens x {epochs} epochs = {billed:,} billed tokens -> ${usd:,.2f} at {price}").format(
                tokens=self.billed_tokens_per_epoch, epochs=self.epochs, billed=self.billed_tokens, usd=self.usd, price=self.price.label)
        )


def billed_tokens(example_tokens: list[int] | tuple[int, ...], price: Price) -> int:
    """Tokens billed per epoch: each example counts at most the training context (the rest is cut)."""
    return sum(min(price.training_context, n) for n in example_tokens)


def training_cost(tokens_per_epoch: int, epochs: int | None, price: Price, *, n_examples: int | None = None) -> TrainingCost:
    """Cost of a fine-tuning job. ``epochs=None`` applies OpenAI's default rule (needs ``n_examples``)."""
    if epochs is None:
        if n_examples is None:
            raise LessonError(_("epochs not given and the number of examples unknown"), fix=_("pass epochs or n_examples"))
        epochs = default_epochs(n_examples)
    if epochs < 1:
        raise LessonError(_("epochs must be at least 1 (got {epochs})").format(epochs=epochs))
    billed = tokens_per_epoch * epochs
    return TrainingCost(tokens_per_epoch, epochs, billed, billed * price.training_per_1m / 1e6, price)


def request_cost(prompt_tokens: float, completion_tokens: float, price: Price, *, fine_tuned: bool = False) -> float:
    """Dollars for one request."""
    if fine_tuned:
        return (prompt_tokens * price.ft_input_per_1m + completion_tokens * price.ft_output_per_1m) / 1e6
    return (prompt_tokens * price.input_per_1m + completion_tokens * price.output_per_1m) / 1e6


@dataclass(frozen=True)
class BreakEven:
    """Few-shot prompting vs a fine-tuned model, per month, at one request volume and in general."""

    requests_per_month: int  # the volume asked about
    few_shot_monthly: float  # dollars a month with k examples in every prompt
    fine_tuned_monthly: float  # dollars a month: amortised training + hosting + requests
    training_usd: float  # one-off training cost
    hosting_monthly: float  # hosting of the deployment, dollars a month
    saving_per_request: float  # few-shot cost per request minus fine-tuned cost per request
    break_even_requests: float | None  # monthly volume where both cost the same (None: never)
    cheaper: str  # "few-shot" or "fine-tuned" at this volume
    price: Price  # the row used (with its date)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "price"}, "model": self.price.model, "provider": self.price.provider, "prices_as_of": self.price.as_of}

    def __str__(self) -> str:
        where = (_("never (the fine-tuned model costs more per request)") if self.break_even_requests is None
                 else _("{n:,} requests a month").format(n=math.ceil(self.break_even_requests)))
        return _("At {requests:,} requests/month: few-shot ${few_shot:,.2f}, fine-tuned ${fine_tuned:,.2f} (training ${training:,.2f} "
                 "spread over the period, hosting ${hosting:,.2f}) -> {cheaper} is cheaper. Break-even: {where}. {price}.").format(
            requests=self.requests_per_month, few_shot=self.few_shot_monthly, fine_tuned=self.fine_tuned_monthly,
            training=self.training_usd, hosting=self.hosting_monthly, cheaper=_(self.cheaper), where=where, price=self.price.label)


def break_even(
    *,
    price: Price,
    requests_per_month: int,
    base_prompt_tokens: float,
    example_tokens: float,
    shots: int,
    completion_tokens: float,
    training_tokens: int,
    epochs: int = TARGET_EPOCHS,
    months: float = 1.0,
    hosted_hours_per_month: float = HOURS_PER_MONTH,
) -> BreakEven:
    """Compare sending ``shots`` examples with every request against a fine-tuned model.

    Few-shot: each prompt is ``base_prompt_tokens + shots * example_tokens`` at base prices.
    Fine-tuned: ``training_tokens x epochs`` once (spread over ``months``), hosting for
    ``hosted_hours_per_month`` (when the provider bills it), prompts of ``base_prompt_tokens``
    at fine-tuned prices.
    """
    if requests_per_month < 0 or shots < 0 or months <= 0:
        raise LessonError(_("requests, shots must be >= 0 and months > 0"))
    few_shot_req = request_cost(base_prompt_tokens + shots * example_tokens, completion_tokens, price)
    tuned_req = request_cost(base_prompt_tokens, completion_tokens, price, fine_tuned=True)
    training = training_tokens * epochs * price.training_per_1m / 1e6
    hosting = price.hosting_per_hour * hosted_hours_per_month
    fixed = training / months + hosting
    few_shot_monthly = requests_per_month * few_shot_req
    tuned_monthly = fixed + requests_per_month * tuned_req
    saving = few_shot_req - tuned_req
    crossover = fixed / saving if saving > 0 else None
    return BreakEven(
        requests_per_month=requests_per_month,
        few_shot_monthly=few_shot_monthly,
        fine_tuned_monthly=tuned_monthly,
        training_usd=training,
        hosting_monthly=hosting,
        saving_per_request=saving,
        break_even_requests=crossover,
        cheaper=N_("fine-tuned") if tuned_monthly < few_shot_monthly else N_("few-shot"),
        price=price,
    )


# --------------------------------------------------------------------------------------------
# The two limits of few-shot prompting (lesson, question 1)
# --------------------------------------------------------------------------------------------


def examples_that_fit(example_tokens: list[int] | tuple[int, ...], context_window: int, *, request_tokens: int, reply_tokens: int) -> int:
    """How many examples (taken in order) fit in one prompt next to the request and the reply.

    >>> examples_that_fit([100, 100, 100], 350, request_tokens=50, reply_tokens=50)
    2
    """
    room = context_window - request_tokens - reply_tokens
    count = 0
    for n in example_tokens:
        if n > room:
            break
        room -= n
        count += 1
    return count


@dataclass(frozen=True)
class FewShotRow:
    shots: int  # examples sent with every request
    prompt_tokens: float  # tokens per request
    fits: bool  # within the model's context window
    usd_per_1000: float  # cost of 1,000 requests at base-model prices

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def few_shot_table(price: Price, *, example_tokens: float, request_tokens: float, reply_tokens: float, shots: tuple[int, ...] = (0, 1, 5, 10, 50, 100, 500)) -> list[FewShotRow]:
    """Prompt size and cost per 1,000 requests as the number of examples in the prompt grows."""
    rows = []
    for k in shots:
        prompt = request_tokens + k * example_tokens
        rows.append(FewShotRow(k, prompt, prompt + reply_tokens <= price.context_window, 1000 * request_cost(prompt, reply_tokens, price)))
    return rows
