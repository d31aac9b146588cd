"""Local fine-tuning: a typed run configuration, machine-aware settings, a TRL/PEFT runner with events.

>>> from lessonlib.train import RunConfig
>>> RunConfig().method, RunConfig().max_steps
('lora', 20)
"""

from .config import RunConfig
from .machine import MachinePlan, plan_for
from .runner import ProgressEvent, RunResult, StopFlag, export_command, last_checkpoint, run

__all__ = ["MachinePlan", "ProgressEvent", "RunConfig", "RunResult", "StopFlag", "export_command", "last_checkpoint", "plan_for", "run"]
