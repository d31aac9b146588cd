"""What a learner reads: each notebook introduced, the plumbing out of sight, the prose short, the terms explained."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
GLOSSARY = ROOT / "notebooks" / "glossary.md"
#: Calls that only give memory back: a learner has nothing to learn from them, so their cells are collapsed.
HOUSEKEEPING = ("models.unload()", "give_back_memory()", "shut_down_this_kernel()")
#: Words of prose in each notebook before the course was rewritten to be read (measured with prose_words).
WORDS_BEFORE = {"00": 591, "01": 817, "02": 635, "03": 851, "04": 1707, "05": 695, "06": 1590, "07": 649, "08": 1232}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _hidden(cell: dict) -> bool:
    return bool(cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"))


def prose_words(text: str) -> int:
    """Words of Markdown prose: code blocks, link targets and table rules do not count."""
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return len(re.findall(r"[A-Za-zÀ-ÿ0-9][\w'’.,:;!?-]*", text))


def _markdown(path: Path) -> str:
    return "\n\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")


def _only_checks(source: str) -> bool:
    """A cell made of assertions (with at most imports and prints around them)."""
    kinds = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assert):
            kinds.add("assert")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            kinds.add("import")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "print":
            kinds.add("print")
        else:
            return False
    return "assert" in kinds


def test_no_visible_cell_is_only_an_assertion_or_housekeeping():
    for path in NOTEBOOKS:
        for number, cell in enumerate(_cells(path)):
            if cell["cell_type"] != "code" or _hidden(cell):
                continue
            source = "".join(cell["source"])
            assert not _only_checks(source), f"{path.name}, cell {number}: only checks: collapse it (source_hidden) or move it to tests"
            assert not any(call in source for call in HOUSEKEEPING), f"{path.name}, cell {number}: memory housekeeping in a visible cell"


def test_nbval_markers_are_cell_tags_not_comments_a_learner_reads():
    for path in NOTEBOOKS:
        for number, cell in enumerate(_cells(path)):
            assert "NBVAL_" not in "".join(cell["source"]), f"{path.name}, cell {number}: use the tag nbval-ignore-output"


def test_every_notebook_opens_with_its_goal_what_it_needs_and_its_time():
    for path in NOTEBOOKS:
        first = "".join(_cells(path)[0]["source"])
        assert re.search(r"\*\*Goal:\*\*.+\*\*You need:\*\*.+\*\*Time:\*\*", first, re.DOTALL), f"{path.name}: no goal, needs and time"


def test_the_prose_is_short():
    """At least 30% fewer words over the course than before the rewrite, and 40% fewer in 04 and 06."""
    now = {path.name[:2]: prose_words(_markdown(path)) for path in NOTEBOOKS}
    assert sum(now.values()) <= 0.7 * sum(WORDS_BEFORE.values()), now
    for number in ("04", "06"):
        assert now[number] <= 0.6 * WORDS_BEFORE[number], (number, now[number])


def test_every_glossary_term_is_linked_from_the_notebooks():
    terms = re.findall(r"^### (.+)$", GLOSSARY.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(terms) >= 20
    prose = "\n".join(_markdown(path) for path in NOTEBOOKS)
    for term in terms:
        assert f"glossary.md#{term.replace(' ', '-')}" in prose, f"no notebook links the glossary's '{term}'"
    assert "(glossary.md)" in _markdown(NOTEBOOKS[0]), "the start notebook points to the glossary"
