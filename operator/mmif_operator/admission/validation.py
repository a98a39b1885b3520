"""The validating webhook: an app `url` may not name another namespace's app Service.

Served by the operator's webhook server (the same Service and certificate as the mutating one,
admission/handler.py) for the ValidatingWebhookConfiguration `mmif-operator`
(manifests/webhook.yaml), which sends only Pipelines, AnalysisJobs, Monitors and Projects that have a url. The
decision is admission/urls.py; here, only the lookups it needs: the Service a DNS url names (one
GET), and for a literal address the operator's app Services of every namespace (one labelled
list). A lookup that fails refuses the object (failurePolicy Fail holds either way).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mmif_operator.admission import urls
from mmif_operator.core import labels as L
from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.specs import API_GROUP
from mmif_operator.kinds.analysisjob.model import PLURAL as ANALYSIS_PLURAL

log = logging.getLogger(__name__)
VERSION = "v1alpha1"
PIPELINE_PLURAL = "pipelines"
# The operator's app Services: Pipelines' Service-mode apps and runs' pools (warm Job-mode steps).
APP_SERVICES = (
    f"{L.MANAGED_BY}={L.MANAGER},{L.COMPONENT} in ({L.COMPONENT_APP_SERVICE},{L.COMPONENT_APP_POOL})"
)


async def check_urls(kube: Kube, kind: str, spec: Any, namespace: str) -> str | None:
    """Why the object is refused (None: allowed). Raises KubeError when a lookup fails."""
    found = urls.targets(kind, spec, namespace)
    if not found:
        return None
    apps: list[urls.AppService] = []
    for ns, name in sorted({t.service for t in found if t.service}):
        svc = await kube.get("Service", ns, name)
        if svc is not None and urls.is_app_service(svc):
            apps.append(urls.AppService.from_service(svc))
    if any(t.ip for t in found):
        apps.extend(urls.AppService.from_service(s) for s in await kube.list("Service", "", APP_SERVICES))
    for target in found:
        why = urls.refusal(target, namespace, apps)
        if why:
            return why
    return None


async def _validate(kind: str, spec: Any, body: Any, namespace: str | None) -> None:
    ns = namespace or ((body or {}).get("metadata") or {}).get("namespace") or ""
    try:
        why = await check_urls(runtime.kube(), kind, dict(spec or {}), ns)
    except KubeError as e:
        log.warning("webhook: cannot check the urls of a %s in %s: %s", kind, ns, e)
        raise kopf.AdmissionError(
            f"cannot check the app urls against the operator's app Services: {e}", code=503
        ) from e
    if why:
        raise kopf.AdmissionError(why, code=403)


@kopf.on.validate(API_GROUP, VERSION, PIPELINE_PLURAL, id="urls-pipelines", operations=["CREATE", "UPDATE"])
async def urls_pipelines(spec: Any, body: Any, namespace: str | None, **_: Any) -> None:
    """A Pipeline's step and analysis urls may not name another namespace's app Service."""
    await _validate("Pipeline", spec, body, namespace)


@kopf.on.validate(
    API_GROUP, VERSION, ANALYSIS_PLURAL, id="urls-analysisjobs", operations=["CREATE", "UPDATE"]
)
async def urls_analysisjobs(spec: Any, body: Any, namespace: str | None, **_: Any) -> None:
    """An AnalysisJob's app url may not name another namespace's app Service."""
    await _validate("AnalysisJob", spec, body, namespace)


@kopf.on.validate(API_GROUP, VERSION, "monitors", id="urls-monitors", operations=["CREATE", "UPDATE"])
async def urls_monitors(spec: Any, body: Any, namespace: str | None, **_: Any) -> None:
    """A Monitor's app url and notification webhooks may not name another namespace's app Service."""
    await _validate("Monitor", spec, body, namespace)


@kopf.on.validate(API_GROUP, VERSION, "projects", id="urls-projects", operations=["CREATE", "UPDATE"])
async def urls_projects(spec: Any, body: Any, name: str | None = None, **_: Any) -> None:
    """A Project's notification webhooks may not name the app Service of a namespace other than
    the project's own."""
    await _validate("Project", spec, body, name or ((body or {}).get("metadata") or {}).get("name"))
