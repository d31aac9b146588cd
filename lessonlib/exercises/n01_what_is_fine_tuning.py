"""Notebook 01 · what is fine-tuning: its exercises and their checks."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..i18n import N_, _
from .core import Hint, close_to, exercise, train_path

_FEW_SHOT_SETUP = '''
from lessonlib import corpora, data, prompting, tokens

train = data.read_examples(corpora.split_path("recipes", "train"))
test = data.read_examples(corpora.split_path("recipes", "test"))
encoding = tokens.encoding_for("gpt-4o-mini")
query = test[0]
zero = tokens.count_messages(prompting.few_shot_messages(train, query, k=0), encoding)
shot_tokens = [tokens.count_messages(prompting.few_shot_messages([e], query, k=1), encoding) - zero for e in train]
per_shot = sum(shot_tokens) / len(shot_tokens)
'''


@lru_cache(maxsize=1)
def _tokens_per_shot() -> float:
    """Mean tokens one training example adds to gpt-4o-mini's few-shot prompt (as notebook 01 measures it)."""
    from .. import data, prompting, tokens

    train = data.read_examples(train_path())
    query = data.read_examples(train_path().with_name("test.jsonl"))[0]
    encoding = tokens.encoding_for("gpt-4o-mini")
    zero = tokens.count_messages(prompting.few_shot_messages(train, query, k=0), encoding)
    return sum(tokens.count_messages(prompting.few_shot_messages([e], query, k=1), encoding) - zero for e in train) / len(train)


@lru_cache(maxsize=1)
def _local_tokens_per_shot(k: int = 10) -> float:
    from .. import data, prompting, tokens

    train = data.read_examples(train_path())
    query = data.read_examples(train_path().with_name("test.jsonl"))[0]
    zero, with_k = tokens.count_local([prompting.few_shot_messages(train, query, k=0),
                                       prompting.few_shot_messages(train, query, k=k)], "smollm2")
    return (with_k - zero) / k


@exercise("01.1", 1, N_("The same count with another tokenizer"), answer="local_per_shot", setup=_FEW_SHOT_SETUP, solution='''
zero_local, ten_local = tokens.count_local([prompting.few_shot_messages(train, query, k=0),
                                            prompting.few_shot_messages(train, query, k=10)], "smollm2")
local_per_shot = (ten_local - zero_local) / 10
''', wrong='''
local_per_shot = per_shot
''')
def _check_local_per_shot(local_per_shot: Any) -> str:
    expected = _local_tokens_per_shot()
    if close_to(local_per_shot, expected, 10) and not close_to(local_per_shot, _tokens_per_shot(), 1):
        return (_("about {expected:.0f} tokens per example with SmolLM2's tokenizer, against {tokens_per_shot:.0f} "
                  "with gpt-4o-mini's: each model has its own tokenizer, so count with the model you will pay for.").format(expected=expected, tokens_per_shot=_tokens_per_shot()))
    if close_to(local_per_shot, _tokens_per_shot(), 1):
        raise Hint(_("that is gpt-4o-mini's count. Count the same prompts with the local model's tokenizer: "
                     '`tokens.count_local([messages_0, messages_10], "smollm2")` returns one count per conversation.'))
    raise Hint(_('count the prompt with 10 examples and with none using `tokens.count_local([...], "smollm2")`, and '
                 "divide the difference by 10."))


def _training_usd(model: str, epochs: int) -> float:
    from .. import costs, data

    price = costs.get_price(model)
    report = data.validate(train_path(), model=price.model)
    return costs.training_cost(costs.billed_tokens(list(report.tokens.per_example), price), epochs, price).usd


@exercise("01.2", 2, N_("Price a training job for another model"), answer="usd", setup=_FEW_SHOT_SETUP, solution='''
from lessonlib import costs

price = costs.get_price("gpt-4.1-mini")
report = data.validate(corpora.split_path("recipes", "train"), model=price.model)
usd = report.tokens.total * 3 * price.training_per_1m / 1e6    # tokens x epochs x dollars per token
''', wrong='''
from lessonlib import costs

price = costs.get_price("gpt-4.1-mini")
report = data.validate(corpora.split_path("recipes", "train"), model=price.model)
usd = report.tokens.total * price.training_per_1m / 1e6
''')
def _check_training_usd(usd: Any) -> str:
    expected = _training_usd("gpt-4.1-mini", 3)
    if close_to(usd, expected, expected * 0.02):
        return _("${expected:.4f}: training tokens x 3 epochs x the training price. Training is the cheap part here.").format(expected=expected)
    if close_to(usd, expected / 3, expected * 0.01):
        raise Hint(_("that is one epoch. The job reads the data 3 times: multiply by the number of epochs."))
    if close_to(usd * 1e6, expected, expected * 0.02):
        raise Hint(_("prices are per million tokens: divide by 1,000,000."))
    raise Hint(_("count the training file's tokens for gpt-4.1-mini (`data.validate(..., model=...)`), multiply by 3 "
                 "epochs and by `price.training_per_1m / 1e6`."))


@exercise("01.3", 3, N_("When does the tuned model pay for itself?"), answer="break_even", setup=_FEW_SHOT_SETUP, solution='''
from lessonlib import costs

price = costs.get_price("gpt-4o-mini")
prompt = tokens.count_messages(prompting.zero_shot_messages(query), encoding)
reply = 30
training = data.validate(corpora.split_path("recipes", "train"), model=price.model).tokens.total * 3 * price.training_per_1m / 1e6


def break_even(shots):
    few_shot_cost = costs.request_cost(prompt + shots * per_shot, reply, price)  # the examples, at base prices
    tuned_cost = costs.request_cost(prompt, reply, price, fine_tuned=True)       # the short prompt, at fine-tuned prices
    saving = few_shot_cost - tuned_cost
    return training / saving if saving > 0 else None                              # None: it never pays off
''', wrong='''
def break_even(shots):
    return 1000 * shots
''')
def _check_break_even(break_even: Any) -> str:
    from .. import costs, data, prompting, tokens

    if not callable(break_even):
        raise Hint(_("`break_even` should be a function of `shots`: `def break_even(shots): ...`."))
    price = costs.get_price("gpt-4o-mini")
    query = data.read_examples(train_path().with_name("test.jsonl"))[0]
    encoding = tokens.encoding_for("gpt-4o-mini")
    prompt = tokens.count_messages(prompting.zero_shot_messages(query), encoding)
    training = _training_usd("gpt-4o-mini", 3)
    for shots in (10, 5, 20, 2):
        saving = costs.request_cost(prompt + shots * _tokens_per_shot(), 30, price) - costs.request_cost(prompt, 30, price, fine_tuned=True)
        expected = training / saving if saving > 0 else None
        got = break_even(shots)
        if expected is None and got is not None:
            raise Hint(_("with {shots} examples a few-shot request is cheaper than a request to the tuned model (its tokens "
                         "cost more): the saving per request is not positive, so it never pays off. Return None then.").format(shots=shots))
        if expected is not None and not close_to(got, expected, expected * 0.03):
            raise Hint(_("break_even({shots}) gave {got!r}. Cost one request both ways with `costs.request_cost` (the "
                         "examples at base prices; the short prompt with fine_tuned=True), then divide the training cost by "
                         "the saving per request.").format(shots=shots, got=got))
    return (_("right for 2, 5, 10 and 20 examples. The fewer examples a prompt carries, the longer the tuned model "
              "takes to pay for itself, and below some number it never does: its tokens cost more than the base "
              "model's."))
