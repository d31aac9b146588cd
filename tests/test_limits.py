"""The limits experiments: questions and scoring, subsets, early stopping, forgetting, data size, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from lessonlib import corpora, limits, plots
from lessonlib.errors import LessonError
from lessonlib.train import RunConfig, run


def test_the_shipped_questions_load():
    questions = limits.load_questions()
    assert len(questions) == 24
    assert all(q.question.endswith("?") and q.answers for q in questions)
    assert len({q.question for q in questions}) == len(questions)


@pytest.mark.parametrize("reply, answers, right", [
    ("The capital of France is Paris.", ["paris"], True),
    ("PARIS", ["paris"], True),
    ("Parisian food", ["paris"], False),
    ("It is 10 degrees", ["0", "zero"], False),
    ("It is 0 °C", ["0", "zero"], True),
    ("Water is H2O.", ["h2o"], True),
    ("There are twenty-four hours.", ["24", "twenty-four"], True),
])
def test_whole_word_scoring(reply, answers, right):
    assert limits.score_answer(reply, answers) is right


@pytest.mark.parametrize("line, problem", [
    ("not json", "line 2: not a question record"),
    ('{"question": "Why?"}', "line 2: not a question record"),
    ('{"question": "Why?", "answers": []}', "line 2: 'question' must be a text"),
    ('{"question": "", "answers": ["x"]}', "line 2: 'question' must be a text"),
])
def test_a_malformed_questions_file_names_the_line(tmp_path, line, problem):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "What?", "answers": ["that"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(LessonError, match=problem):
        limits.load_questions(path)


def test_sizes_and_subsets(tmp_path):
    assert limits.run_size("all") is None and limits.run_size(10) == 10
    for bad in ("ten", "0", -3):
        with pytest.raises(LessonError):
            limits.run_size(bad)
    target = limits.subset("data/recipes/train.jsonl", 10, tmp_path / "ten.jsonl")
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines == corpora.split_path("recipes", "train").read_text(encoding="utf-8").splitlines()[:10]
    with pytest.raises(LessonError, match="fewer than the 1000"):
        limits.subset("data/recipes/train.jsonl", 1000, tmp_path / "many.jsonl")


def test_experiment_config_and_early_stopping_settings(tmp_path):
    cfg = limits.experiment_config("data/recipes/train.jsonl", tmp_path / "run")
    assert cfg.early_stopping_patience == limits.EXPERIMENT["early_stopping_patience"] and cfg.eval_every == 4
    with pytest.raises(LessonError, match="needs a validation file and eval_every"):
        RunConfig.from_dict({"early_stopping_patience": 2, "eval_every": 0})
    with pytest.raises(LessonError, match="needs a validation file"):
        RunConfig.from_dict({"early_stopping_patience": 2, "eval_every": 2, "valid_file": None})


def test_early_stopping_keeps_the_best_adapter(tmp_path, model_dir):
    """A learning rate far too high on two examples: the validation loss turns up within a few steps."""
    lines = corpora.split_path("recipes", "train").read_text(encoding="utf-8").splitlines()
    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    train.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    valid.write_text("\n".join(lines[2:6]) + "\n", encoding="utf-8")
    cfg = RunConfig(train_file=str(train), valid_file=str(valid), output_dir=str(tmp_path / "run"), max_steps=10,
                    eval_every=1, early_stopping_patience=1, learning_rate=0.05, lr_scheduler="constant", max_length=160)
    result = run(cfg)
    evals = plots.loss_points(result.history, "eval")
    assert result.early_stopped and result.steps < 10
    best_loss, best_step = min((loss, step) for step, loss in evals)
    assert (result.best_step, result.best_eval_loss) == (best_step, best_loss)
    assert evals[-1][0] == result.steps and best_step == result.steps - 1  # patience 1: one worse evaluation ends it
    out = Path(result.output_dir)
    saved = (out / "adapter_model.safetensors").read_bytes()
    assert saved == (out / f"checkpoint-{best_step}" / "adapter_model.safetensors").read_bytes()
    assert "early stopping" in (out / "README.md").read_text(encoding="utf-8")
    from lessonlib.widgets import TrainingMonitor

    status = TrainingMonitor.summary(result)
    assert status.startswith("<b>Early stopping:</b>") and f"at step {best_step}" in status
    fig = plots.loss_curves(result.history, best_step=result.best_step).figure()
    assert "best validation loss" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()][-1]

    # forgetting: the same questions before and after, on the adapter just made (three questions keep it quick)
    questions = limits.load_questions()[:3]
    report = limits.forgetting(out, questions)
    assert len(report.before.rows) == len(report.after.rows) == 3
    assert report.before.adapter is None and report.after.adapter == str(out)
    assert set(report.forgotten).isdisjoint(report.gained)
    assert "before" in report.summary() and len(report.table().splitlines()) == 4
    json.dumps(report.to_dict())

    # data size: a finished run is reused, not trained again
    study = limits.data_size_study([2], train_file=str(train), folder=tmp_path / "study", reuse={2: result})
    assert study[0].output_dir == result.output_dir and study[0].epochs == result.steps * 2 / 2
    assert "early stop" in limits.size_table(study)
    assert plots.png(plots.data_size_curves(study)).startswith(b"\x89PNG")


def test_forgetting_needs_an_adapter(tmp_path):
    with pytest.raises(LessonError, match="holds no adapter"):
        limits.forgetting(tmp_path)


def test_cli_limits_refuses_bad_input_before_training(tmp_path):
    done = run_cli("limits", "data-size", "--sizes", "10,lots", "--out", str(tmp_path / "x"))
    assert done.returncode != 0 and "'lots' is not a number" in done.stderr
    assert not (tmp_path / "x").exists()
    done = run_cli("limits", "forgetting", "--adapter", str(tmp_path))
    assert done.returncode != 0 and "holds no adapter" in done.stderr


def test_the_general_examples_to_mix_in_are_not_the_questions_that_measure_forgetting():
    """Training on the 24 questions would measure memory, not forgetting: the examples to mix in are others."""
    asked = {q.question.lower() for q in limits.load_questions()}
    examples = limits.general_examples()
    prompts = {e["messages"][0]["content"].removesuffix(" Answer in one short sentence.").lower() for e in examples}
    assert len(examples) == len(prompts) >= 40 and not asked & prompts
    assert all(e["messages"][0]["content"].endswith("Answer in one short sentence.") for e in examples)  # as knowledge() asks


def test_forgetting_is_judged_with_a_paired_test():
    """9 forgotten against 4 gained (notebook 08's run) is p = 0.27: said to be possibly chance, not a finding."""
    from lessonlib.limits import ForgettingReport, KnowledgeResult

    def result(marks):
        return KnowledgeResult(None, sum(marks) / len(marks), [{"question": f"q{i}", "reply": "", "correct": m} for i, m in enumerate(marks)])

    before = [True] * 9 + [False] * 4 + [True] * 8 + [False] * 3
    after = [False] * 9 + [True] * 4 + [True] * 8 + [False] * 3
    report = ForgettingReport(result(before), result(after))
    assert (len(report.forgotten), len(report.gained)) == (9, 4)
    assert round(report.p_value, 2) == 0.27 and "could be chance" in report.summary()
    lopsided = ForgettingReport(result([True] * 12), result([False] * 12))
    assert lopsided.p_value < 0.001 and "unlikely to be chance" in lopsided.summary()
    assert ForgettingReport(result([True]), result([True])).p_value == 1.0


def test_the_questions_exist_in_french_asked_in_french():
    english, french = limits.load_questions(), limits.load_questions(lang="fr")
    assert len(french) == len(english) == 24 and {q.lang for q in french} == {"fr"}
    assert limits.prompt(french[0]) == "Quelle est la capitale de la France ? Réponds en une phrase courte."
    assert limits.prompt(english[0]) == "What is the capital of France? Answer in one short sentence."
    with pytest.raises(LessonError, match="no questions in 'de'"):
        limits.load_questions(lang="de")
