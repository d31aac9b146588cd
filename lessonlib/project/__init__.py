"""Your own data, start to finish: a project folder made from a learner's file, and the lesson's steps run on it.

:func:`new` makes the folder (:mod:`~lessonlib.project.folder`); :func:`run` runs the steps
(:mod:`~lessonlib.project.steps`: prepare, baselines, train, evaluate, decide, export), each also alone;
:mod:`~lessonlib.project.scoring` scores each strategy with the project's metric;
:mod:`~lessonlib.project.report` writes ``report.json``, ``report.md`` and the model card.

>>> from lessonlib.project import STEPS
>>> STEPS
('prepare', 'baselines', 'train', 'evaluate', 'decide', 'export')
"""

from .folder import Project, Settings, new
from .report import write_report
from .steps import STEPS, run

__all__ = ["STEPS", "Project", "Settings", "new", "run", "write_report"]
