"""The course in another language, kept in step with the English one (``make translations``).

Two catalogues, both in gettext's PO format (what translators and their tools edit):

* ``lessonlib/locale/<lang>/LC_MESSAGES/lessonlib.po``: every message lessonlib shows (widgets, decisions,
  command-line errors), extracted with Babel from ``_()``, ``N_()`` and ``ngettext()`` in the package;
* ``translations/<lang>/<notebook>.po``: one per notebook. Its entries are the notebook's Markdown cells
  (whole), the comments of its code cells and the prose strings of its code (``print("...")``: the
  string's source, quotes included, so an f-string stays an f-string).

The French notebook is *generated*: the English notebook's cells in order, each Markdown cell replaced by
its translation, each code cell with only its comments and listed strings replaced, and one first code
cell that sets the language. So the code cannot drift: a change to an English cell makes its entry
new (untranslated or fuzzy), the generated notebook keeps the English text there, and
``tests/test_translations.py`` fails until a translator fills it in.

    python tests/translations.py extract      # update the catalogues from the code and the English notebooks
    python tests/translations.py notebooks    # write notebooks/<lang>/*.ipynb (then make notebooks executes them)
    python tests/translations.py check        # what is missing, per catalogue (exit 1 if anything)
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import nbformat
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lessonlib import course
from lessonlib.i18n import DOMAIN, LOCALE_DIR, catalogue_path, is_prose, pieces, translate_code  # noqa: F401

NOTEBOOKS = ROOT / "notebooks"
TRANSLATIONS = ROOT / "translations"
LANGUAGES = ("fr",)
FIXED_DATE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
#: The first code cell of a translated notebook: lessonlib speaks the notebook's language.
LANGUAGE_CELL = {
    "fr": 'from lessonlib.i18n import set_language\n\nlanguage = set_language("fr")  # lessonlib parle français : widgets, messages, décisions',
}


# ------------------------------------------------------------------------------------------------
# Catalogues
# ------------------------------------------------------------------------------------------------

def notebook_catalogue_path(lang: str, english: Path) -> Path:
    return TRANSLATIONS / lang / f"{english.stem}.po"


def notebook_template(english: Path) -> Catalog:
    """Every message of an English notebook to translate, with where it is."""
    nb = nbformat.read(english, as_version=4)
    template = Catalog(domain=english.stem, project="Fine-Tuning Companion", fuzzy=False)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            template.add(cell.source, locations=[(english.name, index)], auto_comments=["Markdown cell"])
        elif cell.cell_type == "code":
            for piece in pieces(cell.source):
                template.add(piece.msgid, locations=[(english.name, index)], auto_comments=[f"code {piece.kind}"])
    return template


def package_template() -> Catalog:
    template = Catalog(domain=DOMAIN, project="lessonlib", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT / "lessonlib"), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)):
        template.add(message, locations=[(f"lessonlib/{filename}", lineno)], auto_comments=comments, context=context,
                     flags=("python-brace-format",) if any("{" in m for m in (message if isinstance(message, tuple) else (message,))) else ())
    _solution_pieces(template)
    return template


def _solution_pieces(template: Catalog) -> None:
    """The comments and prose strings of the exercises' solutions (shown by ``show_solution``, translated there)."""
    from lessonlib.exercises import EXERCISES

    for key, ex in sorted(EXERCISES.items()):
        for piece in pieces(ex.solution):
            template.add(piece.msgid, locations=[("lessonlib/exercises.py", 0)], auto_comments=[f"solution of exercise {key}: code {piece.kind}"])


def read(path: Path, lang: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=lang)


def write(catalog: Catalog, path: Path) -> None:
    """Write a catalogue with a fixed header, so that running ``extract`` again changes nothing that did not change."""
    catalog.creation_date = catalog.revision_date = FIXED_DATE
    catalog.header_comment = f"# {path.stem}: the French course's catalogue (tests/translations.py; see docs in that file).\n#"
    catalog.copyright_holder, catalog.msgid_bugs_address = "Fine-Tuning Companion", ""
    catalog.last_translator, catalog.language_team = "Fine-Tuning Companion", "French"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=120, omit_header=False, sort_output=False, ignore_obsolete=True)


def update(template: Catalog, path: Path, lang: str) -> Catalog:
    """The catalogue at ``path`` updated to ``template``: new messages empty, changed ones fuzzy, gone ones dropped."""
    if path.is_file():
        catalog = read(path, lang)
        catalog.update(template, no_fuzzy_matching=False)
    else:
        catalog = Catalog(locale=lang, domain=template.domain, project=template.project, fuzzy=False)
        catalog.update(template, no_fuzzy_matching=True)
    write(catalog, path)
    return catalog


def table(catalog: Catalog) -> dict[str, str]:
    """msgid -> msgstr for every translated, non-fuzzy entry."""
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy and isinstance(m.id, str)}


def missing(catalog: Catalog) -> list[str]:
    """The messages without a usable translation (empty or fuzzy)."""
    out = []
    for m in catalog:
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.fuzzy or not all(strings):
            out.append(m.id if isinstance(m.id, str) else m.id[0])
    return out


# ------------------------------------------------------------------------------------------------
# Notebooks
# ------------------------------------------------------------------------------------------------

def english_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def translated_path(english: Path, lang: str) -> Path:
    by_number = {nb.number: nb for nb in course.NOTEBOOKS}
    return NOTEBOOKS / lang / by_number[english.name[:2]].localized_filename(lang)


def translate_notebook(english: Path, lang: str, catalog: Catalog) -> nbformat.NotebookNode:
    """The notebook in ``lang``: the English cells, translated; outputs kept from the translated notebook on disk."""
    nb = nbformat.read(english, as_version=4)
    words = table(catalog)
    cells = []
    for cell in nb.cells:
        cell = nbformat.from_dict(dict(cell))
        if cell.cell_type == "markdown":
            cell.source = words.get(cell.source, cell.source)
        elif cell.cell_type == "code":
            cell.source = translate_code(cell.source, words)
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    first_code = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    language = nbformat.v4.new_code_cell(LANGUAGE_CELL[lang])
    language.metadata["tags"] = ["language"]
    cells.insert(first_code, language)
    for index, cell in enumerate(cells):
        cell.id = f"{lang}-{index:03d}"
    out = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    keep_outputs(out, translated_path(english, lang))
    return out


def keep_outputs(nb: nbformat.NotebookNode, existing: Path) -> None:
    """Outputs of the notebook on disk, cell by cell where the source is unchanged (what was executed stays)."""
    if not existing.is_file():
        return
    old = nbformat.read(existing, as_version=4)
    by_source = {}
    for cell in old.cells:
        if cell.cell_type == "code":
            by_source.setdefault(cell.source, cell)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source in by_source:
            cell.outputs = by_source[cell.source].outputs
            cell.execution_count = by_source[cell.source].execution_count
    nb.metadata = old.metadata


def extract() -> None:
    for lang in LANGUAGES:
        catalog = update(package_template(), catalogue_path(lang), lang)
        print(f"{catalogue_path(lang).relative_to(ROOT)}: {len(missing(catalog))} of {len(catalog)} to translate")
        for english in english_notebooks():
            path = notebook_catalogue_path(lang, english)
            catalog = update(notebook_template(english), path, lang)
            print(f"{path.relative_to(ROOT)}: {len(missing(catalog))} of {len(catalog)} to translate")


def notebooks() -> None:
    for lang in LANGUAGES:
        for english in english_notebooks():
            path = notebook_catalogue_path(lang, english)
            catalog = read(path, lang) if path.is_file() else None
            if catalog is None or missing(catalog):  # a notebook is published in a language once it is whole
                continue
            target = translated_path(english, lang)
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(translate_notebook(english, lang, catalog), target)
            print(f"wrote {target.relative_to(ROOT)}")


def check() -> int:
    problems = 0
    for lang in LANGUAGES:
        for path in [catalogue_path(lang), *sorted((TRANSLATIONS / lang).glob("*.po"))]:
            left = missing(read(path, lang))
            problems += len(left)
            print(f"{path.relative_to(ROOT)}: {len(left)} missing")
    return 1 if problems else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "extract":
        extract()
    elif command == "notebooks":
        notebooks()
    else:
        sys.exit(check())
