"""Each strategy on the learner's test split, scored with the project's metric, priced, with intervals.

Strategies, as notebook 05 runs them on the course's tasks: ``trivial`` (the most common training label,
or the empty answer), ``zero-shot`` (the system prompt and the input), ``few-shot`` (the first *k*
training examples before it), ``rag`` (the *k* training examples BM25 finds closest,
:class:`lessonlib.evaluate.BM25`) and ``fine-tuned`` (the project's adapter). Replies come from
:func:`lessonlib.models.generate_many_timed` (greedy, cached); every score is a mean of per-example
values, so :func:`paired_gain` can bootstrap a strategy's gain over another on the same examples.

>>> paired_gain([0, 0, 1, 0], [1, 1, 1, 0])["gain"]
0.5
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..data.splitting import input_of, output_of
from ..errors import LessonError
from ..evaluate import BM25, bootstrap_interval
from ..i18n import _

BASELINES = ("trivial", "zero-shot", "few-shot", "rag")
#: Replies generated between two progress lines (two batches of :func:`lessonlib.models.generate_many`).
CHUNK = 16


def paired_gain(before: Sequence[float], after: Sequence[float]) -> dict[str, Any]:
    """``after`` minus ``before`` on the same examples: the mean gain and its 95% bootstrap interval, and whether it is real."""
    gains = [b - a for a, b in zip(before, after)]
    low, high = bootstrap_interval(gains) if gains else (0.0, 0.0)
    mean = round(sum(gains) / len(gains), 4) if gains else 0.0
    return {"gain": mean, "interval": [low, high], "real": low > 0, "loss": high < 0}


def trivial_answer(train: list[dict[str, Any]], labels: bool) -> str:
    """The most common training output for labels (first seen wins a tie), else the empty answer."""
    if not labels:
        return ""
    return Counter(output_of(e).strip() for e in train).most_common(1)[0][0]


def prompts(strategy: str, train: list[dict[str, Any]], test: list[dict[str, Any]], k: int) -> list[list[dict[str, Any]]]:
    """The chat prompts a strategy sends for each test example."""
    from ..prompting import few_shot_messages, zero_shot_messages

    if strategy in ("zero-shot", "fine-tuned", "trivial"):
        return [zero_shot_messages(e) for e in test]
    if strategy == "few-shot":
        return [few_shot_messages(train, e, k=k) for e in test]
    bm25 = BM25([input_of(e) for e in train])
    return [few_shot_messages([train[i] for i in bm25.top(input_of(e), k)], e, k=k) for e in test]


def max_new_tokens(train: list[dict[str, Any]], model: str) -> int:
    """Room for the longest training output in the local tokenizer's tokens, plus a margin (8 to 256)."""
    from .. import tokens

    longest = max((len(output_of(e)) for e in train), default=10)
    try:
        counted = max(tokens.count_local([[{"role": "assistant", "content": output_of(e)}] for e in train[:200]], model))
        # the count includes the template's few tokens around the reply
        return max(8, min(256, counted + 4))
    except (LessonError, OSError, ValueError):  # no local tokenizer: about 3 characters a token
        return max(8, min(256, longest // 3 + 8))


def score_strategy(strategy: str, train: list[dict[str, Any]], test: list[dict[str, Any]], *, score: Any, labels: bool, k: int,
                   model: str | None, adapter: str | None, price: Any, encoding: Any, new_tokens: int,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """One strategy on the test split: replies, per-example scores, mean, interval, tokens and cost per 1,000 requests."""
    from .. import costs, models, tokens
    from ..metrics import per_label_f1

    asked = prompts(strategy, train, test, k)
    if strategy == "trivial":
        answer = trivial_answer(train, labels)
        replies, seconds = [answer] * len(test), 0.0
    else:
        replies, seconds = [], 0.0
        for start in range(0, len(asked), CHUNK):  # a progress line every CHUNK replies
            got, took = models.generate_many_timed(asked[start:start + CHUNK], model=model,
                                                   adapter=adapter if strategy == "fine-tuned" else None, max_new_tokens=new_tokens)
            replies, seconds = replies + got, seconds + took
            if progress is not None:
                progress(len(replies), len(asked))
    references = [output_of(e) for e in test]
    per_example = [round(float(score(reply, reference)), 4) for reply, reference in zip(replies, references)]
    mean = round(sum(per_example) / len(per_example), 4) if per_example else 0.0
    prompt_tokens = sum(tokens.count_messages(p, encoding) for p in asked) / max(1, len(asked)) if strategy != "trivial" else 0.0
    reply_tokens = sum(len(encoding.encode_ordinary(r)) for r in replies) / max(1, len(replies)) if strategy != "trivial" else 0.0
    usd = costs.request_cost(prompt_tokens, reply_tokens, price, fine_tuned=strategy == "fine-tuned")
    result: dict[str, Any] = {
        "strategy": strategy, "n": len(test), "score": mean, "interval": list(bootstrap_interval(per_example)) if per_example else None,
        "per_example": per_example, "prompt_tokens": round(prompt_tokens, 1), "reply_tokens": round(reply_tokens, 1),
        "usd_per_1000": round(1000 * usd, 4), "seconds_per_request": round(seconds / max(1, len(test)), 3),
        "samples": [{"input": input_of(e), "expected": ref, "reply": rep} for e, ref, rep in list(zip(test, references, replies))[:3]],
    }
    if labels:
        result["per_label_f1"] = per_label_f1(replies, references)
    return result


def describe(result: dict[str, Any]) -> str:
    """One line for a strategy's score."""
    low, high = result["interval"] or (result["score"], result["score"])
    return _("{strategy}: {score:.3f} (95% interval {low:.2f} to {high:.2f}), {tokens:.0f} prompt tokens, ${usd:.4f} per 1,000 requests").format(
        strategy=result["strategy"], score=result["score"], low=low, high=high, tokens=result["prompt_tokens"], usd=result["usd_per_1000"])
