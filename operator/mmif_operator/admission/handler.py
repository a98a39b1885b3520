"""The admission webhook: `spec.requester` of PipelineRuns and AnalysisJobs (admission/requester.py)
and a PipelineRun's review decision, `spec.review` (admission/review.py).

Served by kopf's webhook server inside the operator, behind the Service `mmif-operator-webhook`
(manifests/webhook.yaml). The MutatingWebhookConfiguration `mmif-operator` is installed with the
manifests (failurePolicy Fail); at start the operator loads or creates its serving certificate
(Secret `mmif-operator-webhook-tls`) and sets the configuration's caBundle to that CA.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from mmif_operator.admission import certs, requester, review
from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.specs import API_GROUP
from mmif_operator.kinds.analysisjob.model import PLURAL as ANALYSIS_PLURAL
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.kinds.project.planning import PROJECTS_INDEX
from mmif_operator.settings import Config

log = logging.getLogger(__name__)
VERSION = "v1alpha1"
_operator_username: str | None = None

#: The largest admission review the webhook reads. aiohttp's default, 1 MiB, refused reviews of
#: large runs (1,000 inline items with long locations are about 700 KB, and an UPDATE review
#: holds the object twice). The API server takes requests of up to 3 MiB; a review holds at most
#: two such objects and its envelope, so 8 MiB takes the largest the API allows.
MAX_REVIEW_BYTES = 8 * 1024 * 1024


class WebhookServer(kopf.WebhookServer):
    """kopf's webhook server, reading admission reviews of up to `MAX_REVIEW_BYTES` (kopf does not
    expose aiohttp's `client_max_size`; each request is read through a clone carrying it)."""

    @staticmethod
    async def _serve(fn: Any, request: Any) -> Any:
        return await kopf.WebhookServer._serve(fn, request.clone(client_max_size=MAX_REVIEW_BYTES))


async def load_or_create_cert(kube: Kube, cfg: Config) -> certs.ServingCert:
    """The serving certificate from the Secret; a new one (stored) when missing or expiring."""
    names = certs.service_names(cfg.webhook_service, cfg.namespace)
    secret = await kube.get("Secret", cfg.namespace, cfg.webhook_secret)
    current = certs.ServingCert.from_secret_data((secret or {}).get("data"))
    if current is not None and certs.usable(current, names):
        return current
    fresh = certs.generate(names)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": cfg.webhook_secret,
            "namespace": cfg.namespace,
            "labels": {"app.kubernetes.io/name": "mmif-operator", "app.kubernetes.io/component": "webhook"},
        },
        "data": fresh.to_secret_data(),
    }
    if secret is None:
        if not await kube.create(body):  # created meanwhile (another start): use that one
            return await load_or_create_cert(kube, cfg)
    else:
        body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
        await kube.replace(body)
    log.info(
        "webhook: new serving certificate for %s stored in Secret %s/%s",
        names[2],
        cfg.namespace,
        cfg.webhook_secret,
    )
    return fresh


async def start_webhook(settings: kopf.OperatorSettings, kube: Kube, cfg: Config) -> None:
    """Certificate, caBundle, our own identity, and kopf's webhook server on `cfg.webhook_port`."""
    global _operator_username
    if cfg.webhook_port <= 0:
        log.warning("webhook: disabled (MMIF_WEBHOOK_PORT=0): requesters are not recorded")
        return
    cert = await load_or_create_cert(kube, cfg)
    folder = tempfile.mkdtemp(prefix="webhook-")
    paths = {}
    for name, data in (("tls.crt", cert.cert_pem), ("tls.key", cert.key_pem)):
        paths[name] = os.path.join(folder, name)
        fd = os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    ca_bundle = base64.b64encode(cert.ca_pem).decode("ascii")
    hooks = await kube.patch_webhook_ca_bundle(cfg.webhook_configuration, ca_bundle)
    if not hooks:
        log.warning(
            "webhook: MutatingWebhookConfiguration %s not found: install manifests/ "
            "(requesters are recorded only through it)",
            cfg.webhook_configuration,
        )
    # The validating webhook (admission/validation.py) shares the server, so the CA, and the name.
    if not await kube.patch_webhook_ca_bundle(cfg.webhook_configuration, ca_bundle, kind="validating"):
        log.warning(
            "webhook: ValidatingWebhookConfiguration %s not found: install manifests/ "
            "(app urls are checked only through it)",
            cfg.webhook_configuration,
        )
    try:
        _operator_username = (await kube.whoami()).get("username")
    except KubeError as e:
        log.warning(
            "webhook: cannot learn the operator's own user name (%s); triggered analyses will be rejected", e
        )
    settings.admission.server = WebhookServer(
        addr="0.0.0.0",
        port=cfg.webhook_port,
        certfile=paths["tls.crt"],
        pkeyfile=paths["tls.key"],
        cadata=cert.ca_pem,
    )
    settings.admission.managed = None
    log.info(
        "webhook: serving on :%d as %s (operator user %s)",
        cfg.webhook_port,
        cfg.webhook_service,
        _operator_username,
    )


def _review(kind: str, operation: str | None, userinfo: Any, spec: Any, old: Any, patch: Any) -> None:
    old_spec = (old or {}).get("spec") if old else None
    try:
        record = requester.decide(operation or "", kind, userinfo, spec, old_spec, _operator_username)
    except requester.Denied as e:
        raise kopf.AdmissionError(str(e), code=403) from e
    if record is not None:
        patch.spec["requester"] = record


@kopf.on.mutate(API_GROUP, VERSION, RUN_PLURAL, id="requester-pipelineruns", operations=["CREATE", "UPDATE"])
def requester_pipelineruns(
    *, operation: str | None = None, userinfo: Any, spec: Any, old: Any = None, patch: Any, **_: Any
) -> None:
    """Record who creates a PipelineRun; reject a forged or changed `spec.requester`."""
    _review("PipelineRun", operation, userinfo, spec, old, patch)


@kopf.on.mutate(
    API_GROUP, VERSION, ANALYSIS_PLURAL, id="requester-analysisjobs", operations=["CREATE", "UPDATE"]
)
def requester_analysisjobs(
    *, operation: str | None = None, userinfo: Any, spec: Any, old: Any = None, patch: Any, **_: Any
) -> None:
    """Record who creates an AnalysisJob; reject a forged or changed `spec.requester`."""
    _review("AnalysisJob", operation, userinfo, spec, old, patch)


def _allows_ignore(project: Mapping[str, Any] | None) -> bool:
    """The project's `spec.conflicts.allowIgnore` (an entry of the projects index)."""
    if project is None:
        return False
    conflicts = (project.get("spec") or {}).get("conflicts") or {}
    return conflicts.get("allowIgnore") is True


@kopf.on.mutate(API_GROUP, VERSION, RUN_PLURAL, id="review-pipelineruns", operations=["CREATE", "UPDATE"])
async def review_pipelineruns(
    *,
    operation: str | None = None,
    userinfo: Any,
    spec: Any,
    old: Any = None,
    namespace: str | None = None,
    patch: Any,
    **kwargs: Any,
) -> None:
    """A review decision: only by a user who may `review` pipelineruns, only on a run awaiting
    review; record who decided and when; reject a forged or changed reviewer or time, and an
    `onConflict: Ignore` the run's project does not allow."""
    op = operation or ""
    old_spec = (old or {}).get("spec") if old else None
    if not review.touches_review(op, spec, old_spec):
        return
    ns = namespace or ""
    try:
        answer = await runtime.kube().subject_access_review(review.access_review(userinfo, ns))
    except KubeError as e:
        user = (userinfo or {}).get("username")
        log.warning("webhook: cannot check whether %s may review pipelineruns in %s: %s", user, ns, e)
        raise kopf.AdmissionError(
            f"cannot check whether the user may review pipelineruns in namespace {ns}: {e}", code=503
        ) from e
    try:
        projects = kwargs.get(PROJECTS_INDEX) or {}  # kopf passes every index (tests may not)
        project = next(iter(projects.get(ns, ())), None)  # the run's project, if any
        record = review.decide(
            op,
            userinfo,
            ns,
            spec,
            old,
            answer,
            datetime.now(UTC),
            project=project["name"] if project else None,
            allow_ignore=_allows_ignore(project),
        )
    except requester.Denied as e:
        raise kopf.AdmissionError(str(e), code=403) from e
    if record is not None:
        patch.spec["review"] = record
