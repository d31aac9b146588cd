"""Notebook 02 · when and why: its exercises and their checks."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, _, ngettext
from .core import Hint, close_to, exercise, message_problem

_FEW_SHOT_02, _RAG_02 = 0.52, 0.60  # the baselines exercise 02.1's scenario gives (its task in notebook 02 says them)


@exercise("02.1", 1, N_("Fill the checklist for a scenario"), answer="answers", solution='''
from lessonlib.decide import Answers, decide

answers = Answers(tried_prompting=True, tried_retrieval=True, examples=400,
                  monthly_budget_usd=360 / 12,       # the checklist counts per month
                  fine_tune_monthly_usd=40, target=0.75,
                  stronger_model_untried=False)      # they use the strongest model they can get
print(decide(answers, {"few-shot": 0.52, "rag": 0.60}).recommendation)
''', wrong='''
from lessonlib.decide import Answers

answers = Answers(tried_prompting=True, tried_retrieval=True, examples=400, monthly_budget_usd=360,
                  fine_tune_monthly_usd=40, target=0.75)
''')
def _check_scenario(answers: Any) -> str:
    from ..decide import Answers, decide

    if not isinstance(answers, Answers):
        raise Hint(_("build the answers with `Answers(...)`, from lessonlib.decide."))
    defaults = Answers()
    wanted = {"tried_prompting": True, "tried_retrieval": True, "examples": 400, "fine_tune_monthly_usd": 40, "target": 0.75,
              "stronger_model_untried": False}
    for name, value in wanted.items():
        if getattr(answers, name) != value:
            raise Hint(_("read the scenario again for `{name}` (you have {yours!r}).").format(name=name, yours=getattr(answers, name)))
    if close_to(answers.monthly_budget_usd, 360, 0.01):
        raise Hint(_("`monthly_budget_usd` is a budget per month (you have {monthly_budget_usd!r}); the scenario gives "
                     "one per year.").format(monthly_budget_usd=answers.monthly_budget_usd))
    if not close_to(answers.monthly_budget_usd, 30, 0.01):
        left = _(" (the default: set it from the scenario)") if answers.monthly_budget_usd == defaults.monthly_budget_usd else ""
        raise Hint(_("read the scenario again for `monthly_budget_usd`: you have {yours!r}{left}; it is a budget per month, "
                     "and the scenario gives one per year.").format(yours=answers.monthly_budget_usd, left=left))
    decision = decide(answers, {"few-shot": _FEW_SHOT_02, "rag": _RAG_02})
    return _("with those baselines the checklist says: {recommendation}. {reason} Notebook 05 measures them for "
             "real.").format(recommendation=decision.recommendation, reason=decision.reasons[-1])


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
mean = sum(gains) / len(gains)
low, high = evaluate.bootstrap_interval(gains)
print(f"mean gain {mean:+.3f}, 95% interval {low:+.3f} to {high:+.3f}")
worth_it = mean >= min_gain and low > 0   # big enough to pay for itself, and real: its interval lies above 0
''', wrong='''
gains = [t - p for t, p in zip(tuned_scores, prompt_scores)]
low, high = evaluate.bootstrap_interval(gains)
worth_it = low >= min_gain   # the interval's low end held to the business threshold
''')
def _check_worth_it(worth_it: Any) -> str:
    from ..decide import gain_counts
    from ..evaluate import bootstrap_interval

    gains = [t - p for t, p in zip(_TUNED_SCORES_02, _PROMPT_SCORES_02)]
    mean = sum(gains) / len(gains)
    low, high = bootstrap_interval(gains)
    expected = gain_counts(mean, (low, high), _MIN_GAIN_02)  # the checklist's own rule, as decide() applies it
    if not isinstance(worth_it, bool):
        raise Hint(_("answer True or False: is the gain worth fine-tuning for?"))
    if worth_it != expected:
        raise Hint(_("apply the checklist's rule, as `decide` does: a gain counts when its mean is at least `min_gain` (big "
                     "enough to pay) and its 95% interval lies above 0 (real, not noise). Two questions, two numbers: "
                     "the mean answers the first, the interval's low end the second."))
    if expected:
        return _("the mean gain, {mean:+.3f}, clears {min_gain}, and its interval, {low:+.3f} to {high:+.3f}, lies above 0: "
                 "the checklist counts it (`decide.gain_counts`, the rule `decide` applies). On 12 examples the true gain "
                 "could still be as small as {low:+.3f}: more test examples narrow the interval.").format(
            mean=mean, min_gain=_MIN_GAIN_02, low=low, high=high)
    return _("the mean gain is {mean:+.3f} and its interval {low:+.3f} to {high:+.3f}: the checklist does not count it "
             "(`decide.gain_counts`, the rule `decide` applies).").format(mean=mean, low=low, high=high)


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return _("`make_prompt` returned {messages!r}: return the list of messages for the model.").format(messages=messages)
    problem = message_problem(messages)
    if problem:
        return problem
    if messages[-1]["role"] != "user":
        return _("the prompt must end with the recipe to read, as a 'user' message.")
    return None


#: More solved examples than this in one prompt: each is paid on every request, and the check would wait minutes.
_MOST_SHOTS_02 = 10


def _shots_problem(messages: list[dict[str, str]], query: dict[str, Any], answers: dict[str, str]) -> str | None:
    """What is wrong with the shape of one few-shot prompt, None when it is right: the part the learner controls.

    ``answers`` maps each training recipe (its 'user' text) to its answer.

    >>> query = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "r2"}, {"role": "assistant", "content": "a2"}]}
    >>> _shots_problem([query["messages"][0], {"role": "user", "content": "r1"}, {"role": "assistant", "content": "a1"},
    ...                 query["messages"][1]], query, {"r1": "a1"}) is None
    True
    """
    recipe = query["messages"][1]["content"]
    if recipe not in messages[-1]["content"]:
        return _("the last 'user' message should carry the recipe to read: `query['messages'][1]`.")
    turns = messages[1:-1] if messages[0]["role"] == "system" else messages[:-1]
    if not any(m["role"] == "assistant" for m in turns):
        return _("show the model solved examples first: each one's recipe as a 'user' turn and its answer as an "
                 "'assistant' turn, before the new recipe.")
    if messages[0]["role"] != "system":
        return _("start with a 'system' message that says what to answer: the query's own, `query['messages'][0]`.")
    if len(turns) % 2 or any(m["role"] != role for m, role in zip(turns, ["user", "assistant"] * len(turns))):
        return _("after the system message, the solved examples go in pairs, a 'user' turn (a recipe) then an 'assistant' "
                 "turn (its answer), each pair once; then the new recipe.")
    if len(turns) // 2 > _MOST_SHOTS_02:
        return _("{n} solved examples in every prompt: each one is paid for on every request and the model reads them "
                 "all. A few (2 to 5) show the format.").format(n=len(turns) // 2)
    for number, (user, assistant) in enumerate(zip(turns[::2], turns[1::2]), 1):
        answer = answers.get(user["content"]) or next((a for r, a in answers.items() if r in user["content"]), None)
        if answer is None:
            return _("solved example {n}: its 'user' turn should be a recipe from `train` "
                     "(`example['messages'][1]`).").format(n=number)
        if assistant["content"] != answer:
            return _("solved example {n}: its 'assistant' turn is not the answer to the recipe just before it. Take both "
                     "from the same training example: `example['messages'][1]` then `example['messages'][2]`.").format(n=number)
    return None


@exercise("02.3", 3, N_("Write a few-shot prompt"), answer="make_prompt", solution='''
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
    from ..evaluate import compare, ingredient_scores

    if "few_shot_messages" in getattr(getattr(make_prompt, "__code__", None), "co_names", ()):
        raise Hint(_("write the prompt yourself, without `prompting.few_shot_messages`: the system message, then a few "
                     "solved examples from `train` as earlier turns, then the new recipe."))
    train = data.read_examples(corpora.split_path("recipes", "train"))
    test = data.read_examples(corpora.split_path("recipes", "test"))[:6]
    answers = {e["messages"][1]["content"]: e["messages"][2]["content"] for e in train}
    prompts = []
    for query in test:
        messages = make_prompt(train, query)
        problem = _messages_problem(messages)
        if problem:
            raise Hint(problem)
        if any(m["content"] == query["messages"][-1]["content"] for m in messages):
            raise Hint(_("the prompt contains the expected answer itself: use solved examples from `train`, not the query's "
                         "answer."))
        problem = _shots_problem(messages, query, answers)
        if problem:
            raise Hint(problem)
        prompts.append(messages)
    # The prompt's shape is what the learner controls, and it is right. What it buys on a 135M model is measured
    # and shown, not required: on 6 recipes a small model's gain is mostly noise, and a right prompt can lose.
    zero = [prompting.zero_shot_messages(q) for q in test]
    replies = models.generate_many(prompts + zero, max_new_tokens=60)
    gold = [q["messages"][-1]["content"] for q in test]
    yours = [ingredient_scores(a, g)["f1"] for a, g in zip(replies[:6], gold)]
    baseline = [ingredient_scores(a, g)["f1"] for a, g in zip(replies[6:], gold)]
    shots = ngettext("{n} solved example", "{n} solved examples", (len(prompts[0]) - 2) // 2).format(n=(len(prompts[0]) - 2) // 2)
    return (_("a few-shot prompt: the instructions, {shots} from `train`, then the new recipe. "
              "Measured on 6 test recipes, zero-shot then yours: {comparison}. On so few recipes, read it as a hint, not "
              "a result (notebook 05 scores 16), and remember that each example is paid for on every request "
              "(notebook 01).").format(shots=shots, comparison=compare(baseline, yours)))
