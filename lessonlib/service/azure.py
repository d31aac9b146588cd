"""Azure OpenAI's extra parts on the local service: deployments, and chat through a deployment.

On Azure a tuned model answers only once it is **deployed**: a ``PUT`` to the management plane
(Azure Resource Manager, ``AZURE_MANAGEMENT_ENDPOINT``) creates the deployment, the data plane's
``/openai/deployments/{name}/chat/completions`` then answers, and a ``DELETE`` stops it (and, on
Azure, its hourly hosting charge). This module gives the local service those three behaviours, so
the Microsoft Learn tutorial's code and ``lessonlib azure deploy/chat/undeploy`` run unchanged:

* ``PUT|GET|DELETE /subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.CognitiveServices/
  accounts/{a}/deployments/{name}?api-version=…`` and ``GET …/deployments``, with a bearer token
  (any token on loopback; with ``--keys``, a learner's key, and each learner sees only their own);
* ``POST /openai/deployments/{name}/chat/completions?api-version=…`` (what ``AzureOpenAI`` calls
  for ``chat.completions.create(model=name)``): 404 ``DeploymentNotFound`` until deployed.

Files and jobs under ``/openai`` are the OpenAI routes themselves (see :mod:`lessonlib.service.app`);
:func:`api_version` is the check they share here. Subscription, resource group and account are
recorded in the deployment's id but not checked: the local service is one "resource".
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from .completions import adapter_for, complete
from .context import Service, caller, service
from .errors import ApiError
from .requests import ChatRequest, DeploymentRequest


def api_version(request: Request) -> None:
    """Azure's data plane needs ``?api-version=`` on every request (the ``AzureOpenAI`` client adds it)."""
    if not request.query_params.get("api-version"):
        raise ApiError(400, "Missing required query parameter 'api-version' (e.g. ?api-version=2024-10-21)",
                       param="api-version", code="MissingApiVersionParameter")


ACCOUNT = ("/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.CognitiveServices"
           "/accounts/{account}/deployments")


router = APIRouter()


def manager(request: Request) -> str:
    """The owner of a management request: Resource Manager always wants a bearer token."""
    if not request.headers.get("authorization", "").startswith("Bearer "):
        raise ApiError(401, "Authentication failed. The 'Authorization' header is missing or not a bearer token.",
                       kind="authentication_error", code="AuthenticationFailed")
    return caller(request)


def not_found(name: str) -> ApiError:
    return ApiError(404, f"The API deployment {name} does not exist here: deploy it first (PUT …/deployments/{name}), "
                    "or check its name.", kind="not_found_error", code="DeploymentNotFound")


@router.put(ACCOUNT + "/{name}", dependencies=[Depends(api_version)])
def deploy(subscription: str, group: str, account: str, name: str, body: DeploymentRequest, response: Response,
           owner: str = Depends(manager), svc: Service = Depends(service)) -> dict[str, Any]:
    model = body.model_name()
    if not model:
        raise ApiError(400, "properties.model.name is required: the model to deploy", param="properties.model.name",
                       code="InvalidResourceProperties")
    try:
        adapter_for(svc, model, owner)
    except ApiError:
        raise ApiError(400, f"The model '{model}' cannot be deployed here: it is neither a base model nor a fine-tuned "
                       "model of yours (GET /openai/models lists them).", param="properties.model.name",
                       code="DeploymentModelNotSupported") from None
    existed = svc.store.deployment(name, owner) is not None
    created = (svc.store.deployment(name, owner) or {}).get("systemData", {}).get("createdAt") or _now()
    resource = {"id": ACCOUNT.format(subscription=subscription, group=group, account=account) + f"/{name}",
                "type": "Microsoft.CognitiveServices/accounts/deployments", "name": name,
                "sku": body.sku or {"name": "standard", "capacity": 1},
                "properties": {"model": {"format": "OpenAI", "version": "1", **body.properties.model.model_dump(exclude_none=True)},
                               "provisioningState": "Succeeded"},
                "systemData": {"createdAt": created, "lastModifiedAt": _now()}}
    response.status_code = 200 if existed else 201
    return svc.store.put_deployment(name, resource, owner)


@router.get(ACCOUNT + "/{name}", dependencies=[Depends(api_version)])
def get_deployment(subscription: str, group: str, account: str, name: str, owner: str = Depends(manager),
                   svc: Service = Depends(service)) -> dict[str, Any]:
    found = svc.store.deployment(name, owner)
    if found is None:
        raise not_found(name)
    return found


@router.get(ACCOUNT, dependencies=[Depends(api_version)])
def list_deployments(subscription: str, group: str, account: str, owner: str = Depends(manager),
                     svc: Service = Depends(service)) -> dict[str, Any]:
    return {"value": svc.store.deployments(owner)}


@router.delete(ACCOUNT + "/{name}", dependencies=[Depends(api_version)], status_code=204)
def undeploy(subscription: str, group: str, account: str, name: str, owner: str = Depends(manager),
             svc: Service = Depends(service)) -> Response:
    if not svc.store.delete_deployment(name, owner):
        return Response(status_code=204)  # as Resource Manager: deleting what is not there succeeds
    return Response(status_code=200)


@router.post("/openai/deployments/{name}/chat/completions", response_model=None, dependencies=[Depends(api_version)])
def chat(name: str, body: ChatRequest, owner: str = Depends(caller), svc: Service = Depends(service)) -> Any:
    found = svc.store.deployment(name, owner)
    if found is None:
        raise not_found(name)
    return complete(svc, body, found["properties"]["model"]["name"], owner)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
