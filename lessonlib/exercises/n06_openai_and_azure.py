"""Notebook 06 · OpenAI and Azure OpenAI: its exercises and their checks."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, _
from .core import Hint, exercise, train_path


@exercise("06.1", 2, N_("Your own job, then cancel it"), answer="job_id", setup='''
from lessonlib import corpora, service

client = service.client()    # the local service speaks the OpenAI API
''', solution='''
with open(corpora.split_path("recipes", "valid"), "rb") as f:
    uploaded = client.files.create(file=f, purpose="fine-tune")
job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini-2024-07-18", suffix="mine",
                                     method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})
client.fine_tuning.jobs.cancel(job.id)
job_id = job.id
''', wrong='''
with open(corpora.split_path("recipes", "valid"), "rb") as f:
    uploaded = client.files.create(file=f, purpose="fine-tune")
job_id = client.fine_tuning.jobs.create(training_file=uploaded.id, model="gpt-4o-mini-2024-07-18").id
client.fine_tuning.jobs.cancel(job_id)
''')
def _check_own_job(job_id: Any) -> str:
    from .. import service

    client = service.client()
    job = client.fine_tuning.jobs.retrieve(str(job_id))
    if job.suffix != "mine":
        raise Hint(_('name your model: `suffix="mine"` in `fine_tuning.jobs.create`.'))
    method = job.method.model_dump() if job.method is not None else {}
    epochs = ((method.get("supervised") or {}).get("hyperparameters") or {}).get("n_epochs")
    if epochs != 1:
        raise Hint(_("set one epoch through `method`: {'type': 'supervised', 'supervised': {'hyperparameters': "
                     "{'n_epochs': 1}}}."))
    if job.status in ("succeeded", "failed"):  # it ended on its own: nobody cancelled it
        raise Hint(_("job {id} ended on its own ({status}): it was never cancelled. Create another and cancel it while it "
                     "waits or trains: `client.fine_tuning.jobs.cancel(job.id)`.").format(id=job.id, status=job.status))
    if job.status != "cancelled":
        raise Hint(_("the job is still {status}: cancel it with `client.fine_tuning.jobs.cancel(job.id)`.").format(status=job.status))
    return _("job {id}: suffix 'mine', one epoch, cancelled. On OpenAI the same calls spend money: check the cost "
             "first.").format(id=job.id)


@exercise("06.2", 1, N_("Will it fit the budget?"), answer="fits", setup='''
from lessonlib import corpora
from lessonlib.cloud import jobs
''', solution='''
plan = jobs.plan_job(corpora.split_path("recipes", "train"), model="gpt-4.1-mini", epochs=4)
print(f"${plan.estimated_usd:.2f} for {plan.epochs} epochs of {plan.training_tokens:,} tokens")
fits = plan.estimated_usd <= 0.25
''', wrong='fits = True')
def _check_budget(fits: Any) -> str:
    from ..cloud import jobs

    plan = jobs.plan_job(train_path(), model="gpt-4.1-mini", epochs=4)
    expected = plan.estimated_usd <= 0.25
    if not isinstance(fits, bool):
        raise Hint(_("answer True or False: does the job's estimated cost fit a $0.25 budget?"))
    if fits != expected:
        raise Hint(_('price it first: `jobs.plan_job(..., model="gpt-4.1-mini", epochs=4).estimated_usd`, and compare '
                     "with $0.25."))
    fit = (_("${usd:.2f} for 4 epochs: within a $0.25 budget.") if expected else
           _("${usd:.2f} for 4 epochs: over a $0.25 budget.")).format(usd=plan.estimated_usd)
    return fit + " " + _("`lessonlib openai submit --budget` refuses a job over it.")
