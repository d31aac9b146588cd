"""Your own data (#42): each file shape, the split, each metric, the too-small case, each bad input, and the
command line's project steps (replies faked here: these tests load no model; the real run is measured under the lock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from lessonlib import metrics
from lessonlib.cli import main
from lessonlib.data import splitting
from lessonlib.data.tables import read_table
from lessonlib.errors import LessonError

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ROOT / "data" / "topics" / "questions.csv"


def _chat(user: str, reply: str, system: str | None = None) -> dict:
    return {"messages": ([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}


def _labelled(n: int) -> list[tuple[str, str]]:
    """n short texts with two labels, spam and ham, in the spirit of a spam filter's data."""
    return [(f"WIN a free prize number {i} now" if i % 3 == 0 else f"see you at {i} for lunch", "spam" if i % 3 == 0 else "ham")
            for i in range(n)]


# ------------------------------------------------------------------------------------------------
# File shapes
# ------------------------------------------------------------------------------------------------

def test_chat_jsonl_without_final_newline_and_a_repeated_system_prompt(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(_chat(f"q{i}", f"a{i}", "Be brief.")) for i in range(12)), encoding="utf-8")
    table = read_table(path)
    assert table.shape == "chat" and len(table.examples) == 12
    assert table.examples[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert read_table(path, system="Other.").examples[3]["messages"][0]["content"] == "Other."


def test_prompt_completion_jsonl(tmp_path):
    path = tmp_path / "pc.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"2+{i}?", "completion": str(2 + i)}) + "\n" for i in range(5)), encoding="utf-8")
    table = read_table(path)
    assert table.shape == "prompt-completion"
    assert table.examples[2]["messages"] == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def test_a_spreadsheet_export_latin1_with_empty_trailing_columns(tmp_path):
    """The most shared copy of a spam set has this shape: Latin-1, header v1,v2, three empty trailing columns."""
    path = tmp_path / "spam.csv"
    rows = ["v1,v2,,,"] + [f'{label},"{text}, café",,,' for text, label in _labelled(9)]
    path.write_bytes("\r\n".join(rows).encode("latin-1"))
    table = read_table(path, input="v2", output="v1")
    assert (table.shape, table.encoding, table.columns) == ("csv", "latin-1", ["v1", "v2"])
    assert table.examples[0]["messages"] == [{"role": "user", "content": "WIN a free prize number 0 now, café"},
                                             {"role": "assistant", "content": "spam"}]
    assert table.lines[0] == 2


def test_a_tsv_without_header_names_its_columns_by_number(tmp_path):
    path = tmp_path / "SMSSpamCollection"
    path.write_text("".join(f"{label}\t{text}\n" for text, label in _labelled(8)), encoding="utf-8")
    table = read_table(path, input="2", output="1")
    assert table.shape == "tsv" and table.columns == ["1", "2"] and len(table.examples) == 8


def test_the_shipped_csv_has_quoted_fields_and_a_header():
    table = read_table(TOPICS, input="question", output="topic")
    assert len(table.examples) >= 250
    assert any("," in splitting.input_of(e) for e in table.examples)
    assert set(splitting.label_counts(table.examples)) == {"ai", "coding", "emotion", "trivia"}


def test_a_saved_dataset_folder(tmp_path):
    from datasets import Dataset

    Dataset.from_list([{"text": t, "label": lab} for t, lab in _labelled(6)]).save_to_disk(str(tmp_path / "ds"))
    table = read_table(tmp_path / "ds", input="text", output="label")
    assert table.shape == "dataset" and len(table.examples) == 6
    with pytest.raises(LessonError, match="use one of its columns: text, label"):
        read_table(tmp_path / "ds", input="body", output="label")


# ------------------------------------------------------------------------------------------------
# Split and evidence
# ------------------------------------------------------------------------------------------------

def test_the_split_is_reproducible_and_stratified():
    examples = [_chat(t, lab) for t, lab in _labelled(90)]
    a = splitting.split_examples(examples, seed=3, labels=True)
    b = splitting.split_examples(examples, seed=3, labels=True)
    assert a.train == b.train and a.test == b.test
    assert a.test != splitting.split_examples(examples, seed=4, labels=True).test
    share = {name: splitting.label_counts(getattr(a, name))["spam"] / len(getattr(a, name)) for name in ("train", "test")}
    assert abs(share["train"] - 1 / 3) < 0.05 and abs(share["test"] - 1 / 3) < 0.05
    assert a.stratified and splitting.leakage(a.train, a.test) == 0


def test_a_learners_own_test_file_is_used_as_given():
    examples, own = [_chat(t, lab) for t, lab in _labelled(30)], [_chat("mine", "ham")]
    parts = splitting.split_examples(examples, test_examples=own)
    assert parts.test == own and parts.own_test and len(parts.train) + len(parts.valid) == 30


def test_evidence_says_in_numbers_how_thin_a_small_test_set_is():
    assert splitting.evidence(12).sentence() == "12 test examples: an interval of about ±0.28; 43 give ±0.15"
    assert not splitting.evidence(12).enough and splitting.evidence(43).enough


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------

def test_each_metric_and_its_inference(tmp_path):
    assert metrics.accuracy("Spam.\nIt offers a prize.", "spam") == 1.0
    assert metrics.exact_match("The Paris", "paris") == 1.0 and metrics.exact_match("Lyon", "paris") == 0.0
    assert metrics.token_f1("a red apple", "red apple pie") == 0.8
    assert metrics.json_match('```json\n{"a": 1}\n```', '{"a": 1}') == 1.0 and metrics.json_match("no", '{"a": 1}') == 0.0
    assert metrics.infer_metric(["ham", "spam"] * 20)[0] == "accuracy"
    assert metrics.infer_metric(['{"a": 1}', '[1, 2]'])[0] == "json"
    assert metrics.infer_metric(["Paris", "Rome", "Ottawa"])[0] == "exact_match"
    assert metrics.infer_metric(["a long answer of many words here"] * 3)[0] == "token_f1"
    own = tmp_path / "mine.py"
    own.write_text("def score(reply, reference):\n    return float(reference in reply)\n", encoding="utf-8")
    assert metrics.scorer("custom", own)("the answer is 42", "42") == 1.0
    with pytest.raises(LessonError, match="unknown metric 'f2'"):
        metrics.scorer("f2")


# ------------------------------------------------------------------------------------------------
# Bad input: exit 2, one clear line, nothing written
# ------------------------------------------------------------------------------------------------

def _bad(tmp_path: Path, name: str, content: bytes, *extra: str) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    result = run_cli("project", "new", str(tmp_path / "p"), "--data", str(path), *extra)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "p").exists()
    return result.stderr


def test_bad_inputs_are_refused_with_exit_2_and_nothing_written(tmp_path):
    assert "is empty" in _bad(tmp_path, "empty.csv", b"\n\n", "--input", "a", "--output", "b")
    assert "binary file" in _bad(tmp_path, "model.csv", bytes(range(256)) * 4, "--input", "a", "--output", "b")
    assert "use one of its columns: v1, v2" in _bad(tmp_path, "spam.csv", b"v1,v2,,,\nham,hello,,,\nspam,win,,,\n", "--input", "text", "--output", "v1")
    assert "name its input column" in _bad(tmp_path, "spam2.csv", b"v1,v2\nham,hello\nspam,win\n")


def _project(tmp_path: Path, rows: list[tuple[str, str]], *extra: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows), encoding="utf-8")
    assert main(["project", "new", str(tmp_path / "p"), "--data", str(path), "--input", "text", "--output", "label", *extra]) == 0
    return tmp_path / "p"


def test_one_label_only_and_all_duplicates_are_refused(tmp_path, capsys):
    folder = _project(tmp_path / "one", [(f"text {i}", "ham") for i in range(30)], "--metric", "accuracy")
    assert main(["project", "run", str(folder), "--step", "prepare"]) == 2
    assert "every output is the same label ('ham')" in capsys.readouterr().err
    folder = _project(tmp_path / "dup", [("same text", "ham")] * 30)
    assert main(["project", "run", str(folder), "--step", "prepare"]) == 2
    assert "all 30 examples are the same example" in capsys.readouterr().err


def test_nothing_a_learner_made_is_overwritten_without_overwrite(tmp_path, capsys):
    folder = _project(tmp_path, _labelled(40))
    assert main(["project", "new", str(folder), "--data", str(tmp_path / "data.csv"), "--input", "text", "--output", "label"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["project", "new", str(folder), "--data", str(tmp_path / "data.csv"), "--input", "text", "--output", "label", "--overwrite"]) == 0


# ------------------------------------------------------------------------------------------------
# The steps, with replies faked
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def fake_replies(monkeypatch):
    """Replies without a model: spam for texts that say WIN, else a wrong label half of the time."""
    from lessonlib import models

    def fake(conversations, **kwargs):
        replies = []
        for i, c in enumerate(conversations):
            text = c[-1]["content"]
            replies.append("spam" if "WIN" in text else "ham" if i % 2 else "spam")
        return replies, 0.01 * len(conversations)

    monkeypatch.setattr(models, "generate_many_timed", fake)


def test_prepare_and_baselines_and_the_decision_on_too_small_a_test_set(tmp_path, capsys, fake_replies):
    folder = _project(tmp_path, _labelled(36))
    assert main(["project", "run", str(folder), "--step", "prepare"]) == 0
    prepared = json.loads((folder / "results" / "prepare.json").read_text())
    assert prepared["metric"] == "accuracy" and prepared["stratified"] and prepared["sizes"]["test"] == 9
    assert "9 test examples: an interval of about ±0.33; 43 give ±0.15" in capsys.readouterr().err
    assert main(["project", "run", str(folder), "--step", "baselines", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    scores = {r["strategy"]: r["score"] for r in report["baselines"]["results"]}
    assert set(scores) == {"trivial", "zero-shot", "few-shot", "rag"}
    assert scores["trivial"] == pytest.approx(6 / 9, abs=1e-3)  # ham is the most common label
    assert all(r["interval"] and "per_label_f1" in r for r in report["baselines"]["results"])
    assert main(["project", "run", str(folder), "--step", "train"]) == 1  # too small: refused without --anyway
    assert "train anyway with --anyway" in capsys.readouterr().err
    assert main(["project", "run", str(folder), "--step", "decide"]) == 0
    decision = json.loads((folder / "results" / "decide.json").read_text())
    assert decision["recommendation"] == "collect more data first"
    assert any("evidence is too thin" in r for r in decision["reasons"])
    assert "Recommendation: collect more data first" in (folder / "report.md").read_text()


def test_an_own_test_file_is_used_as_given_and_labels_get_one_system_prompt(tmp_path):
    own = tmp_path / "mine.csv"
    tmp_path.mkdir(exist_ok=True)
    own.write_text("text,label\n" + "".join(f"{t} (mine),{lab}\n" for t, lab in _labelled(50)), encoding="utf-8")
    folder = _project(tmp_path / "a", _labelled(60), "--test", str(own))
    assert main(["project", "run", str(folder), "--step", "prepare"]) == 0
    test = [json.loads(line) for line in (folder / "data" / "test.jsonl").read_text().splitlines()]
    assert len(test) == 50 and all(e["messages"][1]["content"].endswith("(mine)") for e in test)
    for name in ("train", "test"):
        for line in (folder / "data" / f"{name}.jsonl").read_text().splitlines():
            roles = [m["role"] for m in json.loads(line)["messages"]]
            assert roles == ["system", "user", "assistant"]
    assert json.loads(line)["messages"][0]["content"] == "Answer with exactly one of these labels: ham, spam."


def test_a_step_before_its_inputs_says_which_to_run(tmp_path, capsys):
    folder = _project(tmp_path, _labelled(40))
    assert main(["project", "run", str(folder), "--step", "baselines"]) == 1
    assert "--step prepare" in capsys.readouterr().err
    assert main(["project", "run", str(tmp_path / "nowhere")]) == 2


# ------------------------------------------------------------------------------------------------
# The whole run, for real (a few training steps): the model to take away answers without lessonlib
# ------------------------------------------------------------------------------------------------

@pytest.mark.model
@pytest.mark.slow
def test_a_whole_run_leaves_a_merged_model_that_plain_transformers_answers_with(tmp_path, model_dir):
    """Every step on a chat JSONL (the other shape a learner brings), then a fresh Python that imports only transformers."""
    import subprocess
    import sys

    import yaml

    data = tmp_path / "chat.jsonl"  # every fifth row of the shipped topics set (written by people), as chat JSONL
    rows = read_table(TOPICS, input="question", output="topic").examples[::5]
    system = "Say the topic of the message: ai, coding, emotion or trivia."
    data.write_text("\n".join(json.dumps(_chat(e["messages"][0]["content"], e["messages"][1]["content"], system)) for e in rows), encoding="utf-8")
    result = run_cli("project", "new", str(tmp_path / "p"), "--data", str(data))
    assert result.returncode == 0, result.stderr
    settings_path = tmp_path / "p" / "project.yaml"
    settings = yaml.safe_load(settings_path.read_text())
    settings.update(max_steps=6, batch_size=2)
    settings_path.write_text(yaml.safe_dump(settings))
    result = run_cli("project", "run", str(tmp_path / "p"), "--anyway", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["prepare"]["metric"] == "accuracy" and report["train"]["steps"] >= 1
    assert report["decide"]["recommendation"] == "collect more data first"  # 14 test examples: too thin, and it says so
    assert report["prepare"]["sizes"]["test"] == 14 and report["prepare"]["stratified"]
    assert {"vs_best", "vs_trivial"} <= set(report["evaluate"])
    merged = Path(report["export"]["merged"])
    assert (merged / "README.md").is_file() and (tmp_path / "p" / "export" / "openai" / "train.jsonl").is_file()
    assert "trl sft" in (tmp_path / "p" / "export" / "trl-sft.sh").read_text()
    script = (
        "import sys\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"t = AutoTokenizer.from_pretrained({str(merged)!r}); m = AutoModelForCausalLM.from_pretrained({str(merged)!r})\n"
        "x = t.apply_chat_template([{'role': 'user', 'content': 'can you write a linked list?'}], add_generation_prompt=True, return_tensors='pt', return_dict=True)\n"
        "y = m.generate(**x, max_new_tokens=4, do_sample=False)\n"
        "print(repr(t.decode(y[0, x['input_ids'].shape[1]:], skip_special_tokens=True)))\n"
        "assert not any(name.startswith(('lessonlib', 'peft', 'trl')) for name in sys.modules)\n")
    answered = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
                              env={k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"})
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert answered.stdout.strip() not in ("", "''")
