"""The data doctor: one tiny file per finding code, exit codes, exact cookbook token counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from lessonlib import corpora, costs, data, tokens
from lessonlib.errors import LessonError

SYS = {"role": "system", "content": "You are helpful."}
USER = {"role": "user", "content": "Hi"}
BOT = {"role": "assistant", "content": "Hello!"}
GOOD = {"messages": [SYS, USER, BOT]}
# Built at run time so that no key-shaped string sits in the repository.
FAKE_KEY = "sk-" + "proj-" + "A1b2C3d4" * 4


def _lines(*records) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"


def _tool_example(call_id="call_1", answer_id="call_1"):
    return {
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "messages": [
            SYS,
            USER,
            {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": answer_id, "content": "sunny"},
            BOT,
        ],
    }


CASES = {
    "file_empty": "",
    "blank_line": _lines(GOOD, "", GOOD),
    "invalid_json": _lines(GOOD, '{"messages": [}'),
    "data_type": _lines([1, 2]),
    "unrecognized_top_level_key": _lines({**GOOD, "meta": 1}),
    "missing_messages_list": _lines({"msgs": []}),
    "empty_messages": _lines({"messages": []}),
    "bad_tools": _lines({**GOOD, "parallel_tool_calls": "yes"}),
    "message_missing_key": _lines({"messages": [SYS, {"content": "Hi"}, BOT]}),
    "message_unrecognized_key": _lines({"messages": [SYS, {**USER, "mood": "happy"}, BOT]}),
    "unrecognized_role": _lines({"messages": [SYS, {"role": "human", "content": "Hi"}, BOT]}),
    "missing_content": _lines({"messages": [SYS, {"role": "user", "content": "  "}, BOT]}),
    "content_wrong_type": _lines({"messages": [SYS, {"role": "user", "content": 42}, BOT]}),
    "field_wrong_type": _lines({"messages": [SYS, {**USER, "name": 7}, BOT]}),
    "bad_weight": _lines({"messages": [SYS, USER, {**BOT, "weight": 0.5}]}),
    "bad_tool_call": _lines({"messages": [SYS, USER, {"role": "assistant", "tool_calls": [{"type": "function"}]}, BOT]}),
    "tool_call_id_mismatch": _lines(_tool_example(answer_id="call_9")),
    "example_missing_assistant_message": _lines({"messages": [SYS, USER]}),
    "no_trainable_message": _lines({"messages": [SYS, USER, {**BOT, "weight": 0}]}),
    "no_system_message": _lines({"messages": [USER, BOT]}),
    "no_user_message": _lines({"messages": [SYS, BOT]}),
    "duplicate_example": _lines(GOOD, GOOD),
    "personal_data": _lines({"messages": [SYS, {"role": "user", "content": "Write to jane.doe@example.org or call 06 12 34 56 78"}, BOT]}),
    "secret": _lines({"messages": [SYS, {"role": "user", "content": f"my key is {FAKE_KEY}"}, BOT]}),
    "too_few_examples": _lines(GOOD),
}


def test_every_code_has_a_case():
    assert set(CASES) | {"bad_encoding", "too_long"} == set(data.CODES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_finding_code(tmp_path, code):
    path = tmp_path / f"{code}.jsonl"
    path.write_text(CASES[code], encoding="utf-8")
    report = data.validate(path)
    assert report.counts[code] >= 1, report.summary()
    finding = next(f for f in report.findings if f.code == code)
    assert finding.message and (finding.line is None or finding.line >= 1)
    assert report.ok == (data.CODES[code][0] != "error") or code in {"file_empty"}


def test_bad_encoding(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + '{"messages": [{"role": "user", "content": "café"}]}'.encode("latin-1") + b"\n")
    report = data.validate(path)
    assert [f.line for f in report.findings if f.code == "bad_encoding"] == [2]


def test_parallel_check_equals_single_process(tmp_path):
    lines = corpora.split_path("recipes", "train").read_text(encoding="utf-8").splitlines()
    lines[10] = "not json"
    lines[150] = lines[3]  # a duplicate across the two halves
    lines[120] = json.dumps({"messages": [USER, BOT]})
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines[:100] + [""] + lines[100:]) + "\n", encoding="utf-8")
    one = data.validate(path, workers=1)
    two = data.validate(path, workers=2)
    assert one.to_dict() == two.to_dict()
    assert list(one.example_lines) == list(two.example_lines)
    assert {(f.line, f.code) for f in two.findings} >= {(11, "invalid_json"), (101, "blank_line"), (152, "duplicate_example"), (122, "no_system_message")}


def test_too_long_for_the_model(tmp_path):
    path = tmp_path / "long.jsonl"
    long_text = "word " * 17_000
    path.write_text(_lines({"messages": [SYS, {"role": "user", "content": long_text}, BOT]}))
    assert data.validate(path, model="gpt-3.5-turbo").counts["too_long"] == 1
    assert data.validate(path, model="gpt-4o-mini").counts["too_long"] == 0  # 65k context


def test_everything_the_format_allows_is_accepted(tmp_path):
    allowed = [
        _tool_example(),
        {"messages": [SYS, {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Hi"}]}, {**BOT, "weight": 1}]},
        {"messages": [SYS, USER, {**BOT, "weight": 0}, USER, BOT], "parallel_tool_calls": False},
    ]
    path = tmp_path / "rich.jsonl"
    path.write_text(_lines(*allowed))
    report = data.validate(path)
    assert report.ok, report.summary()
    assert report.tokens.estimated  # tool calls and content parts are estimates


def test_all_findings_reported_not_just_the_first(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text(_lines(*(["nope"] * 30 + [{"messages": []}] * 5)))
    report = data.validate(path, max_per_code=10)
    assert report.counts["invalid_json"] == 30 and len([f for f in report.findings if f.code == "invalid_json"]) == 10
    assert report.counts["empty_messages"] == 5
    assert "and 25 more" in report.summary(max_lines=5) or "and 20 more" in report.summary(max_lines=10)


def test_secrets_are_never_echoed(tmp_path):
    path = tmp_path / "secret.jsonl"
    path.write_text(CASES["secret"] + CASES["personal_data"])
    report = data.validate(path)
    text = report.summary() + json.dumps(report.to_dict())
    assert FAKE_KEY not in text and "jane.doe@example.org" not in text


def test_recipe_quantities_and_dates_are_not_phone_numbers():
    texts = ["- 250 g flour\n- 1 1/2 cups milk\n- 2 tbsp sugar", "reviewed on 2024-05-17", "SELECT 100 200 300", "1000 2000 3000 4000"]
    assert data.scan_sensitive(texts, 1) == []


def _cookbook_num_tokens(messages, encoding, tokens_per_message=3, tokens_per_name=1):
    """The OpenAI cookbook's function, verbatim in logic."""
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            num_tokens += len(encoding.encode(value))
            if key == "name":
                num_tokens += tokens_per_name
    num_tokens += 3
    return num_tokens


@pytest.mark.parametrize("name,model", [("recipes", "gpt-4o-mini"), ("sql", "gpt-3.5-turbo"), ("recipes", "gpt-4")])
def test_token_totals_equal_the_cookbook(name, model):
    import tiktoken

    tokens.ensure_offline_encodings()
    encoding = tiktoken.encoding_for_model(model)  # tiktoken's own mapping and files
    path = corpora.split_path(name, "train")
    expected = [_cookbook_num_tokens(json.loads(line)["messages"], encoding) for line in path.open(encoding="utf-8")]
    report = data.validate(path, model=model, chunk_size=64)  # several chunks
    assert list(report.tokens.per_example) == expected
    assert report.tokens.total == sum(expected)


def test_token_count_with_names():
    enc = tokens.encoding_for("gpt-4o-mini")
    messages = [{"role": "user", "name": "ann", "content": "Hello there"}]
    assert tokens.count_messages(messages, enc) == _cookbook_num_tokens(messages, enc)


def test_local_counts_use_the_chat_template(model_dir):
    report = data.validate(corpora.split_path("recipes", "valid"), model="smollm2")
    assert report.encoding == "chat template" and report.ok
    assert report.tokens.summary()["min"] > 50


def test_committed_data_sets_are_what_the_generators_write(tmp_path):
    for name in corpora.NAMES:
        written = corpora.write(name, tmp_path / name)
        for split, path in written.items():
            committed = corpora.split_path(name, split) if split != "database" else corpora.split_path(name, "x").with_name("kitchen.sql")
            assert path.read_bytes() == committed.read_bytes(), f"{name}/{split} differs from the generator"


@pytest.mark.parametrize("name", corpora.NAMES)
def test_committed_data_sets_are_clean(name):
    for split in corpora.SPLITS:
        report = data.validate(corpora.split_path(name, split))
        assert report.ok and report.warning_count == 0, report.summary()


def test_every_gold_query_runs_and_recipes_are_bilingual():
    from lessonlib.corpora import sql

    db = sql.connect()
    for split in corpora.SPLITS:
        for line in corpora.split_path("sql", split).open(encoding="utf-8"):
            gold = json.loads(line)["messages"][-1]["content"]
            assert sql.same_result(gold, gold, db)
    langs = {"fr" if "Ingrédients" in l or "Recette" in l or "Il vous faut" in l or "Voici ma recette" in l else "en"
             for l in corpora.split_path("recipes", "train").open(encoding="utf-8")}
    assert langs == {"en", "fr"}


def test_execution_match_scores_sql():
    from lessonlib.corpora import sql

    db = sql.connect()
    gold = "SELECT title FROM recipes ORDER BY minutes ASC, id ASC LIMIT 3;"
    assert sql.same_result("SELECT title FROM recipes ORDER BY minutes, id LIMIT 3", gold, db)
    assert not sql.same_result("SELECT title FROM recipes ORDER BY minutes DESC LIMIT 3", gold, db)
    assert not sql.same_result("SELEC nonsense", gold, db)


def test_convert_round_trips(tmp_path):
    source = corpora.split_path("recipes", "valid")
    original = [json.loads(l) for l in source.open(encoding="utf-8")]
    pc = data.convert(source, tmp_path / "pc.jsonl", "prompt-completion")
    first = json.loads(pc.open(encoding="utf-8").readline())
    assert first["completion"][0]["role"] == "assistant" and first["prompt"][-1]["role"] == "user"
    back = data.convert(pc, tmp_path / "back.jsonl", "openai")
    assert [json.loads(l) for l in back.open(encoding="utf-8")] == original
    hf = data.convert(source, tmp_path / "hf", "hf")
    again = data.convert(hf, tmp_path / "again.jsonl", "openai")
    assert [json.loads(l) for l in again.open(encoding="utf-8")] == original
    auto = data.convert(source, tmp_path / "autotrain", "autotrain")
    assert (auto / "train.jsonl").read_bytes() == source.read_bytes()


def test_convert_refuses_bad_input(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(CASES["unrecognized_role"])
    with pytest.raises(LessonError, match="unrecognized_role"):
        data.convert(bad, tmp_path / "out.jsonl", "openai")


def test_split_is_seeded_and_complete(tmp_path):
    source = corpora.split_path("recipes", "train")
    a = data.split(source, valid=0.1, test=0.1, seed=3, out_dir=tmp_path / "a")
    b = data.split(source, valid=0.1, test=0.1, seed=3, out_dir=tmp_path / "b")
    sizes = {k: len(p.read_text(encoding="utf-8").splitlines()) for k, p in a.items()}
    assert sizes == {"train": 160, "valid": 20, "test": 20}
    assert all(a[k].read_bytes() == b[k].read_bytes() for k in a)


def test_costs_and_break_even():
    price = costs.get_price("gpt-4o-mini")
    assert costs.get_price("ft:gpt-4o-mini-2024-07-18:org::x") == price
    assert [costs.default_epochs(n) for n in (5, 20, 50, 5000, 10_000, 100_000)] == [20, 5, 3, 3, 2, 1]
    assert costs.training_cost(1_000_000, 2, price).usd == pytest.approx(6.0)
    assert costs.billed_tokens([10, 70_000], price) == 10 + 65_536
    cheap = costs.break_even(price=price, requests_per_month=1000, base_prompt_tokens=100, example_tokens=150, shots=10,
                             completion_tokens=20, training_tokens=30_000)
    assert cheap.break_even_requests is not None and cheap.cheaper in {"few-shot", "fine-tuned"}
    at = costs.break_even(price=price, requests_per_month=round(cheap.break_even_requests), base_prompt_tokens=100,
                          example_tokens=150, shots=10, completion_tokens=20, training_tokens=30_000)
    assert at.few_shot_monthly == pytest.approx(at.fine_tuned_monthly, rel=1e-3)
    never = costs.break_even(price=price, requests_per_month=10, base_prompt_tokens=100, example_tokens=150, shots=0,
                             completion_tokens=20, training_tokens=30_000)
    assert never.break_even_requests is None and never.cheaper == "few-shot"
    with pytest.raises(LessonError, match="no price"):
        costs.get_price("llama-9000")


def test_every_price_row_is_dated_and_sourced():
    for price in costs.load_prices():
        assert len(price.as_of) == 10 and price.source
        assert price.training_context > 0


# ---------------------------------------------------------------------------------------------
# Command line: exit codes 0 / 1 / 2 and the JSON shape
# ---------------------------------------------------------------------------------------------


def test_cli_validate_exit_codes(tmp_path):
    good = corpora.split_path("recipes", "valid")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(CASES["invalid_json"])
    assert run_cli("data", "validate", str(good)).returncode == 0
    result = run_cli("data", "validate", str(bad))
    assert result.returncode == 1 and "line 2" in result.stdout and "Traceback" not in result.stderr
    missing = run_cli("data", "validate", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: cannot read")
    folder = run_cli("data", "validate", str(tmp_path))
    assert folder.returncode == 2


def test_cli_validate_json_shape(tmp_path):
    result = run_cli("data", "validate", str(corpora.split_path("recipes", "valid")), "--json", "--model", "gpt-4o-mini")
    out = json.loads(result.stdout)
    assert {"file", "examples", "errors", "warnings", "tokens", "cost"} <= set(out)
    assert set(out["tokens"]["per_example"]) == {"min", "max", "mean"}
    assert out["tokens"]["total"] > 0 and out["cost"]["prices_as_of"]


def test_cli_cost_commands():
    est = run_cli("cost", "estimate", str(corpora.split_path("recipes", "train")), "--model", "gpt-4o-mini", "--json")
    assert json.loads(est.stdout)["epochs"] == 3
    be = run_cli("cost", "break-even", "--model", "gpt-4o-mini", "--provider", "azure", "--requests", "1000", "--shots", "5")
    assert be.returncode == 0 and "few-shot is cheaper" in be.stdout
    prices = run_cli("cost", "prices")
    assert "gpt-4o-mini" in prices.stdout and "2025-" in prices.stdout
    unknown = run_cli("cost", "estimate", str(corpora.split_path("recipes", "train")), "--model", "claude-x")
    assert unknown.returncode == 1 and "no known tokenizer" in unknown.stderr


def test_cli_generate_and_split(tmp_path):
    result = run_cli("data", "generate", "recipes", "--out", str(tmp_path / "r"))
    assert result.returncode == 0 and (tmp_path / "r" / "train.jsonl").is_file()
    result = run_cli("data", "split", str(tmp_path / "r" / "train.jsonl"), "--valid", "0.25")
    assert result.returncode == 0 and (tmp_path / "r" / "train.valid.jsonl").is_file()


def test_price_lookup_does_not_confuse_families():
    assert costs.get_price("gpt-4o").model == "gpt-4o-2024-08-06"
    assert costs.get_price("gpt-4o-mini").model == "gpt-4o-mini-2024-07-18"
    assert costs.get_price("gpt-4.1").model == "gpt-4.1-2025-04-14"
    assert costs.get_price("gpt-35-turbo").provider == "azure"


def test_broken_example_file_shows_the_common_mistakes():
    report = data.validate(corpora.split_path("examples", "broken-recipes"))
    assert {"invalid_json", "unrecognized_role", "bad_weight", "duplicate_example", "personal_data", "blank_line"} <= set(report.counts)


def test_data_doctor_widget(tmp_path):
    from lessonlib.widgets import BreakEvenExplorer, DataDoctor

    doctor = DataDoctor()
    assert doctor.file.value == "data/recipes/train.jsonl"
    doctor.check.click()
    assert doctor.report is not None and doctor.report.ok
    assert bytes(doctor.histogram.value).startswith(b"\x89PNG") and "$" in doctor.cost.value
    doctor.file.value = str(corpora.split_path("examples", "broken-recipes"))
    doctor.model.value = "gpt-3.5-turbo"
    doctor.check.click()
    assert "errors to fix first" in doctor.verdict.value and "unrecognized_role" in doctor.findings.value
    assert "chef.marie" not in doctor.findings.value  # personal data is never shown
    doctor.file.value = str(tmp_path / "missing.jsonl")
    doctor.check.click()
    assert "Problem:" in doctor.verdict.value and doctor.report is None

    explorer = BreakEvenExplorer(requests=50_000, shots=10)
    assert explorer.result.cheaper == "fine-tuned"
    explorer.shots.value = 0
    assert explorer.result.cheaper == "few-shot" and explorer.result.break_even_requests is None
    assert bytes(explorer.chart.value).startswith(b"\x89PNG")


def test_an_example_without_a_user_message_gets_a_warning_as_in_the_cookbook(tmp_path):
    from lessonlib import data

    path = tmp_path / "no-user.jsonl"
    path.write_text('{"messages": [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "Hello."}]}\n'
                    '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}\n', encoding="utf-8")
    report = data.validate(path, model="gpt-4o-mini", min_examples=1)
    assert report.ok  # a warning, not an error
    assert [(f.line, f.code) for f in report.findings if f.code == "no_user_message"] == [(1, "no_user_message")]


def test_local_token_counts_match_transformers_without_importing_torch(model_dir):
    """The light path (tokenizers + the chat template rendered with Jinja) counts what AutoTokenizer counts."""
    import subprocess
    import sys

    from transformers import AutoTokenizer

    from lessonlib import corpora, models, tokens

    examples = [e["messages"] for task in ("recipes", "sql") for e in data.read_examples(corpora.split_path(task, "train"))[:60]]
    examples.append([{"role": "user", "content": "Crème brûlée, « s'il vous plaît » {{ not a template }}"},
                     {"role": "assistant", "content": "[\"crème\", \"sucre\"]\n\n  "}])  # no system message: the template adds one
    tokenizer = AutoTokenizer.from_pretrained(models.resolve(None))
    expected = [len(tokenizer.apply_chat_template(e, tokenize=True, return_dict=False)) for e in examples]
    assert tokens.count_local(examples) == expected
    light = subprocess.run([sys.executable, "-c", ("import sys; from lessonlib import tokens; "
                            "tokens.count_local([[{'role': 'user', 'content': 'hi'}]]); print('torch' in sys.modules)")],
                           capture_output=True, text=True, check=True)
    assert light.stdout.strip() == "False"


def test_generated_recipes_read_like_recipes():
    """Grammatical French, plausible quantities, titles whose ingredients are in the list (the course data is clean)."""
    import re

    from lessonlib.corpora import recipes

    examples = recipes.generate(3000, seed=7)
    plural_en = r"^- 1 (large |free-range )?(eggs|apples|Granny|garlic|cloves|shallots|ripe|cherry|plum|carrots|zucchini|courgettes|flour tortillas|corn tortillas)"
    plural_fr = r"^- 1 (œufs|gros|pommes golden|pommes épluchées|gousses|échalotes|tomates|carottes|courgettes|avocats|tortillas|bananes)"
    for example in examples:
        user, answer = example["messages"][1]["content"], json.loads(example["messages"][2]["content"])
        for line in user.splitlines():
            assert not re.search(r"\bde [aeiouyhéèêœ]", line, re.IGNORECASE), line  # d'huile, d'œufs
            assert not re.search(plural_en if example["meta"]["lang"] == "en" else plural_fr, line), line
            assert not re.search(r"^- 1 \w+s de\b|^- (1 1/2|2|3) cup\b", line), line  # 1 verre, 2 cups
            ounces = re.search(r"(\d+) (fl )?oz\b", line)
            assert not ounces or int(ounces.group(1)) <= 16, line
        names = {i.en: (i.fr if example["meta"]["lang"] == "fr" else i.en) for i in recipes.CATALOGUE.values()}
        for promised in recipes.promised_ingredients(example["meta"]["title"]):
            assert names[promised] in answer, (example["meta"]["title"], answer)
        title = example["meta"]["title"].lower()
        meats = [names[m] for m in recipes.MEATS if names[m] in answer]
        promised_meats = [names[m] for m in recipes.promised_ingredients(example["meta"]["title"]) if m in recipes.MEATS]
        if re.search(r"vegetable|légumes", title):
            assert not meats and not re.search(r"chicken|volaille", user), (title, answer)  # no beef in a vegetable sauté
        else:
            assert len(meats) <= max(1, len(promised_meats)) and set(meats) >= set(promised_meats), (title, answer)


def test_the_data_readme_lists_the_whole_recipe_vocabulary():
    from lessonlib.corpora import recipes

    text = (Path(__file__).resolve().parent.parent / "data" / "README.md").read_text(encoding="utf-8")
    for ingredient in recipes.CATALOGUE.values():
        row = f"| {ingredient.en} / {ingredient.fr} | {', '.join(ingredient.en_forms + ingredient.fr_forms)} |"
        assert row in text, f"data/README.md: regenerate the vocabulary table ({ingredient.en} is missing or out of date)"


def test_every_finding_severity_has_a_label():
    from lessonlib.data import CODES, SEVERITIES

    assert {severity for severity, _meaning in CODES.values()} <= set(SEVERITIES)
