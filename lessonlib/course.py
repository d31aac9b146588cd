"""The course map: the lesson's four questions and four tutorials -> numbered notebooks.

One table, used by ``00-start-here.ipynb`` and by ``lessonlib doctor``'s neighbours, so the map
and the notebooks on disk never disagree: a notebook is marked *ready* when its file exists.

>>> [n.number for n in NOTEBOOKS][:3]
['00', '01', '02']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import facts
from .i18n import N_, _, language
from .settings import repo_root


@dataclass(frozen=True)
class Notebook:
    number: str  # two-digit position in the course
    slug: str  # file name without number and extension
    title: str  # what a learner sees (translated where shown)
    lesson_part: str  # which question or tutorial of the lesson it answers (translated where shown)
    slug_fr: str = ""  # the French notebook's file name, in notebooks/fr/

    @property
    def filename(self) -> str:
        return f"{self.number}-{self.slug}.ipynb"

    def localized_filename(self, lang: str) -> str:
        """The file name of this notebook in ``lang`` (in ``notebooks/<lang>/`` unless English)."""
        return self.filename if lang == "en" else f"{self.number}-{getattr(self, 'slug_' + lang)}.ipynb"

    def path(self, root: Path | None = None, lang: str = "en") -> Path:
        folder = (root or repo_root()) / "notebooks"
        return folder / self.filename if lang == "en" else folder / lang / self.localized_filename(lang)

    def ready(self, root: Path | None = None, lang: str = "en") -> bool:
        return self.path(root, lang).is_file()


NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook("00", "start-here", N_("Start here: the companion, your machine, a first chat"), "-", "commencer-ici"),
    Notebook("01", "what-is-fine-tuning", N_("What is fine-tuning? Few-shot limits in tokens and money"),
             N_("Question 1: what is fine-tuning"), "qu-est-ce-que-l-affinage"),
    Notebook("02", "when-and-why", N_("When and why: the checklist, with measured baselines"), N_("Question 2: when and why"),
             "quand-et-pourquoi"),
    Notebook("03", "prepare-your-data", N_("Prepare your data: the data doctor"),
             N_("Question 3: how (data) / OpenAI and Azure tutorials, step 1"), "preparer-vos-donnees"),
    Notebook("04", "fine-tune-locally", N_("Fine-tune locally with TRL + LoRA"), N_("Question 3: how / Hugging Face TRL tutorial"),
             "affiner-en-local"),
    Notebook("05", "evaluate", N_("Evaluate: prompt, retrieval and tuned model side by side"), N_("Question 2: benefits, measured"),
             "evaluer"),
    Notebook("06", "openai-and-azure", N_("OpenAI and Azure OpenAI: the SDK's fine-tuning calls, run on the local service"),
             N_("OpenAI and Azure OpenAI tutorials"), "openai-et-azure"),
    Notebook("07", "autotrain", N_("AutoTrain Advanced: the no-code route"), N_("Hugging Face AutoTrain tutorial"), "autotrain"),
    Notebook("08", "limits", N_("The limits: overfitting, forgetting, data size"), N_("Question 4: the limits"), "limites"),
)


def notebook_map(root: Path | None = None) -> str:
    """The course map as a Markdown table, with each notebook's state on disk, in the language lessonlib speaks
    (a notebook not yet translated links to the English one)."""
    lang = language()
    rows = [("| # | " + _("notebook") + " | " + _("answers") + " | " + _("state") + " |"), "| --- | --- | --- | --- |"]
    for nb in NOTEBOOKS:
        here = lang != "en" and nb.ready(root, lang)
        link = nb.localized_filename(lang) if here else (f"../{nb.filename}" if lang != "en" else nb.filename)
        ready = nb.ready(root)
        state = (_("ready") if here or lang == "en" else _("ready, in English")) if ready else _("coming soon")
        name = f"[{_(nb.title)}]({link})" if ready else _(nb.title)
        rows.append(f"| {nb.number} | {name} | {_(nb.lesson_part)} | {state} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------
# The lesson's assignment: pick one tutorial and follow it
# --------------------------------------------------------------------------------------------

LESSON_URL = "https://github.com/microsoft/generative-ai-for-beginners/tree/main/18-fine-tuning"
TALK_URL = "https://www.youtube.com/watch?v=0Jo-z-MFxJs"  # "To fine-tune or not to fine-tune", linked by the lesson


@dataclass(frozen=True)
class Step:
    original: str  # the step as the tutorial names it
    notebook: str  # where the companion does it: a notebook number
    section: str  # the section heading there (without the "## "), as it appears in the notebook


@dataclass(frozen=True)
class Tutorial:
    key: str  # short name: openai, azure, trl, autotrain
    title: str  # the tutorial's own title
    url: str  # the original, as the lesson links it
    what: str  # what it teaches, in one line
    steps: tuple[Step, ...]
    home: str  # the notebook that follows it (its map is there, near the top)
    stands: str = ""  # whose dated status applies (``lessonlib.facts.where_paths_stand``): openai, azure, autotrain
    newer: str = ""  # a newer edition of the tutorial, as a Markdown link with what changed


TUTORIALS: tuple[Tutorial, ...] = (
    Tutorial("openai", "How to fine-tune chat models (OpenAI cookbook)",
             "https://github.com/openai/openai-cookbook/blob/main/examples/How_to_finetune_chat_models.ipynb",
             "fine-tune a GPT model into a recipe assistant with the openai SDK", (
                 Step("Data preparation", "06", "1 · Prepare the data"),
                 Step("Format validation", "03", "A broken file, fixed step by step"),
                 Step("Token counting", "06", "2 · Know the cost before anything is sent"),
                 Step("Upload files", "06", "4 · Upload the files"),
                 Step("Fine-tuning", "06", "5 · Create the job"),
                 Step("Check job status", "06", "6 · Follow the job"),
                 Step("Inference", "06", "8 · Use the tuned model"),
             ), home="06", stands="openai"),
    Tutorial("azure", "Azure OpenAI fine-tuning tutorial (Microsoft Learn)",
             "https://learn.microsoft.com/azure/ai-services/openai/tutorials/fine-tune",
             "the same on Azure, plus deploying the tuned model and deleting the deployment",
             (
                 Step("Create training and validation datasets", "06", "1 · Prepare the data"),
                 Step("Token counting", "06", "2 · Know the cost before anything is sent"),
                 Step("Upload fine-tuning files", "06", "4 · Upload the files"),
                 Step("Begin fine-tuning", "06", "5 · Create the job"),
                 Step("Track training job status, list fine-tuning events", "06", "6 · Follow the job"),
                 Step("Checkpoints", "06", "7 · Checkpoints: every epoch's model is usable"),
                 Step("Deploy fine-tuned model, use it, delete the deployment", "06",
                      "9 · The same on Azure OpenAI: deploy, call, delete"),
             ), home="06", stands="azure"),
    Tutorial("trl", "Fine-tune LLMs in 2024 with Hugging Face (TRL)",
             "https://www.philschmid.de/fine-tune-llms-in-2024-with-trl",
             "fine-tune an open model with transformers, TRL and PEFT (LoRA) on your own hardware", (
                 Step("Define our use case", "02", "-"),
                 Step("Create and prepare the dataset", "04", "2 · The data, in *messages* format"),
                 Step("Fine-tune LLM using trl and the SFTTrainer", "04", "4 · The training settings: `SFTConfig`"),
                 Step("(the training run)", "04", "5 · Train, and watch it learn"),
                 Step("Test and evaluate the LLM", "05", "How much did fine-tuning buy?"),
                 Step("Deploy the LLM for production", "06", "8 · Use the tuned model"),
             ), home="04",
             newer="[How to fine-tune open LLMs in 2025](https://www.philschmid.de/fine-tune-llms-in-2025) (Llama-3.1-8B on a GPU, "
                   "QLoRA against Spectrum): the same steps with the same libraries"),
    Tutorial("autotrain", "AutoTrain Advanced (Hugging Face)",
             "https://github.com/huggingface/autotrain-advanced",
             "fine-tune without writing training code: a YAML file, a command line or a web UI", (
                 Step("Prepare the data (a messages column)", "03", "Ready for every tutorial"),
                 Step("Write the configuration (llm-sft)", "07", "-"),
                 Step("Run it: autotrain --config", "07", "Run it"),
                 Step("Compare with the other routes", "07", "Which route?"),
             ), home="07", stands="autotrain"),
)


def tutorial_map(number: str) -> str:
    """The tutorials that notebook ``number`` follows, step by step, with where this course does each
    step (Markdown; the notebook shows it near its top, and a test keeps the two the same).

    >>> print(tutorial_map("07").splitlines()[0])
    **AutoTrain Advanced (Hugging Face)**, step by step ([the original](https://github.com/huggingface/autotrain-advanced)):
    """
    by_number = {nb.number: nb for nb in NOTEBOOKS}
    out: list[str] = []
    for tutorial in (t for t in TUTORIALS if t.home == number):
        out += [f"**{tutorial.title}**, step by step ([the original]({tutorial.url})):", "",
                "| the tutorial's step | where |", "| --- | --- |"]
        for step in tutorial.steps:
            nb = by_number[step.notebook]
            section = f"*{step.section}*" if step.section != "-" else ""
            where = section or "this notebook" if step.notebook == number else \
                f"[notebook {nb.number}]({nb.filename})" + (f", {section}" if section else "")
            out.append(f"| {step.original} | {where} |")
        out.append("")
    return "\n".join(out).rstrip("\n")


def assignment_page(root: Path | None = None) -> str:
    """The lesson's assignment as a Markdown page: choose one tutorial, follow it here step by step, with where
    each cloud path stands (dated, from the table of :mod:`lessonlib.facts`; write it with ``LESSONLIB_LANG=en``)."""
    by_number = {nb.number: nb for nb in NOTEBOOKS}
    out = [
        "# Your assignment: follow one tutorial, end to end",
        "",
        f"The [lesson]({LESSON_URL}) ends with one exercise: **pick one of the four tutorials and follow it.**",
        "Choose one below. Open the original beside this course, and do each step in the notebook named in",
        "the table: the code there is the tutorial's code, on this machine, with no key and no GPU.",
        "Two of the four have changed since the lesson was written: OpenAI now refuses most new fine-tuning jobs,",
        "and AutoTrain is no longer maintained. Each section says where its path stands, and since when.",
        "",
        "You are done when you can show:",
        "",
        "1. a training file that the data doctor passes (`lessonlib data validate`);",
        "2. its cost, before anything was sent;",
        "3. a tuned model, and its score next to the best baseline's, with the interval of the gain;",
        "4. one sentence: was it worth it? (notebook 02's checklist, with your numbers).",
        "",
        f"Before you choose, the lesson's talk [*To fine-tune or not to fine-tune*]({TALK_URL}) is worth its time.",
    ]
    for tutorial in TUTORIALS:
        out += ["", f"## {tutorial.title}", "", f"[The original]({tutorial.url}): {tutorial.what}."]
        if tutorial.newer:
            out += ["", f"A newer edition: {tutorial.newer}."]
        if tutorial.stands:
            out += ["", "**Where it stands:**", ""] + [f"- {line}" for line in facts.where_paths_stand(tutorial.stands)]
        out += ["", "| the tutorial's step | here |", "| --- | --- |"]
        for step in tutorial.steps:
            nb = by_number[step.notebook]
            where = f"[notebook {nb.number}]({nb.filename})"
            if step.section != "-":
                where += f", section *{step.section}*"
            out.append(f"| {step.original} | {where} |")
    return "\n".join(out) + "\n"
