"""Thin ipywidgets views over lessonlib's pure functions.

Each view takes plain values or calls one function and shows its result; there is no logic
here that the command line lacks. Imported in a notebook, it also shows a step refused for lack of
memory (:class:`~lessonlib.errors.MemoryShortfall`) as its problem, its fix and a button that shuts
down the learner's other idle kernels (:class:`KernelCleaner`), instead of a traceback. Views are tested like ipywidgets' own tests: set ``.value``,
call ``.click()``, assert on the state (no browser needed).

>>> from lessonlib.widgets import ChatBox          # doctest: +SKIP
>>> box = ChatBox(max_new_tokens=30)              # doctest: +SKIP
>>> box.prompt.value = "Name a fruit."            # doctest: +SKIP
>>> box.send.click()                              # doctest: +SKIP
>>> box.reply.value                               # doctest: +SKIP
'...'
"""

from .chat import ChatBox
from .data_doctor import BreakEvenExplorer, DataDoctor
from .decide import Checklist
from .kernels import KernelCleaner, show_memory_problems_in_notebooks
from .limits import DataSizeStudy
from .static import wait_for_background
from .train import BeforeAfter, JobMonitor, TrainingMonitor

__all__ = ["BeforeAfter", "BreakEvenExplorer", "ChatBox", "Checklist", "DataDoctor", "DataSizeStudy", "JobMonitor",
           "KernelCleaner", "TrainingMonitor", "wait_for_background"]

show_memory_problems_in_notebooks()
