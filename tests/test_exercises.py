"""Every notebook's exercises: each has a check and a solution, the solution passes, a wrong answer gets a hint."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from french import code_tokens, english_share

from lessonlib import exercises, i18n
from lessonlib.exercises import EXERCISES, check, show_solution

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def _run(code: str, scope: dict) -> dict:
    exec(compile(code, "<exercise>", "exec"), scope)  # noqa: S102 - a solution is code for the learner to run
    return scope


def _verdict(ex: exercises.Exercise, scope: dict) -> exercises.Verdict:
    context = {name: eval(expression, scope) for name, expression in ex.context.items()}
    return check(ex.id, *(scope[name] for name in ex.answer), **context)


def _answer_forms(value, depth: int = 0) -> list[str]:
    """The ways a hint could write an answer out: a number (as printed to 2 or 3 places, or whole), a
    bool, a short string, and the same inside a list, a dict or a dataclass (functions, reports and
    other objects are not written out)."""
    if depth > 2:
        return []
    if isinstance(value, bool):
        return [str(value)]
    if isinstance(value, int):
        return [str(value), f"{value:,}"] if abs(value) >= 3 else []
    if isinstance(value, float):
        return [f"{value:.2f}", f"{value:.3f}"] if abs(value) >= 0.005 and not value.is_integer() else _answer_forms(int(value), depth)
    if isinstance(value, str):
        return [value] if 3 <= len(value) <= 40 and "\n" not in value else []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return [form for v in value.values() for form in _answer_forms(v, depth + 1)]
    if isinstance(value, (list, tuple)) and len(value) <= 8:
        return [form for v in value for form in _answer_forms(v, depth + 1)]
    return []


def _states(message: str, form: str) -> bool:
    """Whether ``message`` writes ``form`` out as a value: a number not inside a longer one, a word on its own
    (a bool or a word the learner must choose, such as "noise", counts only when the hint says it is the answer)."""
    if re.fullmatch(r"[\d.,$-]+", form):
        return re.search(rf"(?<![\d.,]){re.escape(form)}(?![\d])", message) is not None
    return re.search(rf"\b(?:should be|answer is|is|answer:)\s*[`'\"]?{re.escape(form)}\b", message, re.IGNORECASE) is not None


def _task_text(exercise_id: str) -> str:
    """What the learner reads of an exercise: its task (markdown) and the code cell it starts from."""
    path = next((ROOT / "notebooks").glob(f"{exercise_id[:2]}-*.ipynb"))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    start = next(i for i, c in enumerate(cells) if f"Exercise {exercise_id} " in "".join(c["source"]))
    return "\n".join("".join(c["source"]) for c in cells[start:start + 2])


def _in_french(ex: exercises.Exercise, solved_scope: dict, solved: exercises.Verdict, wrong: exercises.Verdict) -> None:
    """The same answers checked in French: the same verdicts, in French; the solution shown in French is the same code."""
    english_solution = exercises.solution(ex.id)
    i18n.set_language("fr")
    try:
        french = _verdict(ex, solved_scope), _verdict(ex, _run(ex.wrong, _run(ex.setup, {})))
        for verdict, english in zip(french, (solved, wrong)):
            assert verdict.passed == english.passed and verdict.message != english.message, (ex.id, verdict)
            assert english_share(str(verdict)) < 0.1, (ex.id, str(verdict))
        shown = str(getattr(show_solution(ex.id), "data", ""))
        french_solution = exercises.solution(ex.id)
        assert french_solution in shown and f"Exercice {ex.id} {ex.tier} :" in shown
        assert code_tokens(french_solution) == code_tokens(english_solution)
        if [p for p in i18n.pieces(french_solution) if p.kind == "string"] != [p for p in i18n.pieces(ex.solution) if p.kind == "string"]:
            assert _verdict(ex, _run(french_solution, _run(ex.setup, {}))).passed  # its French strings change values
    finally:
        i18n.set_language(None)


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_the_solution_passes_its_check_and_a_wrong_answer_gets_a_hint(exercise_id, tmp_path, monkeypatch):
    ex = EXERCISES[exercise_id]
    monkeypatch.chdir(tmp_path)  # as a notebook, which runs in its own folder and writes under runs/
    own_service = "service" in ex.setup  # its own: the jobs it makes must not show up in notebook 06's job list
    if own_service:
        from jupyter_helpers import free_port

        monkeypatch.setenv("LESSONLIB_SERVICE_PORT", str(free_port()))
        monkeypatch.setenv("LESSONLIB_SERVICE_STATE", str(tmp_path / "service"))
    try:
        assert ex.solution and ex.wrong and 1 <= ex.stars <= 3
        solved_scope = _run(ex.solution, _run(ex.setup, {}))
        solved = _verdict(ex, solved_scope)
        assert solved.passed, f"{exercise_id}: {solved.message}"
        wrong = _verdict(ex, _run(ex.wrong, _run(ex.setup, {})))
        assert not wrong.passed and len(wrong.message) > 20, f"{exercise_id}: {wrong}"
        assert "Traceback" not in wrong.message
        task = _task_text(exercise_id)  # a value the task itself gives is no secret
        given_away = [form for name in ex.answer for form in _answer_forms(solved_scope[name])
                      if _states(wrong.message, form) and form not in task]
        assert not given_away, f"{exercise_id}: the hint to a wrong answer states the answer {given_away}: {wrong.message}"
        assert ex.solution in str(getattr(show_solution(exercise_id), "data", show_solution(exercise_id)))
        _in_french(ex, solved_scope, solved, wrong)
    finally:
        if own_service:
            from lessonlib import service

            service.stop(tmp_path / "service")


def test_a_hint_points_the_way_without_giving_the_answer():
    """05.1's hint names the method (the interval of the paired differences), not the interval; 07.1's names where
    AutoTrain's own names are (the configuration), not the names."""
    from lessonlib.evaluate import bootstrap_interval
    from lessonlib.exercises import n05_evaluate

    low, high = bootstrap_interval([t - f for t, f in zip(n05_evaluate._TUNED_F1, n05_evaluate._FEW_SHOT_F1)])
    right = "noise" if low <= 0 <= high else "gain"
    hint = check("05.1", "gain" if right == "noise" else "noise").message
    assert "bootstrap_interval" in hint and f"{low:+.3f}" not in hint and f"{high:+.3f}" not in hint
    from lessonlib.cloud import autotrain

    config = autotrain.build_config("runs/autotrain/recipes-data")
    config["params"]["learning_rate"] = 1e-4  # TRL's name, not AutoTrain's
    hint = check("07.1", config).message
    assert "learning_rate" in hint and "`lr`" not in hint and "config['params']" in hint


def test_settings_chosen_on_the_test_split_get_a_hint(tmp_path):
    """05.3 chooses hyper-parameters: a report on the test split is refused, whatever its score."""
    from lessonlib.evaluate import EvalReport, StrategyResult

    (tmp_path / "adapter_config.json").write_text('{"r": 16, "target_modules": "all-linear"}', encoding="utf-8")
    tuned = StrategyResult("fine-tuned", 16, {"f1": 0.9}, 119, 30, 0.5, 0.07, per_example=[0.9] * 16)
    on_test = EvalReport("recipes", "smollm2", "gpt-4o-mini", "2025-06-01", 3, [tuned], "f1", adapter=str(tmp_path))
    verdict = check("05.3", on_test)
    assert not verdict.passed and 'split="valid"' in verdict.message
    on_valid = EvalReport("recipes", "smollm2", "gpt-4o-mini", "2025-06-01", 3, [tuned], "f1", adapter=str(tmp_path), split="valid")
    assert check("05.3", on_valid).passed


def test_a_prompt_that_calls_the_library_it_should_replace_gets_a_hint():
    """02.3 asks for a few-shot prompt written by hand: calling ``prompting.few_shot_messages`` is refused."""
    from lessonlib import prompting

    verdict = check("02.3", lambda train, query: prompting.few_shot_messages(train, query))
    assert not verdict.passed and "without `prompting.few_shot_messages`" in verdict.message


def test_an_unfinished_or_odd_answer_gets_a_hint_not_a_traceback():
    assert "replace the `...`" in check("04.1", ...).message
    assert "show_solution('00.1')" in check("00.1", None).message
    assert "failed with" in check("03.2", lambda example: example["nope"]).message  # the learner's function raises
    assert "takes 1 value" in check("04.1", 1, 2).message
    assert not check("07.1", {"task": "llm-sft"}).passed
    with pytest.raises(Exception, match="no exercise"):
        check("99.9", 1)


def test_every_notebook_ends_with_exercises_that_are_checked_and_solved():
    for path in NOTEBOOKS:
        number = path.name[:2]
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        listed = [ex.id for ex in exercises.listing(number)]
        assert 2 <= len(listed) <= 4, f"{path.name}: {len(listed)} exercises"
        checked = re.findall(r'check\("(\d\d\.\d)"', code)
        assert sorted(set(checked)) == listed, f"{path.name}: checks {checked}, exercises {listed}"
        for exercise_id in listed:
            assert f'show_solution("{exercise_id}")' in text, f"{path.name}: no way to reveal {exercise_id}'s solution"
            assert f"Exercise {exercise_id}" in text, f"{path.name}: {exercise_id} has no task"


def _headings(number: str) -> set[str]:
    path = next((ROOT / "notebooks").glob(f"{number}-*.ipynb"))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return {line[3:].strip() for c in cells if c["cell_type"] == "markdown"
            for line in "".join(c["source"]).splitlines() if line.startswith("## ")}


def test_the_assignment_page_is_current_and_every_step_points_at_a_real_section():
    from lessonlib import course

    assert (ROOT / "notebooks" / "assignment.md").read_text(encoding="utf-8") == course.assignment_page(), \
        "regenerate: python -c \"from lessonlib import course; open('notebooks/assignment.md', 'w').write(course.assignment_page())\""
    assert len(course.TUTORIALS) == 4
    for tutorial in course.TUTORIALS:
        for step in tutorial.steps:
            assert step.section == "-" or step.section in _headings(step.notebook), (tutorial.key, step)
    for home in sorted({tutorial.home for tutorial in course.TUTORIALS}):  # each tutorial notebook shows its map, current
        path = next((ROOT / "notebooks").glob(f"{home}-*.ipynb"))
        text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
        assert course.tutorial_map(home) in text, f"{path.name}: its 'The original, step by step' map is not course.tutorial_map({home!r})"


def test_every_link_the_lesson_gives_is_in_the_notebook_where_it_belongs():
    from lessonlib import course

    def text(number: str) -> str:
        return next((ROOT / "notebooks").glob(f"{number}-*.ipynb")).read_text(encoding="utf-8")

    expected = {"00": [course.LESSON_URL, "assignment.md"], "02": [course.TALK_URL],
                "04": [t.url for t in course.TUTORIALS if t.key == "trl"] + ["huggingface.co/docs/trl", "huggingface.co/docs/transformers",
                                                                              "huggingface.co/docs/datasets"],
                "06": [t.url for t in course.TUTORIALS if t.key in ("openai", "azure")],
                "07": [t.url for t in course.TUTORIALS if t.key == "autotrain"]}
    for number, links in expected.items():
        for link in links:
            assert link in text(number), f"notebook {number} does not link {link}"


def test_a_gain_counts_in_02_2_by_the_rule_decide_applies():
    """02.2 is judged by ``decide.gain_counts``, the rule ``decide`` applies: a mean of +0.075 with an interval of
    +0.033 to +0.117 counts (at least min_gain, above 0), and holding the interval's low end to min_gain gets a hint."""
    from lessonlib.decide import Answers, decide
    from lessonlib.exercises import n02_when_and_why as n02

    prompt, tuned = n02._PROMPT_SCORES_02, n02._TUNED_SCORES_02
    paired = {"few-shot": prompt, "fine-tuned": tuned}
    scores = {name: sum(values) / len(values) for name, values in paired.items()}
    decision = decide(Answers(tried_prompting=True, examples=200, min_gain=n02._MIN_GAIN_02), scores, paired)
    assert decision.recommendation == "fine-tune", decision.reasons  # the checklist counts this gain
    assert check("02.2", True).passed
    too_strict = check("02.2", False)  # the low end held to min_gain (+0.033 < 0.05)
    assert not too_strict.passed and "`min_gain`" in too_strict.message and "above 0" in too_strict.message


def test_a_checklist_answer_left_at_its_default_gets_a_hint():
    """02.1's scenario differs from every default it asks about: leaving the budget or the target out is not right."""
    from lessonlib.decide import Answers

    told = {"tried_prompting": True, "tried_retrieval": True, "examples": 400, "fine_tune_monthly_usd": 40}
    assert check("02.1", Answers(**told, target=0.75, monthly_budget_usd=30)).passed
    no_budget = check("02.1", Answers(**told, target=0.75))
    assert not no_budget.passed and "monthly_budget_usd" in no_budget.message and "default" in no_budget.message
    no_target = check("02.1", Answers(**told, monthly_budget_usd=30))
    assert not no_target.passed and "`target`" in no_target.message
    per_year = check("02.1", Answers(**told, target=0.75, monthly_budget_usd=360))
    assert not per_year.passed and "per month" in per_year.message


def test_a_right_few_shot_prompt_passes_whatever_the_model_answers(monkeypatch):
    """02.3 judges what the learner controls, the prompt's shape; the model's F1 gain is shown with its interval, not
    required: the right prompt passes even when the model answers it worse than zero-shot."""
    from lessonlib import corpora, data, models

    test = data.read_examples(corpora.split_path("recipes", "test"))[:6]
    gold = [q["messages"][-1]["content"] for q in test]
    monkeypatch.setattr(models, "generate_many", lambda conversations, **_: ["I do not know."] * 6 + gold)  # zero-shot wins
    scope = _run(EXERCISES["02.3"].solution, {})
    verdict = check("02.3", scope["make_prompt"])
    assert verdict.passed and "3 solved examples" in verdict.message and "a real loss" in verdict.message, verdict.message

    def swapped(train, query):  # each recipe followed by the next one's answer
        messages = scope["make_prompt"](train, query)
        messages[2], messages[4] = messages[4], messages[2]
        return messages

    def no_system(train, query):
        return scope["make_prompt"](train, query)[1:]

    def every_example(train, query):
        return [query["messages"][0]] + [m for e in train[:40] for m in e["messages"][1:3]] + [query["messages"][1]]

    for wrong, words in ((swapped, "not the answer to the recipe just before it"), (no_system, "'system' message"),
                         (every_example, "40 solved examples")):
        verdict = check("02.3", wrong)
        assert not verdict.passed and words in verdict.message, (wrong.__name__, verdict.message)


def test_a_step_of_4_examples_is_counted_with_gradient_accumulation():
    """04.3 asks for 4 examples a step: 2 a pass × 2 passes is right, 4 a pass × 2 passes is 8 (a hint)."""
    from trl import SFTConfig

    settings = {"output_dir": "runs/04-one-epoch", "num_train_epochs": 1, "save_strategy": "steps", "save_steps": 10,
                "save_total_limit": 2, "assistant_only_loss": True, "use_cpu": True, "report_to": "none"}
    assert check("04.3", SFTConfig(per_device_train_batch_size=2, gradient_accumulation_steps=2, **settings)).passed
    eight = check("04.3", SFTConfig(per_device_train_batch_size=4, gradient_accumulation_steps=2, **settings))
    assert not eight.passed and "gradient_accumulation_steps" in eight.message and "8" in eight.message


@pytest.mark.parametrize("status,passed", [("cancelled", True), ("succeeded", False), ("failed", False), ("running", False)])
def test_only_a_cancelled_job_passes_06_1(monkeypatch, status, passed):
    """06.1 asks to cancel the job: one that ended on its own was never cancelled, whatever its end."""
    from types import SimpleNamespace

    from lessonlib import service

    method = SimpleNamespace(model_dump=lambda: {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})
    job = SimpleNamespace(id="ftjob-1", suffix="mine", method=method, status=status)
    client = SimpleNamespace(fine_tuning=SimpleNamespace(jobs=SimpleNamespace(retrieve=lambda job_id: job)))
    monkeypatch.setattr(service, "client", lambda *args, **kwargs: client)
    verdict = check("06.1", "ftjob-1")
    assert verdict.passed == passed, verdict.message
    if status in ("succeeded", "failed"):
        assert "never cancelled" in verdict.message


def test_a_task_points_only_to_model_calls_its_notebook_has_shown():
    """An exercise that tells the learner to call ``models.something`` names a call a code cell above it made."""
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for index, cell in enumerate(cells):
            source = "".join(cell["source"])
            if cell["cell_type"] != "markdown" or not source.startswith("### Exercise"):
                continue
            shown = "\n".join("".join(c["source"]) for c in cells[:index] if c["cell_type"] == "code")
            for call in set(re.findall(r"\bmodels\.\w+\(", source)):
                assert call in shown, f"{path.name}: {source.splitlines()[0]} points to {call}), which no cell above calls"
