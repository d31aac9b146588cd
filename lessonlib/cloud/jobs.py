"""OpenAI and Azure OpenAI fine-tuning jobs through the real ``openai`` SDK — safe by default.

The cookbook's and Microsoft Learn's steps: upload the training (and validation) file, create the
job, follow its status and events, list checkpoints, cancel, then chat with the tuned model.

Safety rules, enforced here:

* :func:`plan_job` checks the data with the data doctor and prices the job *before* anything is sent;
  a file with errors is refused.
* :func:`submit` sends nothing without a key (it returns a **dry run**: the exact requests that would
  be sent and the estimated cost), and with a key starts a paid job only when the estimate is within
  ``budget`` or ``confirm=True`` says so explicitly.
* SDK errors become one plain :class:`~lessonlib.errors.LessonError` (bad key, rate limit after the
  SDK's retries, server error, a job that failed validation); keys never appear in any output.

The OpenAI client honours ``OPENAI_BASE_URL`` as the SDK does, so any compatible endpoint (and the
test suite's loopback server) works. Azure uses ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY``
(or ``AZURE_OPENAI_AD_TOKEN``, an Entra ID token) and ``OPENAI_API_VERSION``.

>>> plan = plan_job("data/recipes/train.jsonl", model="gpt-4o-mini")      # doctest: +SKIP
>>> print(plan.describe())                                                # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import facts
from ..errors import LessonError
from ..i18n import _
from . import keys

PROVIDERS = ("openai", "azure")
AZURE_API_VERSION = "2025-04-01-preview"  # Microsoft Learn's example for the Developer training tier
TERMINAL = {"succeeded", "failed", "cancelled"}


# --------------------------------------------------------------------------------------------
# Plan (no network)
# --------------------------------------------------------------------------------------------


@dataclass
class JobPlan:
    """Everything a fine-tuning job will be, before it exists: files, settings, tokens, cost."""

    provider: str  # "openai" or "azure"
    model: str  # base model snapshot as the provider names it
    training_file: str  # local path
    validation_file: str | None  # local path, or None
    examples: int  # training examples
    training_tokens: int  # billed tokens per epoch
    epochs: int  # epochs (the provider's default rule when not given)
    epochs_given: bool  # whether the learner fixed the epochs (else the provider decides)
    estimated_usd: float  # training cost estimate
    prices_as_of: str  # date of the price row used
    suffix: str | None = None  # appears in the tuned model's name
    seed: int | None = None  # for reproducible jobs
    batch_size: int | None = None  # None: the provider decides
    learning_rate_multiplier: float | None = None  # None: the provider decides
    tier: str = ""  # Azure's training tier: "" (Standard) or "developer" (half of Global, spare capacity)

    def hyperparameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.epochs_given:
            values["n_epochs"] = self.epochs
        if self.batch_size:
            values["batch_size"] = self.batch_size
        if self.learning_rate_multiplier:
            values["learning_rate_multiplier"] = self.learning_rate_multiplier
        return values

    def job_body(self, training_file_id: str, validation_file_id: str | None) -> dict[str, Any]:
        """The JSON body of the create-job request."""
        body: dict[str, Any] = {"model": self.model, "training_file": training_file_id}
        if validation_file_id:
            body["validation_file"] = validation_file_id
        if self.suffix:
            body["suffix"] = self.suffix
        if self.seed is not None:
            body["seed"] = self.seed
        if self.tier == "developer":
            body["trainingType"] = "developerTier"  # the SDK sends it with extra_body={"trainingType": "developerTier"}
        hyper = self.hyperparameters()
        if hyper:
            if self.provider == "openai":
                body["method"] = {"type": "supervised", "supervised": {"hyperparameters": hyper}}
            else:
                body["hyperparameters"] = hyper
        return body

    def requests(self) -> list[dict[str, Any]]:
        """The exact requests :func:`submit` sends, in order (file contents summarised)."""
        prefix = "{AZURE_OPENAI_ENDPOINT}/openai" if self.provider == "azure" else "{OPENAI_BASE_URL or https://api.openai.com/v1}"
        query = f"?api-version={os.environ.get('OPENAI_API_VERSION', AZURE_API_VERSION)}" if self.provider == "azure" else ""
        out = []
        for label, path in (("training", self.training_file), ("validation", self.validation_file)):
            if path:
                size = Path(path).stat().st_size
                out.append({"method": "POST", "url": f"{prefix}/files{query}", "body": {"purpose": "fine-tune", "file": f"{Path(path).name} ({size:,} bytes, {label})"}})
        body = self.job_body("<id of the uploaded training file>", "<id of the uploaded validation file>" if self.validation_file else None)
        out.append({"method": "POST", "url": f"{prefix}/fine_tuning/jobs{query}", "body": body})
        return out

    def cost_line(self) -> str:
        """The estimated training cost, with the date of its prices (Azure's Developer tier: an upper bound)."""
        text = (_("estimated training cost, Developer tier: {tokens:,} tokens x {epochs} = {billed:,} billed tokens -> at most "
                  "${usd:,.2f} (prices of {as_of})") if self.tier == "developer" else
                _("estimated training cost: {tokens:,} tokens x {epochs} = {billed:,} billed tokens -> ${usd:,.2f} (prices of {as_of})"))
        return text.format(tokens=self.training_tokens, epochs=self.epochs, billed=self.training_tokens * self.epochs,
                           usd=self.estimated_usd, as_of=self.prices_as_of)

    def describe(self) -> str:
        import json

        epochs = _("{n} epochs").format(n=self.epochs) + ("" if self.epochs_given else _(" (the provider's default for this size)"))
        lines = [
            _("{provider} fine-tuning job: {model} on {examples} examples, {epochs}").format(
                provider=self.provider, model=self.model, examples=self.examples, epochs=epochs),
            self.cost_line(),
            _("requests that will be sent:"),
        ]
        for r in self.requests():
            lines.append(f"  {r['method']} {r['url']}\n    {json.dumps(r['body'], ensure_ascii=False)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "requests": self.requests()}


def plan_job(
    training_file: str | Path,
    *,
    model: str,
    provider: str = "openai",
    validation_file: str | Path | None = None,
    epochs: int | None = None,
    suffix: str | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    learning_rate_multiplier: float | None = None,
    tier: str = "",
) -> JobPlan:
    """Check the data and price the job; refuse files with errors (no network). ``tier="developer"``: Azure's
    Developer tier, priced as such."""
    from .. import costs, data

    if provider not in PROVIDERS:
        raise LessonError(_("unknown provider '{provider}'").format(provider=provider), fix=_("use openai or azure"))
    if tier and (provider != "azure" or tier != "developer"):
        raise LessonError(_("unknown training tier '{tier}' for {provider}").format(tier=tier, provider=provider),
                          fix=_("only Azure has tiers: leave it out (Standard) or use developer"))
    price = costs.get_price(model, provider, tier or None)
    reports = []
    for label, path in (("training", training_file), ("validation", validation_file)):
        if path is None:
            continue
        report = data.validate(path, model=price.model, provider=provider)
        if not report.ok:
            raise LessonError(
                (_("the training file has errors, so no job was planned:\n{summary}") if label == "training" else
                 _("the validation file has errors, so no job was planned:\n{summary}")).format(summary=report.summary(max_lines=3)),
                fix=_("fix them first (`lessonlib data validate {path}`)").format(path=path),
            )
        reports.append(report)
    train = reports[0]
    cost = costs.training_cost(train.cost.billed_tokens_per_epoch, epochs, price, n_examples=train.valid_examples)
    return JobPlan(
        provider=provider, model=price.model, training_file=str(training_file),
        validation_file=str(validation_file) if validation_file else None, examples=train.valid_examples,
        training_tokens=cost.billed_tokens_per_epoch, epochs=cost.epochs, epochs_given=epochs is not None,
        estimated_usd=round(cost.usd, 4), prices_as_of=price.as_of, suffix=suffix, seed=seed,
        batch_size=batch_size, learning_rate_multiplier=learning_rate_multiplier, tier=tier,
    )


# --------------------------------------------------------------------------------------------
# Client and errors
# --------------------------------------------------------------------------------------------


def has_key(provider: str) -> bool:
    if provider == "azure":
        return bool(keys.find("AZURE_OPENAI_ENDPOINT") and (keys.find("AZURE_OPENAI_API_KEY") or keys.find("AZURE_OPENAI_AD_TOKEN")))
    return bool(keys.find("OPENAI_API_KEY"))


def make_client(provider: str = "openai", *, max_retries: int = 3, timeout: float = 60.0) -> Any:
    """A real SDK client, created only when a request is about to be sent (never at import)."""
    import openai

    if provider == "azure":
        endpoint = keys.require("AZURE_OPENAI_ENDPOINT")
        token = keys.find("AZURE_OPENAI_AD_TOKEN")
        auth = {"azure_ad_token": token} if token and not keys.find("AZURE_OPENAI_API_KEY") else {"api_key": keys.require("AZURE_OPENAI_API_KEY")}
        return openai.AzureOpenAI(azure_endpoint=endpoint, api_version=os.environ.get("OPENAI_API_VERSION", AZURE_API_VERSION),
                                  max_retries=max_retries, timeout=timeout, **auth)
    return openai.OpenAI(api_key=keys.require("OPENAI_API_KEY"), max_retries=max_retries, timeout=timeout)


@contextlib.contextmanager
def friendly_errors(provider: str) -> Iterator[None]:
    """Turn the SDK's exceptions into one plain LessonError (keys redacted)."""
    import openai

    name = "Azure OpenAI" if provider == "azure" else "OpenAI"
    variable = "AZURE_OPENAI_API_KEY" if provider == "azure" else "OPENAI_API_KEY"
    try:
        yield
    except openai.AuthenticationError:
        raise LessonError(_("{name} refused the API key (401)").format(name=name), fix=_("check {variable}: a typo, an expired or revoked key, or the wrong project").format(variable=variable)) from None
    except openai.PermissionDeniedError as exc:
        if _api_code(exc) == "training_not_available":
            raise LessonError(_("{name} refused to start the job (403 training_not_available). {why}").format(name=name, why=facts.refused_training(provider)),
                              fix=_("what still works: the same calls on the local service (notebook 06 with RUN_FOR_REAL = False, or "
                                    "`lessonlib serve`), Azure OpenAI, and TRL on your machine (notebook 04) or on a GPU")) from None
        raise LessonError(_("{name} denied access (403): {message}").format(name=name, message=keys.redact(_api_message(exc))), fix=_("this key's project or organisation may not have fine-tuning access to that model")) from None
    except openai.RateLimitError as exc:
        raise LessonError(_("{name} rate limit or quota reached (429), even after retrying: {message}").format(name=name, message=keys.redact(_api_message(exc))), fix=_("wait a minute and retry, or check your usage limits and billing")) from None
    except openai.NotFoundError as exc:
        raise LessonError(_("not found (404): {message}").format(message=keys.redact(_api_message(exc))), fix=_("check the job id, file id or model name")) from None
    except openai.BadRequestError as exc:
        raise LessonError(_("{name} rejected the request (400): {message}").format(name=name, message=keys.redact(_api_message(exc))), fix=_("the message above says which field; `lessonlib data validate` checks files")) from None
    except openai.InternalServerError as exc:
        raise LessonError(_("{name} had a server error ({status_code}) even after retrying").format(name=name, status_code=exc.status_code), fix=_("nothing is wrong on your side: retry in a few minutes")) from None
    except openai.APIConnectionError:
        raise LessonError(_("cannot reach {name}").format(name=name), fix=_("check the network (and OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT); `lessonlib doctor` tells whether "
                                                        "the network answers")) from None
    except openai.APIStatusError as exc:
        raise LessonError(_("{name} answered {status_code}: {message}").format(name=name, status_code=exc.status_code, message=keys.redact(_api_message(exc)))) from None


def _api_code(exc: Any) -> str:
    """The ``code`` of an API error's body (OpenAI: ``{"error": {"code": ...}}``), or ""."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    return str(inner.get("code") or "") if isinstance(inner, dict) else str(getattr(exc, "code", "") or "")


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", "") or exc).splitlines()[0]


# --------------------------------------------------------------------------------------------
# Submit, follow, use
# --------------------------------------------------------------------------------------------


@dataclass
class Submission:
    """What :func:`submit` did: a dry run (nothing sent) or a created job."""

    dry_run: bool  # True: nothing was sent
    plan: JobPlan  # what was (or would be) sent, with the cost estimate
    job: dict[str, Any] | None = None  # the created job (id, status, model, ...)
    files: dict[str, str] = field(default_factory=dict)  # uploaded file ids by role
    note: str = ""  # why it was a dry run, or what to do next

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "plan": self.plan.to_dict(), "job": self.job, "files": self.files, "note": self.note}


def check_budget(plan: JobPlan, *, budget: float | None, confirm: bool) -> None:
    """Refuse a paid job over the budget, or with neither a budget nor an explicit confirmation."""
    cost = f"${plan.estimated_usd:,.2f}"
    if budget is not None and plan.estimated_usd > budget and not confirm:
        raise LessonError(_("the estimated training cost {cost} is over your budget of ${budget:,.2f}; nothing was sent").format(cost=cost, budget=budget),
                          fix=_("raise --budget, use fewer epochs or examples, or confirm explicitly with --yes"))
    if budget is None and not confirm:
        raise LessonError(_("this job would cost about {cost} (prices of {prices_as_of}); nothing was sent").format(cost=cost, prices_as_of=plan.prices_as_of),
                          fix=_("pass --budget USD (at least {estimated_usd:.2f}) or --yes to start it").format(estimated_usd=plan.estimated_usd))


def submit(plan: JobPlan, *, budget: float | None = None, confirm: bool = False, dry_run: bool = False) -> Submission:
    """Upload the files and create the job — or, without a key or with ``dry_run``, show what would be sent."""
    if dry_run or not has_key(plan.provider):
        why = "dry run (asked)" if dry_run else f"dry run: no {'Azure OpenAI' if plan.provider == 'azure' else 'OpenAI'} key is set"
        return Submission(True, plan, note=why + "; nothing was sent")
    check_budget(plan, budget=budget, confirm=confirm)
    client = make_client(plan.provider)
    files: dict[str, str] = {}
    with friendly_errors(plan.provider):
        for role, path in (("training", plan.training_file), ("validation", plan.validation_file)):
            if path:
                with open(path, "rb") as handle:
                    files[role] = client.files.create(file=handle, purpose="fine-tune").id
        body = plan.job_body(files["training"], files.get("validation"))
        extra = {"trainingType": body.pop("trainingType")} if "trainingType" in body else None  # Azure's, not in the SDK's signature
        job = client.fine_tuning.jobs.create(**body, extra_body=extra)
    return Submission(False, plan, job=_job_dict(job), files=files, note=f"job {job.id} created; follow it with `lessonlib {plan.provider} status {job.id}`")


def _job_dict(job: Any) -> dict[str, Any]:
    keep = ("id", "status", "model", "fine_tuned_model", "created_at", "finished_at", "trained_tokens", "training_file", "validation_file", "error")
    raw = job.model_dump() if hasattr(job, "model_dump") else dict(job)
    return {k: raw.get(k) for k in keep}


def status(job_id: str, *, provider: str = "openai") -> dict[str, Any]:
    """The job's current state (raises a plain error for a job that failed validation)."""
    with friendly_errors(provider):
        job = _job_dict(make_client(provider).fine_tuning.jobs.retrieve(job_id))
    return job


def events(job_id: str, *, provider: str = "openai", limit: int = 50) -> list[dict[str, Any]]:
    """The job's events, oldest first."""
    with friendly_errors(provider):
        page = make_client(provider).fine_tuning.jobs.list_events(job_id, limit=limit)
        rows = [{"created_at": e.created_at, "level": e.level, "message": e.message} for e in page.data]
    return sorted(rows, key=lambda r: r["created_at"])


def checkpoints(job_id: str, *, provider: str = "openai") -> list[dict[str, Any]]:
    """The job's checkpoints: each a usable model name with its step and metrics."""
    with friendly_errors(provider):
        page = make_client(provider).fine_tuning.jobs.checkpoints.list(job_id)
        return [{"step": c.step_number, "model": c.fine_tuned_model_checkpoint, "metrics": c.metrics.model_dump() if c.metrics else {}} for c in page.data]


def cancel(job_id: str, *, provider: str = "openai") -> dict[str, Any]:
    with friendly_errors(provider):
        return _job_dict(make_client(provider).fine_tuning.jobs.cancel(job_id))


def follow(job_id: str, *, provider: str = "openai", on_event: Callable[[dict[str, Any]], None] | None = None,
           interval: float = 10.0, timeout: float = 3 * 3600) -> dict[str, Any]:
    """Poll until the job ends, passing each new event (and status change) to ``on_event``."""
    seen: set[tuple[Any, str]] = set()
    emit = on_event or (lambda e: None)
    deadline = time.monotonic() + timeout
    last_status = None
    while True:
        job = status(job_id, provider=provider)
        if job["status"] != last_status:
            last_status = job["status"]
            emit({"kind": "status", "status": job["status"], "message": f"status: {job['status']}"})
        for event in events(job_id, provider=provider):
            key = (event["created_at"], event["message"])
            if key not in seen:
                seen.add(key)
                emit({"kind": "event", **event})
        if job["status"] in TERMINAL:
            if job["status"] == "failed":
                error = job.get("error") or {}
                raise LessonError(_("the job {job_id} failed: {reason}").format(job_id=job_id, reason=error.get('message') or _("no reason given")), fix=_("fix what it names (often the training file) and submit again; failed jobs are not billed"))
            return job
        if time.monotonic() > deadline:
            raise LessonError(_("the job {job_id} is still {status} after {timeout:.0f} s").format(job_id=job_id, status=job['status'], timeout=timeout), fix=_("check later with `lessonlib {provider} status {job_id}`").format(provider=provider, job_id=job_id))
        time.sleep(interval)


def chat(model: str, prompt: str, *, provider: str = "openai", system: str | None = None, max_tokens: int = 200) -> str:
    """One reply from a (tuned) model; on Azure ``model`` is the deployment name."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    with friendly_errors(provider):
        response = make_client(provider).chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0)
    return response.choices[0].message.content or ""
