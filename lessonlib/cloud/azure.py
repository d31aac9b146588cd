"""Azure's extra step: deploy the tuned model (billed by the hour while it exists), call it, delete it.

Deployments are made through Azure Resource Manager (the management plane), not the OpenAI data
plane, as in the Microsoft Learn tutorial: ``PUT .../accounts/{resource}/deployments/{name}`` with an
Entra ID bearer token (``az account get-access-token --query accessToken -o tsv``). Settings come
from the environment: ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``, ``AZURE_OPENAI_RESOURCE``,
``AZURE_MANAGEMENT_TOKEN`` (a secret: never shown) and, for tests, ``AZURE_MANAGEMENT_ENDPOINT``.

Before deploying, :func:`plan_deployment` shows the hourly hosting price from the dated price
table and what a day and a month cost; :func:`deploy` needs an explicit confirmation, and
:func:`delete` (``lessonlib azure undeploy``) stops the meter.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import LessonError
from ..i18n import _
from . import keys

ARM_API_VERSION = "2024-10-01"
DEVELOPER_API_VERSION = "2025-07-01-preview"  # Microsoft Learn's Developer-tier deployment example
DEVELOPER_SKU = {"name": "developertier", "capacity": 50}
SETTINGS = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_OPENAI_RESOURCE")


@dataclass
class DeploymentPlan:
    model: str  # the fine-tuned model name the job produced
    name: str  # the deployment name you will call it by
    url: str  # the Resource Manager URL of the deployment
    body: dict[str, Any]  # the PUT body
    hourly_usd: float  # hosting price per hour while deployed
    prices_as_of: str  # date of the price row
    tier: str = ""  # "developer": Azure's Developer tier (no hosting fee, deleted after 24 hours); "": Standard

    def describe(self) -> str:
        if self.tier == "developer":
            deploy = _("deploy {model} as '{name}' on the Developer tier: no hosting fee (${hourly:.2f}/hour; prices of {as_of}), only the "
                       "tokens it serves; Azure deletes it after 24 hours.").format(model=self.model, name=self.name, hourly=self.hourly_usd,
                                                                                    as_of=self.prices_as_of)
            return f"{deploy}\n  PUT {self.url}\n  {self.body}"
        deploy = _("deploy {model} as '{name}': hosting ${hourly:.2f}/hour while it exists (${daily:,.2f}/day, ${monthly:,.2f}/month; "
                   "prices of {as_of}), on top of the tokens it serves.").format(
            model=self.model, name=self.name, hourly=self.hourly_usd, daily=self.hourly_usd * 24, monthly=self.hourly_usd * 730,
            as_of=self.prices_as_of)
        stop = _("Stop paying with `lessonlib azure undeploy --name {name}`.").format(name=self.name)
        return f"{deploy}\n  PUT {self.url}\n  {self.body}\n{stop}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _setting(name: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or "{" + name + "}"


def deployment_url(name: str, api_version: str = ARM_API_VERSION) -> str:
    base = os.environ.get("AZURE_MANAGEMENT_ENDPOINT", "https://management.azure.com").rstrip("/")
    return (f"{base}/subscriptions/{_setting('AZURE_SUBSCRIPTION_ID')}/resourceGroups/{_setting('AZURE_RESOURCE_GROUP')}"
            f"/providers/Microsoft.CognitiveServices/accounts/{_setting('AZURE_OPENAI_RESOURCE')}/deployments/{name}?api-version={api_version}")


def plan_deployment(model: str, name: str, *, tier: str = "") -> DeploymentPlan:
    """The deployment request and its hourly cost (no network). ``tier="developer"``: Microsoft Learn's Developer
    deployment (sku ``developertier``, api-version 2025-07-01-preview), no hosting fee, deleted after 24 hours."""
    from .. import costs

    base = model.split(":")[1] if model.startswith("ft:") else model.split(".ft-")[0]
    try:
        price = costs.get_price(base, "azure", tier or None)
    except LessonError:
        price = costs.get_price("gpt-4o-mini", "azure", tier or None)
    sku = DEVELOPER_SKU if tier == "developer" else {"name": "standard", "capacity": 1}
    body = {"sku": sku, "properties": {"model": {"format": "OpenAI", "name": model, "version": "1"}}}
    url = deployment_url(name, DEVELOPER_API_VERSION if tier == "developer" else ARM_API_VERSION)
    return DeploymentPlan(model, name, url, body, price.hosting_per_hour, price.as_of, tier)


def _ready() -> bool:
    return all(os.environ.get(n, "").strip() for n in SETTINGS) and keys.find("AZURE_MANAGEMENT_TOKEN") is not None


def _request(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    import httpx

    missing = [n for n in SETTINGS if not os.environ.get(n, "").strip()]
    if missing:
        raise LessonError(_("{names} not set").format(names=', '.join(missing)), fix=_("export them (see the Azure portal: your Azure OpenAI resource's overview)"))
    token = keys.require("AZURE_MANAGEMENT_TOKEN")
    try:
        response = httpx.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.HTTPError:
        raise LessonError(_("cannot reach Azure Resource Manager"), fix=_("check the network (and AZURE_MANAGEMENT_ENDPOINT)")) from None
    if response.status_code in (401, 403):
        raise LessonError(_("Azure refused the management token ({status_code})").format(status_code=response.status_code),
                          fix=_("get a fresh one: az account get-access-token --query accessToken -o tsv")) from None
    if response.status_code >= 400:
        try:
            message = response.json().get("error", {}).get("message", "")
        except ValueError:
            message = response.text[:200]
        raise LessonError(_("Azure answered {status_code}: {message}").format(status_code=response.status_code, message=keys.redact(message)))
    return response.json() if response.content else {}


def deploy(model: str, name: str, *, confirm: bool = False, dry_run: bool = False, tier: str = "") -> dict[str, Any]:
    """Create the deployment (billed hourly, or on the Developer tier for 24 hours): needs ``confirm``; a dry run
    without settings or when asked."""
    plan = plan_deployment(model, name, tier=tier)
    if dry_run or not _ready():
        return {"dry_run": True, "plan": plan.to_dict(), "note": "dry run: nothing was sent" + ("" if dry_run else " (Azure management settings or token not set)")}
    if not confirm and tier != "developer":
        raise LessonError(_("deploying costs ${hourly_usd:.2f}/hour until you delete it; nothing was sent").format(hourly_usd=plan.hourly_usd), fix=_("confirm with --yes"))
    result = _request("PUT", plan.url, plan.body)
    state = result.get("properties", {}).get("provisioningState", "Accepted")
    return {"dry_run": False, "plan": plan.to_dict(), "state": state, "note": f"deployment '{name}' {state}; call it with `lessonlib azure chat --model {name} ...`"}


def delete(name: str) -> dict[str, Any]:
    """Delete the deployment: the hourly hosting charge stops."""
    _request("DELETE", deployment_url(name))
    return {"deleted": name, "note": "deleted: hosting charges stop"}
