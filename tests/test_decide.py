"""The checklist's decision logic: every recommendation path, bad input, the CLI."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from lessonlib.decide import RECOMMENDATIONS, Answers, decide, load_answers
from lessonlib.errors import LessonError
from lessonlib.evaluate import BM25, EvalReport, StrategyResult, extract_sql, ingredient_scores, load_report, parse_list

BASE = {"tried_prompting": True, "examples": 200}


@pytest.mark.parametrize("answers,scores,expected,reason", [
    (dict(base_model_fine_tunable=False, **BASE), {"few-shot": 0.5, "rag": 0.7}, "add retrieval", "cannot be fine-tuned"),
    (dict(base_model_fine_tunable=False, **BASE), {"few-shot": 0.5, "rag": 0.52}, "improve the prompt", "cannot be fine-tuned"),
    ({}, {}, "improve the prompt", "No alternative has been tried"),
    ({"tried_prompting": True, "examples": 12}, {"few-shot": 0.4}, "collect more data first", "Only 12 examples"),
    (dict(effort_acceptable=False, **BASE), {"few-shot": 0.4}, "improve the prompt", "effort"),
    (BASE, {"zero-shot": 0.2, "few-shot": 0.5, "rag": 0.55, "fine-tuned": 0.8}, "fine-tune", "+0.250 over the best baseline"),
    (BASE, {"few-shot": 0.5, "rag": 0.7, "fine-tuned": 0.72}, "add retrieval", "not worth its cost"),
    (BASE, {"few-shot": 0.6, "fine-tuned": 0.62}, "improve the prompt", "not worth its cost"),
    (dict(fine_tune_monthly_usd=900, **BASE), {"few-shot": 0.5, "fine-tuned": 0.9}, "improve the prompt", "over the $50.00 budget"),
    (BASE, {"few-shot": 0.85}, "improve the prompt", "already reaches the target"),
    (BASE, {"few-shot": 0.6, "rag": 0.9}, "add retrieval", "already reaches the target"),
    (BASE, {"few-shot": 0.4, "rag": 0.42}, "fine-tune", "below the target"),
    ({"tried_retrieval": True, "examples": 300}, {}, "fine-tune", "tried but not measured"),
    (dict(stronger_model_untried=True, **BASE), {"few-shot": 0.2, "rag": 0.22}, "try a stronger base model", "has not been tried"),
    (BASE, {"few-shot": 0.2, "rag": 0.21}, "fine-tune", "no clear difference"),
    (BASE, {"few-shot": 0.2, "rag": 0.3}, "fine-tune", "retrieval beats prompting by +0.100"),
])
def test_every_recommendation_path(answers, scores, expected, reason):
    decision = decide(Answers(**answers), scores)
    assert decision.recommendation == expected, decision.reasons
    assert any(reason in r for r in decision.reasons), decision.reasons
    assert decision.recommendation in RECOMMENDATIONS


def test_every_recommendation_is_reachable():
    reached = set()
    for answers, scores in [({}, {}), ({"examples": 1, "tried_prompting": True}, {}), (BASE, {"few-shot": 0.1, "fine-tuned": 0.9}),
                            (BASE, {"few-shot": 0.1, "rag": 0.95}), (dict(stronger_model_untried=True, **BASE), {"few-shot": 0.1})]:
        reached.add(decide(Answers(**answers), scores).recommendation)
    assert reached == set(RECOMMENDATIONS)


def test_markdown_report():
    answers = Answers(**BASE)
    text = decide(answers, {"few-shot": 0.5, "fine-tuned": 0.8}).markdown(answers)
    assert text.startswith("# Should we fine-tune?") and "**Recommendation: fine-tune**" in text and "| examples | 200 |" in text


@pytest.mark.parametrize("content,message", [
    ("examples: lots\n", "'examples' must be a number"),
    ("tried_prompting: maybe\n", "'tried_prompting' must be true or false"),
    ("exemples: 10\n", "unknown checklist field 'exemples'"),
    ("- a\n- b\n", "must hold a mapping"),
    ("examples: [1\n", "not valid YAML"),
])
def test_malformed_answers_name_the_field(tmp_path, content, message):
    path = tmp_path / "answers.yaml"
    path.write_text(content)
    with pytest.raises(LessonError, match=message.replace("$", r"\$")):
        load_answers(str(path))


@pytest.mark.parametrize("content,message", [
    ("{}", "field 'task' is missing"),
    ('{"task": "recipes", "primary_metric": "f1", "results": 3}', "'results' must be a list"),
    ('{"task": "recipes", "primary_metric": "f1", "results": [{"strategy": "x"}]}', "results\\[0\\] is malformed"),
    ("not json", "not valid JSON"),
])
def test_malformed_results_name_the_field(tmp_path, content, message):
    path = tmp_path / "eval.json"
    path.write_text(content)
    with pytest.raises(LessonError, match=message):
        load_report(path)


def test_metrics_and_retrieval():
    assert ingredient_scores('["Flour", "eggs", "salt"]', '["flour", "eggs", "milk", "sugar"]') == {"precision": 0.6667, "recall": 0.5, "f1": 0.5714, "valid_json": 1.0}
    assert ingredient_scores('Sure! ["flour"]', '["flour"]')["valid_json"] == 0.0
    assert ingredient_scores("no list here", '["flour"]')["f1"] == 0.0
    assert parse_list('text ["a", "b"] more') == ["a", "b"]
    assert extract_sql("```sql\nSELECT 1;\n```\nThis returns one.") == "SELECT 1;"
    bm25 = BM25(["chocolate cake with eggs", "tomato soup", "lemon cake"])
    assert bm25.top("a cake with chocolate", 1) == [0]


def test_cli_decide_with_results(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("tried_prompting: true\nexamples: 200\n")
    report = EvalReport("recipes", "smollm2", "gpt-4o-mini-2024-07-18", "2025-06-01", 3, [
        StrategyResult("few-shot", 10, {"f1": 0.5, "valid_json": 1.0}, 400, 20, 1.0, 0.07),
        StrategyResult("fine-tuned", 10, {"f1": 0.8, "valid_json": 1.0}, 120, 20, 1.0, 0.06),
    ], "f1")
    results = report.save(tmp_path / "eval.json")
    out = run_cli("decide", "--answers", str(answers), "--results", str(results), "--json")
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["recommendation"] == "fine-tune" and decision["reasons"]
    text = run_cli("decide", "--answers", str(answers))
    assert "recommendation: fine-tune" in text.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("examples: many\n")
    err = run_cli("decide", "--answers", str(bad))
    assert err.returncode == 1 and "'examples' must be a number" in err.stderr and "Traceback" not in err.stderr


def test_checklist_widget_decides_and_exports(tmp_path):
    from lessonlib.widgets import Checklist

    box = Checklist(Answers(tried_prompting=True, examples=200), {"few-shot": 0.5, "rag": 0.52})
    assert box.run().recommendation == "fine-tune"  # below target, enough data
    box.controls["examples"].value = 10
    box.button.click()
    assert "collect more data first" in box.result.value
    box.controls["examples"].value = 200
    box.scores["fine-tuned"].value = 0.53
    box.button.click()
    assert box.decision.recommendation == "improve the prompt" and "not worth its cost" in box.result.value
    path = box.save_report(tmp_path / "decision.md")
    assert "Recommendation: improve the prompt" in path.read_text()


def test_evaluate_runs_the_strategies_for_real(model_dir, tmp_path):
    from lessonlib import evaluate

    report = evaluate.evaluate("recipes", ["zero-shot", "rag", "fine-tuned"], limit=2, k=2, max_new_tokens=24)
    assert [r.strategy for r in report.results] == ["zero-shot", "rag", "fine-tuned"]
    zero, rag, tuned = report.results
    assert tuned.skipped and "no adapter" in tuned.skipped
    assert 0 <= zero.metrics["f1"] <= 1 and rag.prompt_tokens > zero.prompt_tokens and rag.usd_per_1000 > zero.usd_per_1000
    assert zero.samples and zero.latency_s > 0
    assert len(zero.per_example) == 2 and sum(zero.per_example) / 2 == pytest.approx(zero.metrics["f1"], abs=1e-3)
    low, high = zero.interval()
    assert low <= zero.metrics["f1"] + 1e-3 and high >= zero.metrics["f1"] - 1e-3 and "95% interval" in report.table()
    again = load_report(report.save(tmp_path / "eval.json"))
    assert again.score("rag") == report.score("rag") and "skipped" in again.table()
    assert again.results[0].per_example == zero.per_example
    assert len(report.languages) == 2 and again.languages == report.languages
    grouped = report.by_language("zero-shot")
    assert sorted(v for values in grouped.values() for v in values) == sorted(zero.per_example)
    assert ("f1 by language" in report.table()) == (len(set(report.languages)) > 1)
    sql = evaluate.evaluate("sql", ["few-shot"], limit=2, k=1, max_new_tokens=24)
    assert sql.primary_metric == "execution_accuracy" and 0 <= sql.score("few-shot") <= 1


def test_evaluate_refuses_unknown_names():
    from lessonlib import evaluate

    with pytest.raises(LessonError, match="unknown task"):
        evaluate.evaluate("poems")
    with pytest.raises(LessonError, match="unknown strategy 'magic'"):
        evaluate.evaluate("recipes", ["magic"])


def test_a_gain_counts_only_when_its_paired_interval_is_above_zero():
    """Retrieval +0.07 over prompting on the same 8 examples, with examples that go both ways: no clear difference."""
    few = [0.2, 0.0, 0.4, 0.1, 0.3, 0.0, 0.2, 0.4]
    rag = [0.5, 0.0, 0.1, 0.4, 0.3, 0.0, 0.6, 0.3]
    scores = {"few-shot": sum(few) / 8, "rag": sum(rag) / 8}
    noisy = decide(Answers(**BASE), scores, {"few-shot": few, "rag": rag})
    assert any("interval includes 0, no clear difference" in r for r in noisy.reasons), noisy.reasons
    assert decide(Answers(**dict(BASE, base_model_fine_tunable=False)), scores, {"few-shot": few, "rag": rag}).recommendation == "improve the prompt"
    assert decide(Answers(**dict(BASE, base_model_fine_tunable=False)), scores).recommendation == "add retrieval"  # means alone
    steady = [f + 0.1 for f in few]
    clear = decide(Answers(**BASE), {"few-shot": scores["few-shot"], "rag": sum(steady) / 8}, {"few-shot": few, "rag": steady})
    assert any("retrieval beats prompting by +0.100 (paired 95% interval +0.100 to +0.100)" in r for r in clear.reasons), clear.reasons
    edited = decide(Answers(**BASE), {"few-shot": scores["few-shot"], "rag": 0.9}, {"few-shot": few, "rag": rag})  # a typed score
    assert not any("paired" in r for r in edited.reasons)
    tuned = [0.9, 0.0, 0.1, 0.9, 0.2, 0.0, 0.9, 0.1]
    maybe = decide(Answers(**BASE), {**scores, "fine-tuned": sum(tuned) / 8}, {"few-shot": few, "rag": rag, "fine-tuned": tuned})
    assert maybe.recommendation != "fine-tune" and any("may be noise" in r for r in maybe.reasons), maybe.reasons
