"""Exercises with self-checks: what each notebook asks the learner to write, and how it is checked.

Every notebook ends with a few exercises in three tiers: ★ *try it*, ★★ *change it*, ★★★ *make it
your own*. Each one here has its task in one line, a **check** (a pure function of what the learner
wrote: it says *right*, or gives a hint that names what to change), a worked **solution** the learner
reveals with :func:`show_solution`, and a wrong answer that the tests show gets a hint.

Scope and limits: checks look at values (a list of messages, a file, a config, a number); none
trains a model or calls a paid API, so a check answers in a second. Checks recompute the right
answer with the same ``lessonlib`` functions the notebook used: a number is right when it matches
what the library measures on this machine, not a constant written here.

In a notebook::

    from lessonlib.exercises import check, show_solution

    per_shot = ...             # your code
    check("01.1", per_shot)    # -> "Right: ..." or "Not yet: <a hint>"
    show_solution("01.1")      # when you are stuck

>>> check("04.1", 0.2).passed
True
>>> print(check("04.1", 40))
Not yet: 40 is the number of examples the run sees. An epoch is one pass over all 200 training examples: divide by 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import LessonError
from .i18n import N_, _, ngettext, translate_code


class Hint(Exception):
    """Raised by a check: the answer is not right yet, and the message says what to change."""


@dataclass(frozen=True)
class Verdict:
    """What a check says: passed or not, in one message (shown as Markdown in a notebook)."""

    passed: bool
    message: str

    def __str__(self) -> str:
        return (_("Right: ") if self.passed else _("Not yet: ")) + self.message

    def __bool__(self) -> bool:
        return self.passed

    def _repr_markdown_(self) -> str:
        return ("✅ " + _("**Right.** ") if self.passed else "💡 " + _("**Not yet.** ")) + self.message

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it is, its tier, its check, and a solution the tests run through the check."""

    id: str  # "NN.k": the notebook's number and the exercise's place in it
    stars: int  # 1 try it, 2 change it, 3 make it your own
    title: str  # what a learner sees above the task
    check: Callable[..., str]  # returns the success message, raises Hint for a wrong answer
    solution: str  # code that sets the names in ``answer`` (shown by show_solution, run by the tests)
    answer: tuple[str, ...]  # the names the check reads, in order
    setup: str = ""  # what the solution needs from the notebook (run before it by the tests)
    wrong: str = ""  # code for a typical wrong answer (the tests check that it gets a hint)
    context: dict[str, str] = field(default_factory=dict)  # extra keyword arguments of the check: name -> expression

    @property
    def tier(self) -> str:
        return "★" * self.stars


EXERCISES: dict[str, Exercise] = {}


def exercise(id: str, stars: int, title: str, *, solution: str, answer: tuple[str, ...] | str, setup: str = "",
             wrong: str = "", context: dict[str, str] | None = None) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register the decorated function as the check of exercise ``id``."""
    def register(fn: Callable[..., str]) -> Callable[..., str]:
        names = (answer,) if isinstance(answer, str) else answer
        EXERCISES[id] = Exercise(id, stars, title, fn, solution.strip("\n"), names, setup.strip("\n"), wrong.strip("\n"),
                                 context or {})
        return fn
    return register


def get(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        raise LessonError(_("there is no exercise '{id}'").format(id=exercise_id), fix=_("one of: {ids}").format(ids=", ".join(sorted(EXERCISES)))) from None


def check(exercise_id: str, *answer: Any, **context: Any) -> Verdict:
    """Check an answer; never raises for a wrong one (a hint comes back instead of a traceback)."""
    ex = get(exercise_id)
    if len(answer) != len(ex.answer):
        return Verdict(False, _("this check takes {n} value(s): {call}.").format(n=len(ex.answer), call=f"check({exercise_id!r}, {', '.join(ex.answer)})"))
    if any(value is Ellipsis or value is None for value in answer):
        return Verdict(False, _("replace the `...` with your code, run the cell, then run this check again (stuck? {call}).").format(
            call=f"`show_solution({exercise_id!r})`"))
    try:
        return Verdict(True, ex.check(*answer, **context))
    except Hint as hint:
        return Verdict(False, str(hint))
    except LessonError as exc:
        return Verdict(False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a learner's value can break a check in any way: say how, never a traceback
        return Verdict(False, _("checking your answer failed with {kind}: {problem}. Is it the kind of value the task asks for?").format(
            kind=type(exc).__name__, problem=exc))


def solution(exercise_id: str) -> str:
    """The worked solution's code, its comments and prose strings in the learner's language (the code itself is the same)."""
    return translate_code(get(exercise_id).solution)


def show_solution(exercise_id: str) -> Any:
    """The worked solution as a code block (in a notebook) or text; copy it into the cell above to run it."""
    ex = get(exercise_id)
    heading = _("Exercise {id} {tier}: {title} — one solution:").format(id=ex.id, tier=ex.tier, title=_(ex.title))
    text = f"{heading}\n\n```python\n{solution(exercise_id)}\n```"
    try:
        from IPython.display import Markdown

        return Markdown(text)
    except ImportError:
        return text


def listing(notebook: str) -> list[Exercise]:
    """The exercises of notebook ``notebook`` ("03"), in order."""
    return [ex for key, ex in sorted(EXERCISES.items()) if key.split(".")[0] == notebook]


def _close(value: Any, expected: float, tolerance: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value - expected) <= tolerance


def _train_path() -> Path:
    from . import corpora

    return corpora.split_path("recipes", "train")


# ------------------------------------------------------------------------------------------------
# 00 · start here
# ------------------------------------------------------------------------------------------------


def _message_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return _("`messages` must be a list of messages, each a dict like {'role': 'user', 'content': '...'}.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return _("message {i} is a {kind}; each message is a dict with 'role' and 'content'.").format(i=i, kind=type(message).__name__)
        if set(message) - {"role", "content"}:
            return _("message {i} has the key(s) {keys}: use only 'role' and 'content'.").format(i=i, keys=sorted(set(message) - {'role', 'content'}))
        if "role" not in message or "content" not in message:
            return _("message {i} needs both 'role' and 'content'.").format(i=i)
        if message["role"] not in ("system", "user", "assistant"):
            return _("message {i} has the role {role!r}: use 'system', 'user' or 'assistant' (lower case).").format(i=i, role=message['role'])
        if not isinstance(message["content"], str) or not message["content"].strip():
            return _("message {i}'s content must be some text.").format(i=i)
    return None


@exercise("00.1", 1, N_("Write a conversation"), answer="messages", solution='''
messages = [
    {"role": "system", "content": "You are a helpful cooking assistant."},
    {"role": "user", "content": "Which ingredients do I need for pancakes?"},
]
''', wrong='messages = [{"role": "user", "text": "Which ingredients do I need for pancakes?"}]')
def _check_conversation(messages: Any) -> str:
    problem = _message_problem(messages)
    if problem:
        raise Hint(problem)
    if messages[0]["role"] != "system":
        raise Hint(_("start with a 'system' message: it tells the model who it is and how to answer."))
    if messages[-1]["role"] != "user":
        raise Hint(_("end with the 'user' message: the model replies to the last message."))
    return _("this is the format every chat model and every fine-tuning file of the lesson uses.")


@exercise("00.2", 2, N_("Turn it into a training example"), answer="example", setup='''
messages = [
    {"role": "system", "content": "You are a helpful cooking assistant."},
    {"role": "user", "content": "Which ingredients do I need for pancakes?"},
]
''', solution='''
example = {"messages": messages + [
    {"role": "assistant", "content": "Flour, eggs, milk, a pinch of salt and butter for the pan."},
]}
''', wrong='example = {"messages": messages}')
def _check_training_example(example: Any) -> str:
    from . import data

    if not isinstance(example, dict) or "messages" not in example:
        raise Hint(_("a training example is a dict with one key, 'messages': {'messages': [...]}."))
    problem = _message_problem(example["messages"])
    if problem:
        raise Hint(problem)
    findings = data.check_example(example)
    if findings:
        raise Hint(_("the data doctor says: {message}. Add the reply you want the model to learn.").format(message=findings[0].message))
    if example["messages"][-1]["role"] != "assistant":
        raise Hint(_("end with the 'assistant' message: it is the answer the model learns to write."))
    return _("one line of a fine-tuning file: the conversation and the reply to learn. Notebook 03 checks whole "
             "files of them.")


# ------------------------------------------------------------------------------------------------
# 01 · what is fine-tuning
# ------------------------------------------------------------------------------------------------

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
    from . import data, prompting, tokens

    train = data.read_examples(_train_path())
    query = data.read_examples(_train_path().with_name("test.jsonl"))[0]
    encoding = tokens.encoding_for("gpt-4o-mini")
    zero = tokens.count_messages(prompting.few_shot_messages(train, query, k=0), encoding)
    return sum(tokens.count_messages(prompting.few_shot_messages([e], query, k=1), encoding) - zero for e in train) / len(train)


@lru_cache(maxsize=1)
def _local_tokens_per_shot(k: int = 10) -> float:
    from . import data, prompting, tokens

    train = data.read_examples(_train_path())
    query = data.read_examples(_train_path().with_name("test.jsonl"))[0]
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
    if _close(local_per_shot, expected, 10) and not _close(local_per_shot, _tokens_per_shot(), 1):
        return (_("about {expected:.0f} tokens per example with SmolLM2's tokenizer, against {tokens_per_shot:.0f} "
                  "with gpt-4o-mini's: each model has its own tokenizer, so count with the model you will pay for.").format(expected=expected, tokens_per_shot=_tokens_per_shot()))
    if _close(local_per_shot, _tokens_per_shot(), 1):
        raise Hint(_("that is gpt-4o-mini's count. Count the same prompts with the local model's tokenizer: "
                     '`tokens.count_local([messages_0, messages_10], "smollm2")` returns one count per conversation.'))
    raise Hint(_('count the prompt with 10 examples and with none using `tokens.count_local([...], "smollm2")`, and '
                 "divide the difference by 10."))


def _training_usd(model: str, epochs: int) -> float:
    from . import costs, data

    price = costs.get_price(model)
    report = data.validate(_train_path(), model=price.model)
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
    if _close(usd, expected, expected * 0.02):
        return _("${expected:.4f}: training tokens x 3 epochs x the training price. Training is the cheap part here.").format(expected=expected)
    if _close(usd, expected / 3, expected * 0.01):
        raise Hint(_("that is one epoch. The job reads the data 3 times: multiply by the number of epochs."))
    if _close(usd * 1e6, expected, expected * 0.02):
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
    from . import costs, data, prompting, tokens

    if not callable(break_even):
        raise Hint(_("`break_even` should be a function of `shots`: `def break_even(shots): ...`."))
    price = costs.get_price("gpt-4o-mini")
    query = data.read_examples(_train_path().with_name("test.jsonl"))[0]
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
        if expected is not None and not _close(got, expected, expected * 0.03):
            raise Hint(_("break_even({shots}) gave {got!r}. Cost one request both ways with `costs.request_cost` (the "
                         "examples at base prices; the short prompt with fine_tuned=True), then divide the training cost by "
                         "the saving per request.").format(shots=shots, got=got))
    return (_("right for 2, 5, 10 and 20 examples. The fewer examples a prompt carries, the longer the tuned model "
              "takes to pay for itself, and below some number it never does: its tokens cost more than the base "
              "model's."))


# ------------------------------------------------------------------------------------------------
# 02 · when and why
# ------------------------------------------------------------------------------------------------


@exercise("02.1", 1, N_("Fill the checklist for a scenario"), answer="answers", solution='''
from lessonlib.decide import Answers

answers = Answers(tried_prompting=True, tried_retrieval=True, examples=400,
                  monthly_budget_usd=600 / 12,       # the checklist counts per month
                  fine_tune_monthly_usd=20, target=0.8,
                  stronger_model_untried=False)      # they use the strongest model they can get
''', wrong='''
from lessonlib.decide import Answers

answers = Answers(tried_prompting=True, tried_retrieval=True, examples=400, monthly_budget_usd=600,
                  fine_tune_monthly_usd=20, target=0.8)
''')
def _check_scenario(answers: Any) -> str:
    from .decide import Answers, decide

    if not isinstance(answers, Answers):
        raise Hint(_("build the answers with `Answers(...)`, from lessonlib.decide."))
    wanted = {"tried_prompting": True, "tried_retrieval": True, "examples": 400, "fine_tune_monthly_usd": 20, "target": 0.8,
              "stronger_model_untried": False}
    for name, value in wanted.items():
        if getattr(answers, name) != value:
            raise Hint(_("read the scenario again for `{name}` (you have {yours!r}).").format(name=name, yours=getattr(answers, name)))
    if not _close(answers.monthly_budget_usd, 50, 0.01):
        raise Hint(_("`monthly_budget_usd` is a budget per month (you have {monthly_budget_usd!r}); the scenario gives "
                     "one per year.").format(monthly_budget_usd=answers.monthly_budget_usd))
    decision = decide(answers, {"few-shot": 0.55, "rag": 0.60})
    return _("with those baselines the checklist says: {recommendation}. Notebook 05 measures them for real.").format(recommendation=decision.recommendation)


_PROMPT_SCORES_02 = [0.8, 0.5, 0.7, 0.9, 0.4, 0.6, 0.7, 0.5, 0.8, 0.6, 0.3, 0.7]
_TUNED_SCORES_02 = [0.9, 0.6, 0.7, 0.9, 0.6, 0.7, 0.8, 0.5, 0.9, 0.6, 0.5, 0.7]
_MIN_GAIN_02 = 0.05  # the smallest F1 gain that pays for fine-tuning in exercise 02.2


@exercise("02.2", 2, N_("A gain worth paying for, or noise?"), answer="worth_it", setup=f'''
from lessonlib import evaluate

prompt_scores = {_PROMPT_SCORES_02}
tuned_scores = {_TUNED_SCORES_02}
min_gain = {_MIN_GAIN_02}   # the smallest F1 gain that pays for fine-tuning here: a business choice, not a statistic
''', solution='''
gains = [t - p for t, p in zip(tuned_scores, prompt_scores)]
low, high = evaluate.bootstrap_interval(gains)
print(f"mean gain {sum(gains) / len(gains):+.3f}, 95% interval {low:+.3f} to {high:+.3f}")
worth_it = low >= min_gain   # even the low end of what the gain could be must clear the threshold
''', wrong='''
worth_it = sum(tuned_scores) / len(tuned_scores) - sum(prompt_scores) / len(prompt_scores) >= min_gain
''')
def _check_worth_it(worth_it: Any) -> str:
    from .evaluate import bootstrap_interval

    low, high = bootstrap_interval([t - p for t, p in zip(_TUNED_SCORES_02, _PROMPT_SCORES_02)])
    expected = low >= _MIN_GAIN_02
    if not isinstance(worth_it, bool):
        raise Hint(_("answer True or False: is the gain worth fine-tuning for?"))
    if worth_it != expected:
        raise Hint((_("the mean gain is one draw of 12 examples; the 95% interval says how low it could really be. Compare "
                      "the interval's low end, not the mean, with `min_gain`.") if worth_it else _("the interval's low end is what the gain is at least: compare it with `min_gain`.")))
    return ((_("the gain is {low:+.3f} to {high:+.3f} (95%): its mean clears {min_gain}, its low end does not, "
               "so on 12 examples it may not pay for itself. More test examples narrow the interval.").format(low=low, high=high, min_gain=_MIN_GAIN_02) if not expected else _("even its low end, {low:+.3f}, clears {min_gain}: worth paying for.").format(low=low, min_gain=_MIN_GAIN_02)))


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return _("`make_prompt` returned {messages!r}: return the list of messages for the model.").format(messages=messages)
    problem = _message_problem(messages)
    if problem:
        return problem
    if messages[-1]["role"] != "user":
        return _("the prompt must end with the recipe to read, as a 'user' message.")
    return None


@exercise("02.3", 3, N_("A few-shot prompt that beats zero-shot"), answer="make_prompt", solution='''
def make_prompt(train, query):
    """The query's system message, then three solved examples as earlier turns, then the query's recipe."""
    system, recipe = query["messages"][0], query["messages"][1]
    shots = []
    for example in train[:3]:
        shots += example["messages"][1:3]      # its recipe (user) and its answer (assistant)
    return [system] + shots + [recipe]
''', wrong='''
def make_prompt(train, query):
    return [{"role": "user", "content": "List the ingredients: " + query["messages"][1]["content"]}]
''')
def _check_few_shot_prompt(make_prompt: Any) -> str:
    from . import corpora, data, models, prompting
    from .evaluate import ingredient_scores

    if "few_shot_messages" in getattr(getattr(make_prompt, "__code__", None), "co_names", ()):
        raise Hint(_("write the prompt yourself, without `prompting.few_shot_messages`: the system message, then a few "
                     "solved examples from `train` as earlier turns, then the new recipe."))
    train = data.read_examples(corpora.split_path("recipes", "train"))
    test = data.read_examples(corpora.split_path("recipes", "test"))[:6]
    prompts = []
    for query in test:
        messages = make_prompt(train, query)
        problem = _messages_problem(messages)
        if problem:
            raise Hint(problem)
        if any(m["content"] == query["messages"][-1]["content"] for m in messages):
            raise Hint(_("the prompt contains the expected answer itself: use solved examples from `train`, not the query's "
                         "answer."))
        prompts.append(messages)
    zero = [prompting.zero_shot_messages(q) for q in test]
    answers = models.generate_many(prompts + zero, max_new_tokens=60)
    gold = [q["messages"][-1]["content"] for q in test]
    yours = sum(ingredient_scores(a, g)["f1"] for a, g in zip(answers[:6], gold)) / 6
    baseline = sum(ingredient_scores(a, g)["f1"] for a, g in zip(answers[6:], gold)) / 6
    if yours < baseline + 0.05:
        raise Hint(_("on 6 recipes your prompts score F1 {yours:.2f}, zero-shot {baseline:.2f}. Show the model solved "
                     "examples first: each one's recipe as a 'user' turn and its answer as an 'assistant' turn, before "
                     "the new recipe.").format(yours=yours, baseline=baseline))
    return (_("F1 {yours:.2f} against zero-shot's {baseline:.2f} on 6 recipes: the examples taught the format. "
              "Each one is paid for on every request (notebook 01).").format(yours=yours, baseline=baseline))


# ------------------------------------------------------------------------------------------------
# 03 · prepare your data
# ------------------------------------------------------------------------------------------------


@exercise("03.1", 1, N_("Fix the second broken file"), answer="path", setup='''
import json
from pathlib import Path

from lessonlib import corpora, data

broken2 = corpora.split_path("examples", "broken-recipes-2")
''', solution='''
fixed = []
for text in broken2.read_text(encoding="utf-8").splitlines():
    row = json.loads(text)
    row.pop("id", None)                                        # unrecognized_top_level_key
    for message in row["messages"]:
        if "text" in message:                                  # message_missing_key / message_unrecognized_key
            message["content"] = message.pop("text")
        message["role"] = message["role"].lower()              # unrecognized_role ('User', 'Assistant')
        if isinstance(message["content"], list):               # content_wrong_type
            message["content"] = json.dumps(message["content"], ensure_ascii=False)
    has_reply = any(m["role"] == "assistant" for m in row["messages"])
    if has_reply and all(m["content"].strip() for m in row["messages"]):
        fixed.append(row)                                      # nothing to learn from the others: dropped
path = Path("runs/fixed-recipes-2.jsonl")
path.parent.mkdir(exist_ok=True)
path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\\n" for row in fixed), encoding="utf-8")
''', wrong='''
path = broken2
''')
def _check_fixed_file(path: Any) -> str:
    from . import data

    report = data.validate(Path(path))
    if report.error_count:
        first = report.errors[0]
        raise Hint(_("the data doctor still finds {error_count} error(s); the first: {first}. Fix it in your loop and "
                     "write the file again.").format(error_count=report.error_count, first=first))
    if report.valid_examples < 8:
        raise Hint(_("the file is clean but keeps {valid_examples} of 10 examples. Only two have nothing to learn from "
                     "(no reply, an empty question): repair the others instead of dropping them.").format(valid_examples=report.valid_examples))
    if report.valid_examples > 8:
        raise Hint(_("two examples cannot be repaired (one has no reply, one an empty question): drop them."))
    return _("8 clean examples out of 10: every fixable line fixed, the two with nothing to learn dropped.")


@exercise("03.2", 2, N_("Write your own check"), answer="reply_is_json_list", solution='''
import json

def reply_is_json_list(example):
    """True when the last message is the assistant's and its content is a JSON list of strings."""
    last = example["messages"][-1]
    if last["role"] != "assistant":
        return False
    try:
        value = json.loads(last["content"])
    except json.JSONDecodeError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
''', wrong='''
def reply_is_json_list(example):
    return example["messages"][-1]["content"].startswith("[")
''')
def _check_reply_check(reply_is_json_list: Any) -> str:
    def ex(*messages: tuple[str, str]) -> dict[str, Any]:
        return {"messages": [{"role": role, "content": content} for role, content in messages]}

    cases = [
        (ex(("user", "r"), ("assistant", '["flour", "egg"]')), True, "a JSON list of strings"),
        (ex(("user", "r"), ("assistant", "flour, egg")), False, "plain text"),
        (ex(("user", "r"), ("assistant", '["flour", "egg"')), False, "a list cut off before its ']'"),
        (ex(("user", "r"), ("assistant", '[1, 2]')), False, "a list of numbers"),
        (ex(("user", "r"), ("assistant", '{"a": 1}')), False, "a JSON object"),
        (ex(("assistant", '["flour"]'), ("user", "thanks")), False, "a conversation that ends with the user"),
    ]
    for example, expected, what in cases:
        result = reply_is_json_list(example)
        if not isinstance(result, bool):
            raise Hint(_("your function returned {result!r}: make it `return True` or `return False`.").format(result=result))
        if result != expected:
            raise Hint(_("for {what} it should return {expected}. Parse the reply with `json.loads` (in a try) instead of "
                         "looking at its first character.").format(what=what, expected=expected))
    return _("it passes six cases, from a good reply to a list cut off mid-way. "
             "`lessonlib.train.compare.is_json_list` does the same.")


# ------------------------------------------------------------------------------------------------
# 04 · fine-tune locally
# ------------------------------------------------------------------------------------------------


@exercise("04.1", 1, N_("How much of the data does a run see?"), answer="epochs", solution='''
max_steps, batch_size, examples = 20, 2, 200
epochs = max_steps * batch_size / examples
''', wrong='epochs = 20 * 2')
def _check_epochs(epochs: Any) -> str:
    if _close(epochs, 0.2, 0.005):
        return _("0.2 of an epoch: 40 of the 200 examples. Enough to learn a format, far from learning the task.")
    if _close(epochs, 40, 0):
        raise Hint(_("40 is the number of examples the run sees. An epoch is one pass over all 200 training examples: "
                     "divide by 200."))
    raise Hint(_("steps x examples per step gives the examples seen; divide by the 200 training examples."))


@exercise("04.2", 2, N_("A bigger adapter"), answer="bigger_lora", solution='''
from peft import LoraConfig

bigger_lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
''', wrong='''
from peft import LoraConfig

bigger_lora = LoraConfig(r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
''')
def _check_lora(lora: Any) -> str:
    for name in ("r", "lora_alpha", "target_modules", "task_type"):
        if not hasattr(lora, name):
            raise Hint(_("build it with peft's `LoraConfig(...)`, as in section 3."))
    if lora.r != 16:
        raise Hint(_("the rank `r` should be 16 (it is {r}).").format(r=lora.r))
    if lora.lora_alpha != 2 * lora.r:
        raise Hint(_("keep `lora_alpha` at twice the rank: it is {lora_alpha} for a rank of {r}.").format(lora_alpha=lora.lora_alpha, r=lora.r))
    if lora.target_modules != "all-linear" and set(lora.target_modules or ()) != {"q_proj", "k_proj", "v_proj", "o_proj",
                                                                                "gate_proj", "up_proj", "down_proj"}:
        raise Hint(_('put an adapter on every linear layer: `target_modules="all-linear"`.'))
    if str(getattr(lora.task_type, "value", lora.task_type)) != "CAUSAL_LM":
        raise Hint(_('this is a causal language model: `task_type="CAUSAL_LM"`.'))
    return _("rank 16 on every linear layer: about 8 times the trainable weights of section 3's adapter, and "
             "about twice the compute per step.")


@exercise("04.3", 2, N_("One whole epoch, with checkpoints"), answer="epoch_args", solution='''
from trl import SFTConfig

epoch_args = SFTConfig(
    output_dir="runs/04-one-epoch",
    num_train_epochs=1,                 # one pass over the 200 examples
    max_steps=-1,                       # let the epochs decide (a positive max_steps would win)
    per_device_train_batch_size=4,      # 50 steps of 4 examples
    save_strategy="steps",
    save_steps=10,                      # a checkpoint every 10 steps
    save_total_limit=2,                 # keep the last two
    learning_rate=2e-3,
    assistant_only_loss=True,
    use_cpu=True,
    report_to="none",
)
''', wrong='''
from trl import SFTConfig

epoch_args = SFTConfig(output_dir="runs/04-one-epoch", max_steps=12, per_device_train_batch_size=4, report_to="none", use_cpu=True)
''')
def _check_sft_config(args: Any) -> str:
    if not hasattr(args, "per_device_train_batch_size"):
        raise Hint(_("build it with TRL's `SFTConfig(...)`, as in section 4."))
    if args.per_device_train_batch_size != 4:
        raise Hint(_("use 4 examples per step: `per_device_train_batch_size=4`."))
    if args.max_steps > 0 and args.max_steps * 4 != 200:
        raise Hint(_("max_steps={max_steps} wins over the epochs: leave it at -1 and set `num_train_epochs=1` (or make "
                     "the steps cover exactly the 200 examples).").format(max_steps=args.max_steps))
    if args.max_steps <= 0 and args.num_train_epochs != 1:
        raise Hint(_("one pass over the data: `num_train_epochs=1`."))
    if str(getattr(args.save_strategy, "value", args.save_strategy)) != "steps" or args.save_steps != 10:
        raise Hint(_('save every 10 steps: `save_strategy="steps"` and `save_steps=10`.'))
    if args.save_total_limit != 2:
        raise Hint(_("keep only the last two checkpoints: `save_total_limit=2`."))
    if not args.assistant_only_loss:
        raise Hint(_("learn the replies only, as in section 4: `assistant_only_loss=True`."))
    return _("50 steps of 4 examples, a checkpoint every 10 and the last two kept. "
             "`trainer.train(resume_from_checkpoint=True)` goes on from the latest.")


# ------------------------------------------------------------------------------------------------
# 05 · evaluate
# ------------------------------------------------------------------------------------------------

_FEW_SHOT_F1 = [0.67, 0.5, 0.8, 0.75, 0.4, 0.86, 0.6, 0.5, 0.67, 0.57, 0.33, 0.8, 0.75, 0.6, 0.5, 0.67]
_TUNED_F1 = [0.87, 0.4, 0.9, 0.75, 0.25, 0.96, 0.65, 0.4, 0.82, 0.57, 0.53, 0.6, 0.85, 0.6, 0.45, 0.77]
_SCORES_SETUP = f"""
from lessonlib import evaluate

few_shot_f1 = {_FEW_SHOT_F1}
tuned_f1 = {_TUNED_F1}
"""


@exercise("05.1", 1, N_("A gain, or noise?"), answer="verdict", setup=_SCORES_SETUP, solution='''
print(evaluate.compare(few_shot_f1, tuned_f1))
low, high = evaluate.bootstrap_interval([t - f for t, f in zip(tuned_f1, few_shot_f1)])
verdict = "noise" if low <= 0 <= high else "gain"
''', wrong='verdict = "gain" if sum(tuned_f1) > sum(few_shot_f1) else "noise"')
def _check_gain_or_noise(verdict: Any) -> str:
    from .evaluate import bootstrap_interval

    low, high = bootstrap_interval([t - f for t, f in zip(_TUNED_F1, _FEW_SHOT_F1)])  # the notebook's 16 pairs
    expected = "noise" if low <= 0 <= high else "gain"
    if verdict not in ("gain", "noise"):
        raise Hint(_('answer with the text "gain" or "noise".'))
    if verdict != expected:
        raise Hint(_("a higher mean on 16 recipes can be luck. Compute the 95% interval of the paired differences (tuned "
                     "minus few-shot, recipe by recipe) with `evaluate.bootstrap_interval`: does it include 0?"))
    return ((_("the interval is {low:+.3f} to {high:+.3f}: it excludes 0, so on these 16 recipes the gain is real, "
               "if small.").format(low=low, high=high) if expected == "gain" else _("the interval {low:+.3f} to {high:+.3f} includes 0: on 16 recipes this is noise.").format(low=low, high=high)))


@exercise("05.2", 2, N_("Scores per language"), answer="per_language", setup='''
from lessonlib import corpora, data, evaluate

test = data.read_examples(corpora.split_path("recipes", "test"))[:12]
samples = [{"expected": e["messages"][-1]["content"], "answer": e["messages"][-1]["content"][: 20 + 9 * i]}
           for i, e in enumerate(test)]     # in the notebook: the tuned model's answers, `tuned.samples`
''', solution='''
from lessonlib.corpora import recipes

by_language = {}
for sample in samples:
    language = recipes.language_of({"messages": [{"role": "assistant", "content": sample["expected"]}]})
    by_language.setdefault(language, []).append(evaluate.ingredient_scores(sample["answer"], sample["expected"])["f1"])
per_language = {language: sum(f1s) / len(f1s) for language, f1s in by_language.items()}
''', wrong='''
per_language = {"en": sum(evaluate.ingredient_scores(s["answer"], s["expected"])["f1"] for s in samples) / len(samples)}
''', context={"samples": "samples"})
def _check_per_language(per_language: Any, samples: list[dict[str, str]] | None = None) -> str:
    from .corpora import recipes
    from .evaluate import ingredient_scores

    if not samples:
        raise Hint(_("pass the answers you scored: check('05.2', per_language, samples=tuned.samples)."))
    scores: dict[str, list[float]] = {}
    for sample in samples:
        language = recipes.language_of({"messages": [{"role": "assistant", "content": sample["expected"]}]})
        scores.setdefault(language, []).append(ingredient_scores(sample["answer"], sample["expected"])["f1"])
    expected = {language: sum(v) / len(v) for language, v in scores.items()}
    if not isinstance(per_language, dict) or set(per_language) != set(expected):
        raise Hint(_("a dict with one mean F1 per language: the keys should be {keys} (`recipes.language_of(example)` "
                     "tells an example's language from its answer).").format(keys=sorted(expected)))
    for language, value in expected.items():
        if not _close(per_language[language], value, 1e-6):
            raise Hint(_("the mean F1 for {language!r} should be {value:.3f}: average `evaluate.ingredient_scores(answer, "
                         "expected)['f1']` over that language's answers only.").format(language=language, value=value))
    counts = ", ".join(ngettext("{language}: {n} answer", "{language}: {n} answers", len(v)).format(language=language, n=len(v))
                       for language, v in sorted(scores.items()))
    return (_('right ({counts}). The evaluation\'s table prints the same for every strategy ("f1 by language"). '
              "With this few answers per language, a difference between languages is mostly noise.").format(counts=counts))


#: The held-out F1 that exercise 05.3 asks an adapter of the learner's own to reach (notebook 05's
#: 20-step, rank-8 adapter scores about 0.5; 30 steps of rank 16 on every linear layer about 0.7).
TARGET_F1 = 0.75  # on the validation split; notebook 05's 20-step adapter stays below it, the solution well above


@exercise("05.3", 3, N_("Settings that reach an F1 of 0.75"), answer="report", setup='''
from lessonlib import evaluate
from lessonlib.train import RunConfig, run_in_subprocess
''', solution='''
mine = RunConfig(
    output_dir="runs/05-mine",
    max_steps=30,                        # 60 recipes seen instead of 40
    lora_r=16, lora_alpha=32,            # a larger adapter (alpha stays twice the rank)
    lora_target_modules=["all-linear"],  # on every linear layer, not only the query and value projections
    valid_file=None,
    overwrite=True,
)
result = run_in_subprocess(mine)
report = evaluate.evaluate("recipes", ["fine-tuned"], adapter=result.output_dir, split="valid", limit=16)
print(report.table())
''', wrong='''
report = evaluate.evaluate("recipes", ["zero-shot"], limit=2, max_new_tokens=8)   # the base model, on 2 recipes
''')
def _check_reach_f1(report: Any) -> str:
    from .evaluate import EvalReport

    if not isinstance(report, EvalReport):
        raise Hint(_("pass the report that `evaluate.evaluate(...)` returned."))
    tuned = next((r for r in report.results if r.strategy == "fine-tuned"), None)
    if report.task != "recipes" or tuned is None or tuned.skipped or not report.adapter:
        raise Hint(_('score your adapter, with the fine-tuned strategy: evaluate.evaluate("recipes", ["fine-tuned"], '
                     'adapter=result.output_dir, split="valid", limit=16).'))
    if report.split != "valid":
        raise Hint(_('choose settings on the validation split (split="valid"): a test score used to choose settings is no '
                     "longer a fair estimate of how they do on new recipes. The test split is scored once, at the end."))
    if tuned.n < 16:
        raise Hint(_("score 16 validation recipes (limit=16): on {n}, a high score can be luck.").format(n=tuned.n))
    try:
        settings = json.loads((Path(report.adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise Hint(_("no adapter in {adapter}: train it first (run_in_subprocess(config)), then score result.output_dir.").format(adapter=report.adapter)) from None
    targets = settings.get("target_modules") or []
    layers = targets if isinstance(targets, str) else ", ".join(sorted(targets))
    f1 = tuned.metrics["f1"]
    if f1 < TARGET_F1:
        raise Hint(_("your adapter (rank {rank} on {layers}) scored {f1:.2f}; the goal is {target}. More steps show the "
                     'model more recipes (2 a step); a larger rank, or LoRA on every linear layer ("all-linear"), gives '
                     "it more to change; short LoRA runs like a learning rate of 1e-3 to 3e-3.").format(rank=settings.get('r'), layers=layers, f1=f1, target=TARGET_F1))
    low, high = tuned.interval()
    return (_("F1 {f1:.2f} on 16 validation recipes (95% interval {low:.2f} to {high:.2f}), with rank {rank} on "
              '{layers}. Now, once, score the test split with these settings (`evaluate.evaluate("recipes", '
              '["fine-tuned"], adapter=..., limit=16)`): that is the number to report. Keep a note of what each '
              "change did.").format(f1=f1, low=low, high=high, rank=settings.get('r'), layers=layers))


# ------------------------------------------------------------------------------------------------
# 06 · OpenAI and Azure OpenAI
# ------------------------------------------------------------------------------------------------


@exercise("06.1", 2, N_("Your own job, then cancel it"), answer="job_id", setup='''
from lessonlib import corpora, service

client = service.client()    # the local service speaks the OpenAI API
''', solution='''
with open(corpora.split_path("recipes", "valid"), "rb") as f:
    uploaded = client.files.create(file=f, purpose="fine-tune")
job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini-2024-07-18", suffix="mine",
                                     method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})
client.fine_tuning.jobs.cancel(job.id)
job_id = job.id
''', wrong='''
with open(corpora.split_path("recipes", "valid"), "rb") as f:
    uploaded = client.files.create(file=f, purpose="fine-tune")
job_id = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini-2024-07-18").id
client.fine_tuning.jobs.cancel(job_id)
''')
def _check_own_job(job_id: Any) -> str:
    from . import service

    client = service.client()
    job = client.fine_tuning.jobs.retrieve(str(job_id))
    if job.suffix != "mine":
        raise Hint(_('name your model: `suffix="mine"` in `fine_tuning.jobs.create`.'))
    method = job.method.model_dump() if job.method is not None else {}
    epochs = ((method.get("supervised") or {}).get("hyperparameters") or {}).get("n_epochs")
    if epochs != 1:
        raise Hint(_("set one epoch through `method`: {'type': 'supervised', 'supervised': {'hyperparameters': "
                     "{'n_epochs': 1}}}."))
    if job.status not in ("cancelled", "succeeded", "failed"):
        raise Hint(_("the job is still {status}: cancel it with `client.fine_tuning.jobs.cancel(job.id)`.").format(status=job.status))
    return _("job {id}: suffix 'mine', one epoch, {status}. On OpenAI the same calls spend money: check the cost "
             "first.").format(id=job.id, status=job.status)


@exercise("06.2", 1, N_("Will it fit the budget?"), answer="fits", setup='''
from lessonlib import corpora
from lessonlib.cloud import jobs
''', solution='''
plan = jobs.plan_job(corpora.split_path("recipes", "train"), model="gpt-4.1-mini", epochs=4)
print(f"${plan.estimated_usd:.2f} for {plan.epochs} epochs of {plan.training_tokens:,} tokens")
fits = plan.estimated_usd <= 0.25
''', wrong='fits = True')
def _check_budget(fits: Any) -> str:
    from .cloud import jobs

    plan = jobs.plan_job(_train_path(), model="gpt-4.1-mini", epochs=4)
    expected = plan.estimated_usd <= 0.25
    if not isinstance(fits, bool):
        raise Hint(_("answer True or False: does the job's estimated cost fit a $0.25 budget?"))
    if fits != expected:
        raise Hint(_('price it first: `jobs.plan_job(..., model="gpt-4.1-mini", epochs=4).estimated_usd`, and compare '
                     "with $0.25."))
    fit = (_("${usd:.2f} for 4 epochs: within a $0.25 budget.") if expected else
           _("${usd:.2f} for 4 epochs: over a $0.25 budget.")).format(usd=plan.estimated_usd)
    return fit + " " + _("`lessonlib openai submit --budget` refuses a job over it.")


# ------------------------------------------------------------------------------------------------
# 07 · AutoTrain
# ------------------------------------------------------------------------------------------------


@exercise("07.1", 1, N_("Change the AutoTrain configuration"), answer="config", setup='''
from lessonlib import corpora
from lessonlib.cloud import autotrain

config = autotrain.build_config("runs/autotrain/recipes-data")
''', solution='''
config["params"]["epochs"] = 3
config["params"]["lr"] = 1e-4
config["params"]["lora_r"] = 16
config["params"]["lora_alpha"] = 32
''', wrong='''
config["params"]["epochs"] = 3
config["params"]["learning_rate"] = 1e-4
''')
def _check_autotrain(config: Any) -> str:
    from .cloud import autotrain

    problems = autotrain.validate_config(config)
    if problems:
        raise Hint(_("AutoTrain would refuse it: {problem}").format(problem=problems[0]))
    params = config["params"]
    unknown = set(params) - set(autotrain.build_config("x")["params"])
    if unknown:
        raise Hint(_("AutoTrain does not know {names}: use its own names, the keys of `config['params']` (the YAML above "
                     "lists them).").format(names=sorted(unknown)))
    for name, value in (("epochs", 3), ("lr", 1e-4), ("lora_r", 16), ("lora_alpha", 32)):
        if params.get(name) != value:
            raise Hint(_("set `params['{name}']` to {value} (it is {yours!r}).").format(name=name, value=value, yours=params.get(name)))
    return _("3 epochs at 1e-4 with a rank-16 adapter: `autotrain --config` would train it, and notebook 04's "
             "RunConfig can say the same.")


_AUTOTRAIN_TO_TRL = {  # AutoTrain's llm-sft parameter -> the TRL / PEFT argument it becomes
    "epochs": "num_train_epochs", "lr": "learning_rate", "batch_size": "per_device_train_batch_size",
    "block_size": "max_length", "lora_r": "r", "lora_alpha": "lora_alpha",
}


@exercise("07.2", 2, N_("From AutoTrain's names to TRL's"), answer="trl_settings", setup='''
from lessonlib.cloud import autotrain

config = autotrain.build_config("runs/autotrain/recipes-data")
params = config["params"]
''', solution='''
trl_settings = {
    "num_train_epochs": params["epochs"],                   # SFTConfig
    "learning_rate": params["lr"],                          # SFTConfig
    "per_device_train_batch_size": params["batch_size"],    # SFTConfig
    "max_length": params["block_size"],                     # SFTConfig
    "r": params["lora_r"],                                  # LoraConfig
    "lora_alpha": params["lora_alpha"],                     # LoraConfig
}
''', wrong='''
trl_settings = {"epochs": params["epochs"], "lr": params["lr"]}
''', context={"params": "params"})
def _check_autotrain_to_trl(trl_settings: Any, params: dict[str, Any] | None = None) -> str:
    if not params:
        raise Hint(_("pass the AutoTrain parameters: check('07.2', trl_settings, params=config['params'])."))
    if not isinstance(trl_settings, dict):
        raise Hint(_("a dict: TRL's argument name -> the value from `params`."))
    for source, target in _AUTOTRAIN_TO_TRL.items():
        if target not in trl_settings:
            near = _(" (`{source}` is AutoTrain's name)").format(source=source) if source in trl_settings else ""
            raise Hint(_("which TRL or PEFT argument does AutoTrain's `{source}` become? It is missing{near}; notebook 04's "
                         "SFTConfig and LoraConfig cells name them all.").format(source=source, near=near))
        if trl_settings[target] != params[source]:
            raise Hint(_("`{target}` should be `params['{source}']` ({value!r}).").format(target=target, source=source, value=params[source]))
    return _("the same six settings, under TRL's and PEFT's names: AutoTrain writes the SFTConfig and LoraConfig "
             "for you.")


# ------------------------------------------------------------------------------------------------
# 08 · the limits
# ------------------------------------------------------------------------------------------------


def _general_as_examples() -> list[dict[str, Any]]:
    from . import limits

    return limits.general_examples()


@exercise("08.2", 2, N_("Mix general examples in"), answer="mix", solution='''
import random

def mix(task, general, fraction=0.2, seed=18):
    """The task examples plus enough general ones to make `fraction` of the result, shuffled with `seed`."""
    wanted = round(fraction * len(task) / (1 - fraction))
    extra = [general[i % len(general)] for i in range(wanted)]
    mixed = list(task) + extra
    random.Random(seed).shuffle(mixed)
    return mixed
''', wrong='''
def mix(task, general, fraction=0.2, seed=18):
    return task + general
''')
def _check_mix(mix: Any) -> str:
    from . import data

    task = data.read_examples(_train_path())[:80]
    general = _general_as_examples()
    mixed = mix(task, general, fraction=0.2, seed=18)
    if not isinstance(mixed, list):
        raise Hint(_("`mix` should return a list of examples."))
    task_ids = {json.dumps(e, sort_keys=True) for e in task}
    kept = sum(json.dumps(e, sort_keys=True) in task_ids for e in mixed)
    if kept != len(task):
        raise Hint(_("keep every task example once ({kept} of {n_task} found).").format(kept=kept, n_task=len(task)))
    share = (len(mixed) - kept) / len(mixed)
    if abs(share - 0.2) > 0.02:
        raise Hint(_("general examples make {share:.0%} of the result; with fraction=0.2 they should make 20% (for "
                     "{n_task} task examples: {n_general} general ones, repeating them if needed).").format(share=share, n_task=len(task), n_general=round(0.2 * len(task) / 0.8)))
    if mixed[:len(task)] == task:
        raise Hint(_("shuffle the result (with `random.Random(seed)`), or the general examples all come last in training."))
    if mix(task, general, fraction=0.2, seed=18) != mixed:
        raise Hint(_("the same seed should give the same order: use `random.Random(seed).shuffle`, not `random.shuffle`."))
    return (_("80 recipes and 20 general answers, shuffled the same way every time. Mix "
              "`limits.general_examples()` into your recipes (not the 24 questions that measure forgetting), train "
              "with `limits.experiment_config` and measure forgetting with `limits.forgetting`."))


_HISTORY_08 = [(10, 1.42), (20, 1.18), (30, 1.05), (40, 1.01), (50, 1.04), (60, 1.00), (70, 1.03), (80, 1.06), (90, 1.10), (100, 1.15)]
_PATIENCE_08 = 2


@exercise("08.1", 1, N_("When does early stopping stop?"), answer=("stopped_at", "kept"), setup=f'''
history = {_HISTORY_08}   # (step, validation loss)
patience = {_PATIENCE_08}
''', solution='''
best_loss, best_step, waited = float("inf"), None, 0
for step, loss in history:
    if loss < best_loss:                     # a new best: remember it, start waiting again
        best_loss, best_step, waited = loss, step, 0
    else:
        waited += 1
        if waited == patience:               # `patience` evaluations in a row without a new best
            break
stopped_at, kept = step, best_step
''', wrong='''
stopped_at, kept = history[-1][0], min(history, key=lambda row: row[1])[0]
''')
def _check_early_stop(stopped_at: Any, kept: Any) -> str:
    best_loss, best_step, waited, stop = float("inf"), None, 0, _HISTORY_08[-1][0]
    for step, loss in _HISTORY_08:
        if loss < best_loss:
            best_loss, best_step, waited = loss, step, 0
        else:
            waited += 1
            if waited == _PATIENCE_08:
                stop = step
                break
    if stopped_at == _HISTORY_08[-1][0]:
        raise Hint(_("early stopping does not wait for the last step: it stops once the validation loss has failed to "
                     "reach a new best `patience` evaluations in a row. Walk through the history one evaluation at a time."))
    if stopped_at != stop:
        raise Hint(_("count the evaluations since the last *new best* (lower than every loss before it); a new best "
                     "starts the count again. Training stops when the count reaches `patience`."))
    if kept != best_step:
        raise Hint(_("the model kept is the one from the best evaluation seen before training stopped."))
    return (_("it stops at step {stop} and keeps step {best_step}. In TRL: "
              "`EarlyStoppingCallback(early_stopping_patience=2)` with `load_best_model_at_end=True` and "
              '`metric_for_best_model="eval_loss"` in the SFTConfig (notebook 08, section 1).').format(stop=stop, best_step=best_step))


@exercise("08.3", 3, N_("Does mixing reduce forgetting?"), answer="mixed", setup='''
from lessonlib import limits

train_10 = limits.subset("data/recipes/train.jsonl", 10, "runs/08/train-10.jsonl")     # section 1's recipes
valid = limits.subset("data/recipes/valid.jsonl", limits.VALID_EXAMPLES, f"runs/08/valid-{limits.VALID_EXAMPLES}.jsonl")
forgetting = limits.ForgettingReport(limits.knowledge(), limits.knowledge())   # in the notebook: section 2's report
''', solution='''
import random
from pathlib import Path

from lessonlib import corpora, data
from lessonlib.train import run_in_subprocess

recipes = data.read_examples(train_10)
general = limits.general_examples()[:10]     # as many general examples as recipes: half the data
mixed_data = recipes + general
random.Random(18).shuffle(mixed_data)        # general examples all along the run, not all at its end
corpora.write_jsonl(mixed_data, Path("runs/08/train-10-mixed.jsonl"))

# section 1's run (same settings, same validation recipes, early stopping), on the mixed data
result = run_in_subprocess(limits.experiment_config("runs/08/train-10-mixed.jsonl", "runs/08/mixed", valid_file=valid))
mixed = limits.forgetting(result.output_dir)
print(mixed.summary())
''', wrong='''
mixed = forgetting       # section 2's report again: the adapter trained on recipes only
''', context={"plain": "forgetting"})
def _check_mixing_measured(mixed: Any, plain: Any = None) -> str:
    from . import data, limits
    from .train import RunConfig

    if not isinstance(mixed, limits.ForgettingReport):
        raise Hint(_("pass what `limits.forgetting(result.output_dir)` returned for your mixed run."))
    if not isinstance(plain, limits.ForgettingReport):
        raise Hint(_("pass section 2's report too: check('08.3', mixed, plain=forgetting)."))
    adapter = mixed.after.adapter
    if not adapter or adapter == plain.after.adapter:
        raise Hint(_("measure the adapter trained on the mixed data, not section 2's: "
                     "limits.forgetting(result.output_dir)."))
    if [r["question"] for r in mixed.after.rows] != [r["question"] for r in plain.after.rows]:
        raise Hint(_("ask both adapters the same questions (limits.forgetting's default 24), or the counts cannot be "
                     "compared."))
    try:
        examples = data.read_examples(RunConfig.load(Path(adapter) / "config.yaml").train_file)
    except LessonError:
        raise Hint(_("no training run in {adapter}: train with run_in_subprocess, then measure result.output_dir.").format(adapter=adapter)) from None
    prompts = [next((m.get("content") for m in e["messages"] if m.get("role") == "user"), "") for e in examples]
    asked = {limits.prompt(q) for q in limits.load_questions()} | {q.question for q in limits.load_questions()}
    if any(prompt in asked for prompt in prompts):
        raise Hint(_("your training data holds some of the 24 questions that measure forgetting: then the score measures "
                     "memory, not forgetting. Mix in limits.general_examples(), which are other questions."))
    general = {e["messages"][0]["content"] for e in limits.general_examples()}
    mixed_in = sum(prompt in general for prompt in prompts)
    if not mixed_in:
        raise Hint(_("the mixed run's training file has no general examples: add limits.general_examples() to the recipes."))
    before, after = len(plain.forgotten), len(mixed.forgotten)
    if before - after >= 3:
        reading = _("mixing kept {n} answers that recipes alone lost").format(n=before - after)
    elif after - before >= 3:
        reading = _("the mixed run lost {n} more: mixing did not help this run (compare which questions "
                    "each one lost before you conclude)").format(n=after - before)
    else:
        reading = _("the difference is within noise: on 24 questions, one or two answers either way is luck (ask more "
                    "questions, or repeat with other seeds, to know)")
    return (_("recipes only: {before} of {n_rows} answers forgotten; with {mixed_in} general examples in "
              "{n_prompts}: {after} forgotten. Here {reading}.").format(before=before, n_rows=len(mixed.after.rows), mixed_in=mixed_in, n_prompts=len(prompts), after=after, reading=reading))
