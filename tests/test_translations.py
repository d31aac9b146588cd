"""The French course: complete catalogues, notebooks generated from the English ones, an interface in French.

Strict nbval runs the French notebooks like the English ones (they are collected from ``notebooks/fr``);
these tests check what nbval cannot: that a French notebook is the English notebook translated (same code,
cell for cell), that no prose is left in English, and that no message a widget or the command line shows
lacks its translation.
"""

from __future__ import annotations

import ast
import re

import nbformat
import pytest
from french import code_tokens
from french import english_share as _english_share

import translations as T
from lessonlib import i18n

LANG = "fr"
#: How ``make lab`` and Binder switch lessonlib's server extension on.
LAB_EXTENSION = "--ServerApp.jpserver_extensions=lessonlib.labext=True"
FRENCH = sorted((T.NOTEBOOKS / LANG).glob("[0-9][0-9]-*.ipynb"))
ENGLISH = {p.name[:2]: p for p in T.english_notebooks()}
@pytest.fixture
def french():
    i18n.set_language(LANG)
    yield
    i18n.set_language(None)


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"\{[^{}]*\}", text))


def test_every_english_notebook_has_its_french_one():
    assert [p.name[:2] for p in FRENCH] == sorted(ENGLISH)


@pytest.mark.parametrize("path", FRENCH, ids=lambda p: p.name)
def test_a_french_notebook_opens_with_its_goal_what_it_needs_and_its_time(path):
    first = nbformat.read(path, as_version=4).cells[0].source
    assert re.search(r"\*\*Objectif :\*\*.+\*\*Il vous faut :\*\*.+\*\*Durée :\*\*", first, re.DOTALL), first[:300]


def test_the_package_catalogue_is_up_to_date_and_whole():
    """Every message lessonlib shows (extracted from the code now) has a French translation with the same placeholders."""
    catalogue = T.read(i18n.catalogue_path(LANG), LANG)
    template = T.package_template()
    assert {m.id for m in template if m.id} == {m.id for m in catalogue if m.id}, "run `make translations`"
    assert T.missing(catalogue) == []
    for message in (m for m in catalogue if m.id):
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            assert _placeholders(string) == _placeholders(ids[-1]), (ids[0], string)


@pytest.mark.parametrize("path", FRENCH, ids=lambda p: p.name)
def test_a_french_notebook_is_its_english_notebook_translated(path):
    """The notebook on disk is what the generator makes from the English notebook and its catalogue, the
    catalogue is whole, and the code is the English code: only comments and prose strings differ."""
    english = ENGLISH[path.name[:2]]
    catalogue = T.read(T.notebook_catalogue_path(LANG, english), LANG)
    template = T.notebook_template(english)
    assert {m.id for m in template if m.id} <= {m.id for m in catalogue if m.id}, "run `make translations`"
    assert T.missing(catalogue) == []
    on_disk = nbformat.read(path, as_version=4)
    generated = T.translate_notebook(english, LANG, catalogue)
    assert [(c.cell_type, c.source, c.metadata.get("tags")) for c in on_disk.cells] == \
           [(c.cell_type, c.source, c.metadata.get("tags")) for c in generated.cells], "run `make translations`"
    cells = [c for c in on_disk.cells if "language" not in c.metadata.get("tags", [])]
    source = nbformat.read(english, as_version=4).cells
    assert len(cells) == len(source)
    for french_cell, english_cell in zip(cells, source):
        assert french_cell.cell_type == english_cell.cell_type
        assert french_cell.metadata.get("jupyter") == english_cell.metadata.get("jupyter")
        if english_cell.cell_type == "code":
            assert code_tokens(french_cell.source) == code_tokens(english_cell.source)


@pytest.mark.parametrize("path", FRENCH, ids=lambda p: p.name)
def test_no_prose_cell_of_a_french_notebook_is_english(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            assert _english_share(cell.source) < 0.06, cell.source[:200]


@pytest.mark.parametrize("path", FRENCH, ids=lambda p: p.name)
def test_the_links_of_a_french_notebook_lead_somewhere(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", cell.source):
                if not target.startswith("http"):
                    assert (path.parent / target).exists(), target


def _shown(widget) -> list[str]:
    """Every text a widget tree shows: descriptions, labels of options, HTML, tooltips, placeholders."""
    texts = []
    for name in ("description", "value", "tooltip", "placeholder"):
        value = getattr(widget, name, None)
        if isinstance(value, str) and (name != "value" or type(widget).__name__ in {"HTML", "Label"}):
            texts.append(value)
    texts.extend(getattr(widget, "_options_labels", ()) or ())
    for child in getattr(widget, "children", ()):
        texts += _shown(child)
    return texts


def test_the_widgets_speak_french(french, tmp_path):
    from lessonlib import jupyter
    from lessonlib.train import ProgressEvent, RunConfig
    from lessonlib.widgets import (
        BeforeAfter,
        BreakEvenExplorer,
        ChatBox,
        Checklist,
        DataDoctor,
        DataSizeStudy,
        KernelCleaner,
        TrainingMonitor,
    )

    doctor = DataDoctor("data/examples/broken-recipes.jsonl")
    checklist = Checklist(scores={"few-shot": 0.4})
    checklist.run()
    monitor = TrainingMonitor(RunConfig(output_dir=str(tmp_path / "run"), max_steps=4))
    monitor.on_event(ProgressEvent(kind="step", step=2, total=4, loss=1.0, tokens_per_s=100.0, elapsed_s=3.0, eta_s=3.0, rss_gb=0.5))
    kernels = KernelCleaner(list_kernels=lambda: [jupyter.Kernel("k1", "notebooks/01.ipynb", "idle", 0.3)], shut_down=lambda ks: [])
    views = [ChatBox(), doctor, BreakEvenExplorer(), checklist, monitor, kernels, DataSizeStudy([10]), BeforeAfter([])]
    shown = "\n".join(text for view in views for text in _shown(view))
    english = [m.id for m in T.read(i18n.catalogue_path(LANG), LANG)
               if isinstance(m.id, str) and m.id and "{" not in m.id and len(m.id.split()) > 1 and m.id != m.string]
    assert [message for message in english if message in shown] == []
    assert "Envoyer" in shown and "Décider" in shown and "Vérifier" in shown and "Recommandation" in shown
    assert _english_share(shown) < 0.03, shown


def test_the_command_line_speaks_french(monkeypatch, capsys):
    from lessonlib import cli

    monkeypatch.setenv("LESSONLIB_LANG", LANG)
    code = cli.main(["decide", "--answers", "no-such-answers.yaml"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("erreur : impossible de lire le fichier de réponses no-such-answers.yaml")


def test_the_course_map_links_the_french_notebooks(french):
    from lessonlib import course

    table = course.notebook_map()
    assert "[Commencer ici : le compagnon, votre machine, une première conversation](00-commencer-ici.ipynb)" in table
    missing = [nb for nb in course.NOTEBOOKS if not nb.ready(lang=LANG)]
    for nb in missing:
        assert f"](../{nb.filename})" in table and "prêt, en anglais" in table


def test_the_french_glossary_gives_every_term_its_french_name_and_the_notebooks_link_it():
    english = re.findall(r"^### (.+)$", (T.NOTEBOOKS / "glossary.md").read_text(encoding="utf-8"), re.MULTILINE)
    french = (T.NOTEBOOKS / LANG / "glossaire.md").read_text(encoding="utf-8")
    entries = dict(re.findall(r"^### (.+)\n\*\*En français :\*\* ([^.]+)\.", french, re.MULTILINE))
    assert set(english) <= set(entries), set(english) - set(entries)
    prose = "\n".join(c.source for path in FRENCH for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    assert "glossary.md" not in prose
    for term in english:
        assert f"glossaire.md#{term.replace(' ', '-')}" in prose, term


def _literal_messages(tree: ast.AST) -> list[int]:
    """Lines where an error, a hint or a command-line help is written as a bare string (so it never reaches the catalogue)."""
    def bare(node: ast.AST | None) -> bool:
        if isinstance(node, (ast.Constant, ast.JoinedStr)):
            return isinstance(node, ast.JoinedStr) or (isinstance(node.value, str) and bool(node.value.strip()))
        if isinstance(node, ast.BinOp):
            return bare(node.left) or bare(node.right)
        if isinstance(node, ast.IfExp):
            return bare(node.body) or bare(node.orelse)
        return False

    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        messages = []
        if name in ("LessonError", "MemoryShortfall", "Hint"):
            messages = node.args[:1] + [k.value for k in node.keywords if k.arg == "fix"]
        messages += [k.value for k in node.keywords if k.arg in ("help", "description")]
        lines += [node.lineno for message in messages if bare(message)]
    return lines


def _shadowed_underscore(tree: ast.AST) -> list[str]:
    """Functions that call ``_()`` and also assign ``_`` (which makes every ``_()`` in them fail)."""
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        stores, stack = [], list(ast.iter_child_nodes(fn))
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # their own scope
            if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store):
                stores.append(node.lineno)
            stack.extend(ast.iter_child_nodes(node))
        calls = any(isinstance(n, ast.Call) and getattr(n.func, "id", "") == "_" for n in ast.walk(fn))
        if stores and calls:
            found.append(f"{fn.name} (line {stores[0]})")
    return found


@pytest.mark.parametrize("path", sorted((T.ROOT / "lessonlib").rglob("*.py")), ids=lambda p: str(p.relative_to(T.ROOT)))
def test_every_error_hint_and_help_goes_through_the_catalogue(path):
    """An error (LessonError, its fix), an exercise's hint or a command's help written as a bare string would show in
    English to a French learner: each is a ``_()`` call (or a value built from them)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _literal_messages(tree) == []
    assert _shadowed_underscore(tree) == []


def test_the_french_link_opens_jupyterlab_in_french_on_the_french_start_notebook(tmp_path):
    """The French Binder link's path (``/lessonlib/open/fr``) on a real JupyterLab: it sets the interface language, as
    Settings → Language does, and opens the French start notebook; JupyterLab then serves its French strings."""
    import os
    import urllib.error
    import urllib.request

    from jupyter_helpers import Server

    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = Server(env, lab=True, options=[LAB_EXTENSION])
    try:
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/lessonlib/open/fr",
                                         headers={"Authorization": f"token {server.token}"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(request, timeout=30)
        assert answer.value.code == 302
        assert answer.value.headers["Location"].endswith("/lab/tree/notebooks/fr/00-commencer-ici.ipynb")
        setting = server.api("GET", "/lab/api/settings/@jupyterlab/translation-extension:plugin")
        assert setting["settings"]["locale"] == "fr_FR"
        french = server.api("GET", "/lab/api/translations/fr_FR")
        assert french["message"] == "" and french["data"], "the French language pack answers"
        for where in (T.ROOT / "Makefile", T.ROOT / "binder" / "postBuild"):  # what make lab and Binder start
            assert "lessonlib.labext" in where.read_text(encoding="utf-8"), where
        assert "?urlpath=lessonlib/open/fr)" in (T.ROOT / "README.md").read_text(encoding="utf-8")
    finally:
        server.stop()
