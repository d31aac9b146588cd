"""Measured baselines: zero-shot, few-shot, retrieval-augmented and fine-tuned, on one held-out set.

The lesson says: try prompt engineering and retrieval first, use them as the baseline, and
fine-tune only if it wins. :func:`evaluate` runs each strategy with the local model on a task's test
split and scores it the same way:

* **recipes** — ingredient-set precision, recall and F1 against the gold list (lower-cased), and the
  share of answers that are valid JSON lists;
* **sql** — execution accuracy on the shipped SQLite database (right when the query returns the gold
  query's rows; see :func:`lessonlib.corpora.sql.same_result`).

Also per strategy: prompt tokens per request (what a provider would bill, counted with tiktoken for
``price_model``), latency per request on this machine, and the cost of 1,000 requests at that model's
prices. Strategies: ``zero-shot`` (instructions only), ``few-shot`` (the first *k* training
examples), ``rag`` (the *k* training examples most similar to the question, retrieved with BM25),
``fine-tuned`` (a LoRA adapter from ``lessonlib train local``; skipped with a note without one).

>>> bm25 = BM25(["flour eggs milk", "rice soy sauce", "flour butter sugar"])
>>> bm25.top("eggs and flour", 2)
[0, 2]
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import LessonError
from .i18n import _, ngettext

TASKS = ("recipes", "sql")
STRATEGIES = ("zero-shot", "few-shot", "rag", "fine-tuned")
_WORD = re.compile(r"\w+", re.UNICODE)


class BM25:
    """Okapi BM25 over a small corpus (k1=1.5, b=0.75): a real lexical retriever, no model needed."""

    def __init__(self, documents: Sequence[str], *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.docs = [Counter(_WORD.findall(d.lower())) for d in documents]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(1, len(self.lengths))
        df = Counter(term for d in self.docs for term in d)
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str) -> list[float]:
        terms = _WORD.findall(query.lower())
        out = []
        for doc, length in zip(self.docs, self.lengths):
            s = 0.0
            for t in terms:
                f = doc.get(t, 0)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
            out.append(s)
        return out

    def top(self, query: str, k: int) -> list[int]:
        scores = self.scores(query)
        return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def parse_list(text: str) -> list[str] | None:
    """The answer as a list of strings, or None when it is not a JSON list (the first one found is used)."""
    candidates = [text.strip()]
    match = re.search(r"\[.*?\]", text, re.DOTALL)
    if match:
        candidates.append(match.group())
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            return [str(v).strip().lower() for v in value]
    return None


def ingredient_scores(answer: str, gold: str) -> dict[str, float]:
    """Precision, recall, F1 of the answer's ingredient set; ``valid_json`` 1.0 when the whole answer is a JSON list.

    >>> ingredient_scores('["flour", "eggs"]', '["flour", "milk"]')
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'valid_json': 1.0}
    """
    try:
        strict = isinstance(json.loads(answer.strip()), list)
    except json.JSONDecodeError:
        strict = False
    got, want = set(parse_list(answer) or []), set(parse_list(gold) or [])
    hit = len(got & want)
    precision = hit / len(got) if got else 0.0
    recall = hit / len(want) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "valid_json": 1.0 if strict else 0.0}


def bootstrap_interval(values: Sequence[float], *, confidence: float = 0.95, rounds: int = 2000,
                       seed: int = 18) -> tuple[float, float]:
    """A percentile bootstrap interval for the mean of ``values`` (resampled ``rounds`` times, seeded).

    With few examples the interval is wide: that is the honest answer, not a defect.

    >>> bootstrap_interval([0.0, 1.0] * 10)
    (0.3, 0.7)
    >>> bootstrap_interval([0.5, 0.5, 0.5])
    (0.5, 0.5)
    """
    import random

    if not values:
        raise LessonError(_("no values to bootstrap"))
    rng, n = random.Random(seed), len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(rounds))
    tail = (1 - confidence) / 2
    return round(means[int(tail * rounds)], 4), round(means[min(rounds - 1, int((1 - tail) * rounds))], 4)


def compare(before: Sequence[float], after: Sequence[float], *, metric: str = "F1", confidence: float = 0.95) -> str:
    """One line on a paired before/after score: the mean gain, its bootstrap interval, and whether it is more than noise.

    >>> compare([0.0, 0.2, 0.1, 0.0], [0.8, 0.9, 0.7, 1.0])
    'F1 0.08 -> 0.85: gain +0.78 (95% interval +0.65 to +0.93, 4 examples): a real gain'
    >>> compare([0.5, 0.6, 0.4], [0.6, 0.4, 0.5])
    'F1 0.50 -> 0.50: gain +0.00 (95% interval -0.20 to +0.10, 3 examples): noise (the interval includes 0)'
    """
    if len(before) != len(after) or not before:
        raise LessonError(_("compare needs the same examples scored before and after"))
    gains = [b - a for a, b in zip(before, after)]
    low, high = bootstrap_interval(gains, confidence=confidence)
    mean = sum(gains) / len(gains)
    verdict = _("a real gain") if low > 0 else _("a real loss") if high < 0 else _("noise (the interval includes 0)")
    return _("{metric} {before:.2f} -> {after:.2f}: gain {gain:+.2f} ({confidence:.0%} interval {low:+.2f} to {high:+.2f}, "
             "{n} examples): {verdict}").format(metric=metric, before=sum(before) / len(before), after=sum(after) / len(after),
                                                gain=mean, confidence=confidence, low=low, high=high, n=len(gains), verdict=verdict)


def extract_sql(answer: str) -> str:
    """The first SQL statement of an answer (code fences and trailing text removed)."""
    text = re.sub(r"```(?:sql)?", "", answer, flags=re.IGNORECASE).strip()
    match = re.search(r"(SELECT|WITH)\b.*?(;|$)", text, re.IGNORECASE | re.DOTALL)
    return match.group(0).strip() if match else text


# --------------------------------------------------------------------------------------------
# Strategies and the harness
# --------------------------------------------------------------------------------------------


@dataclass
class StrategyResult:
    """One strategy on one task: its scores and what it costs."""

    strategy: str  # zero-shot, few-shot, rag or fine-tuned
    n: int  # test examples scored
    metrics: dict[str, float]  # means over the test examples (f1/precision/recall/valid_json, or execution_accuracy)
    prompt_tokens: float  # mean prompt tokens per request (tiktoken, for the price model)
    completion_tokens: float  # mean reply tokens
    latency_s: float  # mean seconds per request on this machine (batched generation)
    usd_per_1000: float  # cost of 1,000 requests at the price model's prices (fine-tuned prices for fine-tuned)
    skipped: str = ""  # why it was not run (empty when it ran)
    samples: list[dict[str, Any]] = field(default_factory=list)  # a few answers, for display
    per_example: list[float] = field(default_factory=list)  # the primary metric on each test example, in the test set's order

    def interval(self, confidence: float = 0.95) -> tuple[float, float] | None:
        """A bootstrap interval for the mean of the primary metric (None without per-example scores)."""
        return bootstrap_interval(self.per_example, confidence=confidence) if self.per_example else None


@dataclass
class EvalReport:
    task: str  # recipes or sql
    model: str  # the local model evaluated
    price_model: str  # whose prices the costs use
    prices_as_of: str  # date of those prices
    k: int  # examples per prompt for few-shot and rag
    results: list[StrategyResult]
    primary_metric: str  # "f1" (recipes) or "execution_accuracy" (sql)
    languages: list[str] = field(default_factory=list)  # each test example's language (recipes: "en" or "fr"), in order
    adapter: str | None = None  # the adapter folder the fine-tuned strategy used (None without one)
    split: str = "test"  # the split scored: "valid" to choose settings, "test" once at the end

    def by_language(self, strategy: str) -> dict[str, list[float]]:
        """A strategy's per-example scores grouped by the examples' language (empty without languages).

        >>> r = StrategyResult("rag", 3, {"f1": 0.5}, 0, 0, 0, 0, per_example=[1.0, 0.5, 0.0])
        >>> EvalReport("recipes", "m", "p", "d", 3, [r], "f1", ["en", "fr", "en"]).by_language("rag")
        {'en': [1.0, 0.0], 'fr': [0.5]}
        """
        result = next((r for r in self.results if r.strategy == strategy and not r.skipped), None)
        grouped: dict[str, list[float]] = {}
        if result is None or len(result.per_example) != len(self.languages):
            return grouped
        for language, value in zip(self.languages, result.per_example):
            grouped.setdefault(language, []).append(value)
        return dict(sorted(grouped.items()))

    def score(self, strategy: str) -> float | None:
        for r in self.results:
            if r.strategy == strategy and not r.skipped:
                return r.metrics[self.primary_metric]
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        return path

    def table(self) -> str:
        metric = self.primary_metric
        strategy, interval, valid = _("strategy"), _("95% interval"), _("valid JSON") if self.task == "recipes" else ""
        prompt, seconds, usd = _("prompt tok"), _("s/request"), _("$/1k req")
        lines = [f"{strategy:<11} {metric:>18} {interval:>13} {valid:>10} {prompt:>10} {seconds:>9} {usd:>9}"]
        for r in self.results:
            if r.skipped:
                lines.append(f"{r.strategy:<11} " + _("skipped: {reason}").format(reason=r.skipped))
                continue
            extra = f"{r.metrics.get('valid_json', 0):>10.0%}" if self.task == "recipes" else f"{'':>10}"
            interval = r.interval()
            spread = _("{low:.2f} to {high:.2f}").format(low=interval[0], high=interval[1]) if interval else ""
            lines.append(f"{r.strategy:<11} {r.metrics[metric]:>18.3f} {spread:>13} {extra} {r.prompt_tokens:>10.0f} {r.latency_s:>9.2f} {r.usd_per_1000:>9.4f}")
        lines.append(_("({task}, {n} {split} examples, k={k}, local model {model}; costs at {price_model} prices of {date})").format(
            task=self.task, n=self.results[0].n if self.results else 0, split=self.split, k=self.k, model=self.model,
            price_model=self.price_model, date=self.prices_as_of))
        return "\n".join(lines + self._language_lines())

    def _language_lines(self) -> list[str]:
        """The primary metric per language and strategy, with each language's count (nothing for one language)."""
        names = sorted(set(self.languages))
        if len(names) < 2:
            return []
        counts = {name: self.languages.count(name) for name in names}
        lines = ["", _("{metric} by language").format(metric=self.primary_metric) + " " + " ".join(f"{f'{name} ({counts[name]})':>9}" for name in names)]
        for r in self.results:
            grouped = self.by_language(r.strategy)
            if grouped:
                lines.append(f"{r.strategy:<{len(lines[1]) - 10 * len(names)}}" + " ".join(
                    f"{sum(grouped[name]) / len(grouped[name]):>9.3f}" if grouped.get(name) else f"{'':>9}" for name in names))
        fewest = min(counts.values())
        lines.append(ngettext("(only {n} example in {language}: read a difference between languages as a hint, not a result)",
                              "(only {n} examples in {language}: read a difference between languages as a hint, not a result)",
                              fewest).format(n=fewest, language=min(counts, key=counts.get)))
        return lines


def load_report(path: str | Path) -> EvalReport:
    """Read an evaluation JSON back; a malformed file names the field and the problem."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LessonError(_("cannot read the evaluation file {path}: {reason}").format(path=path, reason=exc.strerror or exc), exit_code=2) from None
    except json.JSONDecodeError as exc:
        raise LessonError(_("{path} is not valid JSON (line {lineno}: {msg})").format(path=path, lineno=exc.lineno, msg=exc.msg), exit_code=2) from None
    for name in ("task", "primary_metric", "results"):
        if name not in raw:
            raise LessonError(_("{path}: field '{name}' is missing").format(path=path, name=name), fix=_("use a file written by `lessonlib evaluate --json` or EvalReport.save"))
    if not isinstance(raw["results"], list):
        raise LessonError(_("{path}: field 'results' must be a list").format(path=path))
    results = []
    for i, r in enumerate(raw["results"]):
        try:
            results.append(StrategyResult(**r))
        except TypeError as exc:
            raise LessonError(_("{path}: results[{i}] is malformed ({exc})").format(path=path, i=i, exc=exc)) from None
        if not r.get("skipped") and raw["primary_metric"] not in r.get("metrics", {}):
            raise LessonError(_("{path}: results[{i}].metrics lacks '{metric}'").format(path=path, i=i, metric=raw['primary_metric']))
    return EvalReport(raw["task"], raw.get("model", "?"), raw.get("price_model", "?"), raw.get("prices_as_of", "?"), raw.get("k", 0), results,
                      raw["primary_metric"], [str(language) for language in raw.get("languages") or []], raw.get("adapter"),
                      str(raw.get("split", "test")))


def _prompts(strategy: str, train: list[dict[str, Any]], test: list[dict[str, Any]], k: int) -> list[list[dict[str, Any]]]:
    from .prompting import few_shot_messages, zero_shot_messages

    if strategy in {"zero-shot", "fine-tuned"}:
        return [zero_shot_messages(e) for e in test]
    if strategy == "few-shot":
        return [few_shot_messages(train, e, k=k) for e in test]
    bm25 = BM25([e["messages"][-2]["content"] for e in train])
    return [few_shot_messages([train[i] for i in bm25.top(e["messages"][-2]["content"], k)], e, k=k) for e in test]


def evaluate(
    task: str,
    strategies: Sequence[str] = STRATEGIES,
    *,
    adapter: str | None = None,
    limit: int | None = None,
    k: int = 3,
    model: str | None = None,
    price_model: str = "gpt-4o-mini",
    max_new_tokens: int | None = None,
    samples: int = 3,
    split: str = "test",
    progress: bool | None = None,
) -> EvalReport:
    """Run the strategies on ``task``'s ``split`` and score them (see the module docstring).

    Choose settings on ``split="valid"`` and score the test split once, with the settings chosen: a score
    used to choose is no longer a fair estimate of how the choice does on new data. ``progress``: a live
    line per strategy (by default where someone sees it: a notebook or a terminal).
    """
    from . import corpora, costs, data, models, tokens
    from .progress import LiveLine

    if task not in TASKS:
        raise LessonError(_("unknown task '{task}'").format(task=task), fix=_("use one of: {names}").format(names=', '.join(TASKS)), exit_code=2)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise LessonError(_("unknown strategy '{strategy}'").format(strategy=unknown[0]), fix=_("use some of: {names}").format(names=', '.join(STRATEGIES)), exit_code=2)
    train = data.read_examples(corpora.split_path(task, "train"))
    if split not in ("valid", "test"):
        raise LessonError(_("unknown split '{split}'").format(split=split), fix=_("use valid (to choose settings) or test (once, at the end)"), exit_code=2)
    test = data.read_examples(corpora.split_path(task, split))[:limit]
    price = costs.get_price(price_model)
    encoding = tokens.encoding_for(price.model)
    max_new = max_new_tokens or (60 if task == "recipes" else 80)
    from .corpora import recipes, sql

    db = sql.connect() if task == "sql" else None
    results = []
    line = LiveLine(_("scoring"), total=len(strategies), enabled=progress)
    for number, strategy in enumerate(strategies, start=1):
        line.update(number, _("{strategy} on {n} {split} examples").format(strategy=strategy, n=len(test), split=split))
        if strategy == "fine-tuned" and not adapter:
            results.append(StrategyResult(strategy, 0, {}, 0, 0, 0, 0, skipped=_("no adapter: train one in notebook 04 (lessonlib train local)")))
            continue
        prompts = _prompts(strategy, train, test, k)
        answers, seconds = models.generate_many_timed(prompts, model=model, adapter=adapter if strategy == "fine-tuned" else None, max_new_tokens=max_new)
        latency = seconds / max(1, len(prompts))  # generation only (not loading); as first measured when cached
        rows: list[dict[str, float]] = []
        for example, answer in zip(test, answers):
            gold = example["messages"][-1]["content"]
            if task == "recipes":
                rows.append(ingredient_scores(answer, gold))
            else:
                rows.append({"execution_accuracy": 1.0 if sql.same_result(extract_sql(answer), gold, db) else 0.0})
        metrics = {name: round(sum(r[name] for r in rows) / len(rows), 4) for name in rows[0]} if rows else {}
        prompt_tokens = sum(tokens.count_messages(p, encoding) for p in prompts) / max(1, len(prompts))
        completion = sum(len(encoding.encode_ordinary(a)) for a in answers) / max(1, len(answers))
        per_request = costs.request_cost(prompt_tokens, completion, price, fine_tuned=strategy == "fine-tuned")
        results.append(StrategyResult(
            strategy, len(test), metrics, round(prompt_tokens, 1), round(completion, 1), round(latency, 3), round(1000 * per_request, 4),
            samples=[{"prompt": e["messages"][-2]["content"], "expected": e["messages"][-1]["content"], "answer": a}
                     for e, a in list(zip(test, answers))[:samples]],
            per_example=[round(r["f1" if task == "recipes" else "execution_accuracy"], 4) for r in rows],
        ))
    scored = [r.strategy for r in results if not r.skipped]
    names = _(" and ").join(filter(None, [", ".join(scored[:-1]), scored[-1] if scored else _("nothing")]))
    line.finish(_("Scored {names} on {n} {split} examples.").format(names=names, n=len(test), split=split))
    languages = [recipes.language_of(e) for e in test] if task == "recipes" else []
    return EvalReport(task, model or models.DEFAULT_MODEL, price.model, price.as_of, k, results,
                      "f1" if task == "recipes" else "execution_accuracy", languages, str(adapter) if adapter else None, split)
