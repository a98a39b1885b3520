"""Small async helpers over kubernetes_asyncio, on plain dicts.

Every call asks for the raw JSON (`_preload_content=False`) and returns dicts as the API server
sent them (camelCase), so the pure planners get what they expect and nothing is converted to the
library's model classes (slow for big lists). HTTP errors raise `KubeError` with the status code.

Conventions the reconcilers rely on:
* `create` treats 409 AlreadyExists as success (names are deterministic) and says which;
* `delete` treats 404 as success and uses propagationPolicy Background;
* `patch_status` is a JSON merge patch of a custom object's `status` subresource, optionally
  conditional on a resourceVersion (409 Conflict when the object changed meanwhile).
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from ..builders import labels as L
from ..builders.specs import API_GROUP

RUNNER_CONTAINER = "runner"
REQUEST_TIMEOUT = 30.0
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "mmif-operator"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


class KubeError(Exception):
    """An HTTP error from the API server."""

    def __init__(self, status: int, reason: str = "", message: str = "", body: Any = None):
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body
        super().__init__(f"{status} {reason}: {message}".strip())

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


async def _call(request: Awaitable[Any]) -> dict[str, Any]:
    """Await a `_preload_content=False` request; the JSON body, or KubeError."""
    response = await request
    try:
        raw = await response.read()
        status = response.status
        reason = response.reason or ""
    finally:
        response.release()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {"message": raw[:500].decode("utf-8", "replace")}
    if status >= 400:
        message = data.get("message", "") if isinstance(data, dict) else ""
        raise KubeError(status, (data.get("reason") if isinstance(data, dict) else None) or reason,
                        message, data)
    return data if isinstance(data, dict) else {}


def selector(labels: Mapping[str, str]) -> str:
    """`{a: 1, b: 2}` -> `a=1,b=2`."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid")
    return None


@dataclass(frozen=True)
class Kind:
    """How to reach one namespaced built-in resource."""

    api: str            # "batch", "apps", "core"
    plural: str


KINDS: dict[str, Kind] = {
    "Job": Kind("batch", "job"),
    "Deployment": Kind("apps", "deployment"),
    "Service": Kind("core", "service"),
    "Pod": Kind("core", "pod"),
    "PersistentVolumeClaim": Kind("core", "persistent_volume_claim"),
    "Secret": Kind("core", "secret"),
    "ConfigMap": Kind("core", "config_map"),
}


class Kube:
    """The handlers' view of the cluster, over one kubernetes_asyncio ApiClient."""

    def __init__(self, api_client: client.ApiClient, *, timeout: float = REQUEST_TIMEOUT):
        self.api_client = api_client
        self.timeout = timeout
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.authz = client.AuthorizationV1Api(api_client)
        self.authn = client.AuthenticationV1Api(api_client)
        self.admission = client.AdmissionregistrationV1Api(api_client)

    async def close(self) -> None:
        await self.api_client.close()

    def _api(self, kind: str) -> tuple[Any, str]:
        try:
            k = KINDS[kind]
        except KeyError:
            raise ValueError(f"unsupported kind {kind!r}") from None
        return {"batch": self.batch, "apps": self.apps, "core": self.core}[k.api], k.plural

    def _kw(self, **extra: Any) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.timeout, **extra}

    # -- built-in objects ----------------------------------------------------------------------
    async def create(self, body: Mapping[str, Any]) -> bool:
        """Create `body` (a Job, Deployment or Service dict). True when created, False when it
        already existed (409: success, the name is deterministic)."""
        api, plural = self._api(body["kind"])
        ns = body["metadata"]["namespace"]
        try:
            await _call(getattr(api, f"create_namespaced_{plural}")(
                ns, dict(body), **self._kw(field_manager=FIELD_MANAGER)))
            return True
        except KubeError as e:
            if e.conflict:
                return False
            raise

    async def delete(self, kind: str, namespace: str, name: str, *,
                     propagation: str = "Background") -> bool:
        """Delete; True when deleted now, False when it was already gone (404: success)."""
        api, plural = self._api(kind)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await _call(getattr(api, f"delete_namespaced_{plural}")(name, namespace, body=body,
                                                                    **self._kw()))
            return True
        except KubeError as e:
            if e.not_found:
                return False
            raise

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT `body` (with its metadata.resourceVersion: 409 when it changed meanwhile)."""
        api, plural = self._api(body["kind"])
        meta = body["metadata"]
        return await _call(getattr(api, f"replace_namespaced_{plural}")(
            meta["name"], meta["namespace"], dict(body), **self._kw(field_manager=FIELD_MANAGER)))

    async def delete_job(self, namespace: str, name: str) -> bool:
        return await self.delete("Job", namespace, name)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        api, plural = self._api(kind)
        try:
            return await _call(getattr(api, f"read_namespaced_{plural}")(name, namespace, **self._kw()))
        except KubeError as e:
            if e.not_found:
                return None
            raise

    async def list(self, kind: str, namespace: str, labels: Mapping[str, str] | str | None = None,
                   *, fields: str | None = None) -> list[dict[str, Any]]:
        api, plural = self._api(kind)
        sel = labels if isinstance(labels, str) or labels is None else selector(labels)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kw = self._kw(limit=500)
            if sel:
                kw["label_selector"] = sel
            if fields:
                kw["field_selector"] = fields
            if token:
                kw["_continue"] = token
            data = await _call(getattr(api, f"list_namespaced_{plural}")(namespace, **kw))
            items.extend(data.get("items") or [])
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply (field manager `mmif-operator`, forced): the object becomes exactly
        what `body` says for the fields we own, whether it existed or not."""
        api, plural = self._api(body["kind"])
        meta = body["metadata"]
        return await _call(getattr(api, f"patch_namespaced_{plural}")(
            meta["name"], meta["namespace"], dict(body),
            **self._kw(field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH)))

    async def list_jobs(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return await self.list("Job", namespace, labels)

    async def read_pvc(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.get("PersistentVolumeClaim", namespace, name)

    async def job_termination_message(self, namespace: str, job_name: str,
                                      container: str = RUNNER_CONTAINER) -> str | None:
        """The `state.terminated.message` of the Job's `container` in its most recently finished
        pod (None when no pod has one: pods gone, or the container never ran)."""
        pods: list[dict[str, Any]] = []
        for label in JOB_NAME_LABELS:
            pods = await self.list("Pod", namespace, {label: job_name})
            if pods:
                break
        return termination_message_of(pods, container)

    # -- custom objects -------------------------------------------------------------------------
    async def get_custom(self, plural: str, namespace: str, name: str, *,
                         group: str = API_GROUP, version: str = "v1alpha1") -> dict[str, Any] | None:
        try:
            return await _call(self.custom.get_namespaced_custom_object(
                group, version, namespace, plural, name, **self._kw()))
        except KubeError as e:
            if e.not_found:
                return None
            raise

    async def patch_status(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any], *,
                           resource_version: str | None = None, group: str = API_GROUP,
                           version: str = "v1alpha1") -> dict[str, Any]:
        """Merge-patch `.status` (the status subresource). With `resource_version`, the patch
        applies only to that version of the object (else KubeError 409)."""
        body: dict[str, Any] = {"status": dict(patch)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return await _call(self.custom.patch_namespaced_custom_object_status(
            group, version, namespace, plural, name, body, **self._kw(_content_type=MERGE_PATCH)))

    async def create_custom(self, plural: str, body: Mapping[str, Any], *, group: str = API_GROUP,
                            version: str = "v1alpha1") -> bool:
        """Create a custom object; True when created, False when it existed (409: success)."""
        meta = body["metadata"]
        try:
            await _call(self.custom.create_namespaced_custom_object(
                group, version, meta["namespace"], plural, dict(body),
                **self._kw(field_manager=FIELD_MANAGER)))
            return True
        except KubeError as e:
            if e.conflict:
                return False
            raise

    async def delete_custom(self, plural: str, namespace: str, name: str, *, uid: str | None = None,
                            group: str = API_GROUP, version: str = "v1alpha1") -> bool:
        """Delete a custom object (Background); with `uid`, only that incarnation of the name."""
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions",
                                "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await _call(self.custom.delete_namespaced_custom_object(
                group, version, namespace, plural, name, body=body, **self._kw()))
            return True
        except KubeError as e:
            if e.not_found or e.conflict:
                return False
            raise


    # -- authorization and admission -------------------------------------------------------------
    async def subject_access_review(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a SubjectAccessReview; the answered object (`status.allowed`, `status.reason`)."""
        return await _call(self.authz.create_subject_access_review(dict(body), **self._kw()))

    async def whoami(self) -> dict[str, Any]:
        """The operator's own user info (a SelfSubjectReview's `status.userInfo`)."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        data = await _call(self.authn.create_self_subject_review(body, **self._kw()))
        return (data.get("status") or {}).get("userInfo") or {}

    async def patch_webhook_ca_bundle(self, name: str, ca_bundle: str) -> int:
        """Set `caBundle` on every webhook of the MutatingWebhookConfiguration `name` (a JSON
        patch per webhook); how many webhooks it has (0: the configuration is missing)."""
        try:
            config = await _call(self.admission.read_mutating_webhook_configuration(name, **self._kw()))
        except KubeError as e:
            if e.not_found:
                return 0
            raise
        hooks = config.get("webhooks") or []
        ops = [{"op": "replace" if "caBundle" in (h.get("clientConfig") or {}) else "add",
                "path": f"/webhooks/{i}/clientConfig/caBundle", "value": ca_bundle}
               for i, h in enumerate(hooks) if (h.get("clientConfig") or {}).get("caBundle") != ca_bundle]
        if ops:
            ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion",
                           "value": config["metadata"]["resourceVersion"]})
            await _call(self.admission.patch_mutating_webhook_configuration(
                name, ops, **self._kw(_content_type="application/json-patch+json")))
        return len(hooks)


def _finished_at(status: Mapping[str, Any]) -> str:
    return ((status.get("state") or {}).get("terminated") or {}).get("finishedAt") or ""


def termination_message_of(pods: Iterable[Mapping[str, Any]], container: str = RUNNER_CONTAINER,
                           ) -> str | None:
    """The termination message of `container` in the pod where it finished last."""
    best: tuple[str, str] | None = None
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") != container:
                continue
            for state in (cs.get("state") or {}, cs.get("lastState") or {}):
                terminated = state.get("terminated")
                if terminated and terminated.get("message"):
                    key = terminated.get("finishedAt") or ""
                    if best is None or key >= best[0]:
                        best = (key, terminated["message"])
    return best[1] if best else None


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return bool(uid) and controller_uid(obj) == uid


def managed_labels(**extra: str) -> dict[str, str]:
    return {L.MANAGED_BY: L.MANAGER, **extra}
