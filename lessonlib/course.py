"""The course map: the lesson's four questions and four tutorials -> numbered notebooks.

One table, used by ``00-start-here.ipynb`` and by ``lessonlib doctor``'s neighbours, so the map
and the notebooks on disk never disagree: a notebook is marked *ready* when its file exists.

>>> [n.number for n in NOTEBOOKS][:3]
['00', '01', '02']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .settings import repo_root


@dataclass(frozen=True)
class Notebook:
    number: str  # two-digit position in the course
    slug: str  # file name without number and extension
    title: str  # what a learner sees
    lesson_part: str  # which question or tutorial of the lesson it answers

    @property
    def filename(self) -> str:
        return f"{self.number}-{self.slug}.ipynb"

    def path(self, root: Path | None = None) -> Path:
        return (root or repo_root()) / "notebooks" / self.filename

    def ready(self, root: Path | None = None) -> bool:
        return self.path(root).is_file()


NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook("00", "start-here", "Start here: the companion, your machine, a first chat", "-"),
    Notebook("01", "what-is-fine-tuning", "What is fine-tuning? Few-shot limits in tokens and money", "Question 1: what is fine-tuning"),
    Notebook("02", "when-and-why", "When and why: the checklist, with measured baselines", "Question 2: when and why"),
    Notebook("03", "prepare-your-data", "Prepare your data: the data doctor", "Question 3: how (data) / OpenAI and Azure tutorials, step 1"),
    Notebook("04", "fine-tune-locally", "Fine-tune locally with TRL + LoRA", "Question 3: how / Hugging Face TRL tutorial"),
    Notebook("05", "evaluate", "Evaluate: prompt, retrieval and tuned model side by side", "Question 2: benefits, measured"),
    Notebook("06", "openai-and-azure", "OpenAI and Azure OpenAI fine-tuning jobs (dry run without a key)", "OpenAI and Azure OpenAI tutorials"),
    Notebook("07", "autotrain", "AutoTrain Advanced: the no-code route", "Hugging Face AutoTrain tutorial"),
    Notebook("08", "limits", "The limits: overfitting, forgetting, data size", "Question 4: the limits"),
)


def notebook_map(root: Path | None = None) -> str:
    """The course map as a Markdown table, with each notebook's state on disk."""
    rows = ["| # | notebook | answers | state |", "| --- | --- | --- | --- |"]
    for nb in NOTEBOOKS:
        state = "ready" if nb.ready(root) else "coming soon"
        name = f"[{nb.title}]({nb.filename})" if nb.ready(root) else nb.title
        rows.append(f"| {nb.number} | {name} | {nb.lesson_part} | {state} |")
    return "\n".join(rows)
