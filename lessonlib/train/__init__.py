"""Local fine-tuning with TRL + PEFT: the recipe, the machine plan, optional measures, the runner, events.

* :mod:`~lessonlib.train.config`: ``RunConfig``, the typed settings of a run (YAML, command-line flags);
* :mod:`~lessonlib.train.recipe`: the SFT recipe on public APIs (``LoraConfig``, ``SFTConfig``, ``SFTTrainer``);
* :mod:`~lessonlib.train.machine`: the public settings chosen for this machine, and which measures apply;
* :mod:`~lessonlib.train.optimizations`: optional speed and memory measures beyond public APIs, each guarded;
* :mod:`~lessonlib.train.events`: progress events, the stop flag, the ``TrainerCallback``;
* :mod:`~lessonlib.train.runner`: ``run(cfg)``, the recipe with the plan, measures, checkpoints and a model card;
* :mod:`~lessonlib.train.isolated`: ``run_in_subprocess(cfg)``, the same run in a child process that gives all its memory back.

>>> from lessonlib.train import RunConfig
>>> RunConfig().method, RunConfig().max_steps
('lora', 20)
"""

from .config import RunConfig
from .events import ProgressEvent, StopFlag, progress_callback
from .isolated import run_in_subprocess
from .machine import MachinePlan, plan_for
from .runner import RunResult, export_command, last_checkpoint, plan_run, run

__all__ = ["MachinePlan", "ProgressEvent", "RunConfig", "RunResult", "StopFlag", "export_command", "last_checkpoint",
           "plan_for", "plan_run", "progress_callback", "run", "run_in_subprocess"]
