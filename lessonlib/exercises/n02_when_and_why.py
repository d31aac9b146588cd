"""Notebook 02 · when and why: its exercises and their checks."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, _
from .core import Hint, close_to, exercise, message_problem


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
    from ..decide import Answers, decide

    if not isinstance(answers, Answers):
        raise Hint(_("build the answers with `Answers(...)`, from lessonlib.decide."))
    wanted = {"tried_prompting": True, "tried_retrieval": True, "examples": 400, "fine_tune_monthly_usd": 20, "target": 0.8,
              "stronger_model_untried": False}
    for name, value in wanted.items():
        if getattr(answers, name) != value:
            raise Hint(_("read the scenario again for `{name}` (you have {yours!r}).").format(name=name, yours=getattr(answers, name)))
    if not close_to(answers.monthly_budget_usd, 50, 0.01):
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
    from ..evaluate import bootstrap_interval

    low, high = bootstrap_interval([t - p for t, p in zip(_TUNED_SCORES_02, _PROMPT_SCORES_02)])
    expected = low >= _MIN_GAIN_02
    if not isinstance(worth_it, bool):
        raise Hint(_("answer True or False: is the gain worth fine-tuning for?"))
    if worth_it != expected:
        raise Hint(_("the mean gain is one draw of 12 examples; the 95% interval says how low it could really be. Compare "
                      "the interval's low end, not the mean, with `min_gain`.") if worth_it else _("the interval's low end is what the gain is at least: compare it with `min_gain`."))
    return (_("the gain is {low:+.3f} to {high:+.3f} (95%): its mean clears {min_gain}, its low end does not, "
               "so on 12 examples it may not pay for itself. More test examples narrow the interval.").format(low=low, high=high, min_gain=_MIN_GAIN_02) if not expected else _("even its low end, {low:+.3f}, clears {min_gain}: worth paying for.").format(low=low, min_gain=_MIN_GAIN_02))


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return _("`make_prompt` returned {messages!r}: return the list of messages for the model.").format(messages=messages)
    problem = message_problem(messages)
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
    from .. import corpora, data, models, prompting
    from ..evaluate import ingredient_scores

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
