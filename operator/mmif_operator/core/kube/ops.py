"""Small async helpers over kubernetes_asyncio, on plain dicts.

Every call asks for the raw JSON (`_preload_content=False`) and returns dicts as the API server
sent them (camelCase), so the pure planners get what they expect and nothing is converted to the
library's model classes (slow for big lists). HTTP errors raise `KubeError` with the status code.

Conventions the reconcilers rely on:
* `create` treats 409 AlreadyExists as success (names are deterministic) only when the object of
  that name is ours: controlled by the owner uid the body's controller ownerReference names
  (core/ownership.py). Another owner's object raises `NameConflict`; one of an earlier
  incarnation of the owner, still being collected, raises a plain (retriable) 409;
* `delete` treats 404 as success and uses propagationPolicy Background; with `uid`, it deletes
  only that object (a precondition), and a name now held by another object counts as gone;
* `patch_status` is a JSON merge patch of a custom object's `status` subresource, optionally
  conditional on a resourceVersion (409 Conflict when the object changed meanwhile).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from mmif_operator.core import labels as L
from mmif_operator.core import ownership
from mmif_operator.core.specs import API_GROUP

RUNNER_CONTAINER = "runner"
REQUEST_TIMEOUT = 30.0
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "mmif-operator"


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

    @property
    def invalid(self) -> bool:
        """The API server refused the object itself (422 Invalid): sending it again cannot help."""
        return self.status == 422


class NameConflict(KubeError):
    """A create found an object of that name that is not ours (`ownership.Ownership.FOREIGN`)."""

    def __init__(self, kind: str, name: str, existing: Mapping[str, Any]):
        super().__init__(409, ownership.R_NAME_CONFLICT, ownership.conflict_message(kind, name, existing))
        self.existing = existing


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
        raise KubeError(
            status, (data.get("reason") if isinstance(data, dict) else None) or reason, message, data
        )
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

    api: str  # "batch", "apps", "core"
    plural: str


KINDS: dict[str, Kind] = {
    "Job": Kind("batch", "job"),
    "Deployment": Kind("apps", "deployment"),
    "Service": Kind("core", "service"),
    "NetworkPolicy": Kind("networking", "network_policy"),
    "Pod": Kind("core", "pod"),
    "PersistentVolumeClaim": Kind("core", "persistent_volume_claim"),
    "Secret": Kind("core", "secret"),
    "Event": Kind("core", "event"),
    "ConfigMap": Kind("core", "config_map"),
    "RoleBinding": Kind("rbac", "role_binding"),
}


class Kube:
    """The handlers' view of the cluster, over one kubernetes_asyncio ApiClient."""

    def __init__(self, api_client: client.ApiClient, *, timeout: float = REQUEST_TIMEOUT):
        self.api_client = api_client
        self.timeout = timeout
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.authz = client.AuthorizationV1Api(api_client)
        self.authn = client.AuthenticationV1Api(api_client)
        self.admission = client.AdmissionregistrationV1Api(api_client)
        self.rbac = client.RbacAuthorizationV1Api(api_client)

    async def close(self) -> None:
        await self.api_client.close()

    def _api(self, kind: str) -> tuple[Any, str]:
        try:
            k = KINDS[kind]
        except KeyError:
            raise ValueError(f"unsupported kind {kind!r}") from None
        return getattr(self, k.api), k.plural  # each API group's client is the attribute `Kind.api`

    def _kw(self, **extra: Any) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.timeout, **extra}

    # -- built-in objects ----------------------------------------------------------------------
    async def create(self, body: Mapping[str, Any]) -> bool:
        """Create `body` (a Job, Deployment, Service, NetworkPolicy, Secret dict). True when
        created, False when our object of that name already existed (409 and, for a body with a
        controller ownerReference, the existing object has that owner uid). Raises `NameConflict`
        when the existing object is someone else's, a retriable KubeError(409) while an earlier
        incarnation's object is being collected."""
        api, plural = self._api(body["kind"])
        meta = body["metadata"]
        try:
            await _call(
                getattr(api, f"create_namespaced_{plural}")(
                    meta["namespace"], dict(body), **self._kw(field_manager=FIELD_MANAGER)
                )
            )
            return True
        except KubeError as e:
            if not e.conflict:
                raise
        if ownership.controller_ref(body) is None:
            return False  # not a child (e.g. the webhook's Secret): the name is enough
        existing = await self.get(body["kind"], meta["namespace"], meta["name"])
        return _ours_or_raise(body["kind"], body, existing)

    async def delete(
        self, kind: str, namespace: str, name: str, *, propagation: str = "Background", uid: str | None = None
    ) -> bool:
        """Delete; True when deleted now, False when it was already gone (404: success). With
        `uid`, only the object of that uid: a name now held by another object (409, the
        precondition failed) counts as gone too."""
        api, plural = self._api(kind)
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await _call(getattr(api, f"delete_namespaced_{plural}")(name, namespace, body=body, **self._kw()))
            return True
        except KubeError as e:
            if e.not_found or (uid and e.conflict):
                return False
            raise

    async def replace(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT `body` (with its metadata.resourceVersion: 409 when it changed meanwhile)."""
        api, plural = self._api(body["kind"])
        meta = body["metadata"]
        return await _call(
            getattr(api, f"replace_namespaced_{plural}")(
                meta["name"], meta["namespace"], dict(body), **self._kw(field_manager=FIELD_MANAGER)
            )
        )

    async def delete_job(self, namespace: str, name: str, uid: str | None = None) -> bool:
        return await self.delete("Job", namespace, name, uid=uid)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        api, plural = self._api(kind)
        try:
            return await _call(getattr(api, f"read_namespaced_{plural}")(name, namespace, **self._kw()))
        except KubeError as e:
            if e.not_found:
                return None
            raise

    async def list(
        self,
        kind: str,
        namespace: str,
        labels: Mapping[str, str] | str | None = None,
        *,
        fields: str | None = None,
    ) -> list[dict[str, Any]]:
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
            if namespace:
                data = await _call(getattr(api, f"list_namespaced_{plural}")(namespace, **kw))
            else:  # every namespace (the ClusterRole must allow it)
                data = await _call(getattr(api, f"list_{plural}_for_all_namespaces")(**kw))
            items.extend(data.get("items") or [])
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply (field manager `mmif-operator`, forced): the object becomes exactly
        what `body` says for the fields we own, whether it existed or not."""
        api, plural = self._api(body["kind"])
        meta = body["metadata"]
        return await _call(
            getattr(api, f"patch_namespaced_{plural}")(
                meta["name"],
                meta["namespace"],
                dict(body),
                **self._kw(field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH),
            )
        )

    async def list_jobs(self, namespace: str, labels: Mapping[str, str]) -> builtins.list[dict[str, Any]]:
        return await self.list("Job", namespace, labels)

    async def read_pvc(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.get("PersistentVolumeClaim", namespace, name)

    async def job_termination_message(
        self, namespace: str, job_name: str, container: str = RUNNER_CONTAINER, *, uid: str | None = None
    ) -> str | None:
        """The `state.terminated.message` of the Job's `container` in its most recently finished
        pod (None when no pod has one: pods gone, or the container never ran). With `uid` (the
        Job's), only pods that Job controls count: a pod someone labelled with the Job's name
        is not its pod."""
        return termination_message_of(await self.job_pods(namespace, job_name, uid=uid), container)

    async def job_pods(
        self, namespace: str, job_name: str, *, uid: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The pods of Job `job_name` (by its job-name label, new or old); with `uid` (the Job's),
        only the pods that Job controls."""
        pods: builtins.list[dict[str, Any]] = []
        for label in L.JOB_NAME_LABELS:
            pods = await self.list("Pod", namespace, {label: job_name})
            if uid:
                pods = [p for p in pods if controller_uid(p) == uid]
            if pods:
                break
        return pods

    async def pod_log(
        self, namespace: str, name: str, container: str, *, tail_lines: int | None = None
    ) -> str:
        """The log of `container` in pod `name` (its last `tail_lines` lines when given)."""
        kw = self._kw(container=container)
        if tail_lines is not None:
            kw["tail_lines"] = tail_lines
        resp: Any = await self.core.read_namespaced_pod_log(name, namespace, **kw)  # not JSON: as it is
        try:
            text = (await resp.read()).decode("utf-8", "replace")
            status, reason = resp.status, resp.reason or ""
        finally:
            resp.release()
        if status >= 400:
            try:
                message = str(json.loads(text).get("message") or text[:500])
            except (ValueError, AttributeError):
                message = text[:500]
            raise KubeError(status, reason, message)
        return text

    async def patch(self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the object (a ConfigMap's `data`: only the keys named change)."""
        api, plural = self._api(kind)
        return await _call(
            getattr(api, f"patch_namespaced_{plural}")(
                name,
                namespace,
                dict(patch),
                **self._kw(field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH),
            )
        )

    # -- custom objects -------------------------------------------------------------------------
    async def list_custom(
        self,
        plural: str,
        namespace: str,
        labels: Mapping[str, str],
        *,
        group: str = API_GROUP,
        version: str = "v1alpha1",
    ) -> builtins.list[dict[str, Any]]:
        """The custom objects of `plural` in `namespace` with `labels` (a consistent read)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kw = self._kw(limit=500, label_selector=selector(labels))
            if token:
                kw["_continue"] = token
            data = await _call(
                self.custom.list_namespaced_custom_object(group, version, namespace, plural, **kw)
            )
            items.extend(data.get("items") or [])
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def list_custom_all(
        self, plural: str, *, group: str = API_GROUP, version: str = "v1alpha1"
    ) -> builtins.list[dict[str, Any]]:
        """The custom objects of `plural` in every namespace."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kw = self._kw(limit=500)
            if token:
                kw["_continue"] = token
            data = await _call(self.custom.list_cluster_custom_object(group, version, plural, **kw))
            items.extend(data.get("items") or [])
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def get_custom(
        self, plural: str, namespace: str, name: str, *, group: str = API_GROUP, version: str = "v1alpha1"
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist; namespace "": a cluster-scoped one."""
        try:
            if not namespace:
                return await _call(
                    self.custom.get_cluster_custom_object(group, version, plural, name, **self._kw())
                )
            return await _call(
                self.custom.get_namespaced_custom_object(
                    group, version, namespace, plural, name, **self._kw()
                )
            )
        except KubeError as e:
            if e.not_found:
                return None
            raise

    async def patch_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        resource_version: str | None = None,
        group: str = API_GROUP,
        version: str = "v1alpha1",
    ) -> dict[str, Any]:
        """Merge-patch `.status` (the status subresource). With `resource_version`, the patch
        applies only to that version of the object (else KubeError 409). Namespace "": a
        cluster-scoped object (a Project)."""
        body: dict[str, Any] = {"status": dict(patch)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        if not namespace:
            return await _call(
                self.custom.patch_cluster_custom_object_status(
                    group, version, plural, name, body, **self._kw(_content_type=MERGE_PATCH)
                )
            )
        return await _call(
            self.custom.patch_namespaced_custom_object_status(
                group, version, namespace, plural, name, body, **self._kw(_content_type=MERGE_PATCH)
            )
        )

    async def patch_custom(
        self,
        plural: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        group: str = API_GROUP,
        version: str = "v1alpha1",
    ) -> dict[str, Any]:
        """JSON merge patch of a custom object (not its status)."""
        return await _call(
            self.custom.patch_namespaced_custom_object(
                group, version, namespace, plural, name, dict(patch), **self._kw(_content_type=MERGE_PATCH)
            )
        )

    async def create_custom(
        self, plural: str, body: Mapping[str, Any], *, group: str = API_GROUP, version: str = "v1alpha1"
    ) -> bool:
        """Create a custom object; True when created, False when ours existed (as `create`:
        another owner's object raises `NameConflict`)."""
        meta = body["metadata"]
        try:
            await _call(
                self.custom.create_namespaced_custom_object(
                    group,
                    version,
                    meta["namespace"],
                    plural,
                    dict(body),
                    **self._kw(field_manager=FIELD_MANAGER),
                )
            )
            return True
        except KubeError as e:
            if not e.conflict:
                raise
        if ownership.controller_ref(body) is None:
            return False
        existing = await self.get_custom(
            plural, meta["namespace"], meta["name"], group=group, version=version
        )
        return _ours_or_raise(body.get("kind", plural), body, existing)

    async def delete_custom(
        self,
        plural: str,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        group: str = API_GROUP,
        version: str = "v1alpha1",
    ) -> bool:
        """Delete a custom object (Background); with `uid`, only that incarnation of the name."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
        }
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            delete = self.custom.delete_namespaced_custom_object
            await _call(delete(group, version, namespace, plural, name, body=body, **self._kw()))  # type: ignore[arg-type]  # the client sends a plain dict body as is; its stubs name only the model
            return True
        except KubeError as e:
            if e.not_found or e.conflict:
                return False
            raise

    # -- cluster-scoped objects (a Project, its Namespace) -----------------------------------------
    async def get_namespace(self, name: str) -> dict[str, Any] | None:
        try:
            return await _call(self.core.read_namespace(name, **self._kw()))
        except KubeError as e:
            if e.not_found:
                return None
            raise

    async def create_namespace(self, body: Mapping[str, Any]) -> bool:
        """Create a Namespace; False when one of that name already exists (whose it is, the
        caller decides from its annotations)."""
        try:
            await _call(self.core.create_namespace(dict(body), **self._kw(field_manager=FIELD_MANAGER)))  # type: ignore[arg-type]  # a plain dict body, as above
            return True
        except KubeError as e:
            if e.conflict:
                return False
            raise

    async def patch_namespace(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch a Namespace (our labels)."""
        return await _call(
            self.core.patch_namespace(
                name, dict(patch), **self._kw(field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH)
            )
        )

    # -- authorization and admission -------------------------------------------------------------
    async def subject_access_review(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a SubjectAccessReview; the answered object (`status.allowed`, `status.reason`)."""
        return await _call(self.authz.create_subject_access_review(dict(body), **self._kw()))  # type: ignore[arg-type]  # a plain dict body, as above

    async def token_review(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a TokenReview; the answered object (`status.authenticated`, `status.user`)."""
        return await _call(self.authn.create_token_review(dict(body), **self._kw()))  # type: ignore[arg-type]  # a plain dict body, as above

    async def whoami(self) -> dict[str, Any]:
        """The operator's own user info (a SelfSubjectReview's `status.userInfo`)."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        data = await _call(self.authn.create_self_subject_review(body, **self._kw()))  # type: ignore[arg-type]  # a plain dict body, as above
        return (data.get("status") or {}).get("userInfo") or {}

    async def patch_webhook_ca_bundle(self, name: str, ca_bundle: str, *, kind: str = "mutating") -> int:
        """Set `caBundle` on every webhook of the Mutating (`kind` "mutating") or Validating
        ("validating") WebhookConfiguration `name` (a JSON patch per webhook); how many webhooks
        it has (0: the configuration is missing)."""
        read = getattr(self.admission, f"read_{kind}_webhook_configuration")
        patch = getattr(self.admission, f"patch_{kind}_webhook_configuration")
        try:
            config = await _call(read(name, **self._kw()))
        except KubeError as e:
            if e.not_found:
                return 0
            raise
        hooks = config.get("webhooks") or []
        ops = [
            {
                "op": "replace" if "caBundle" in (h.get("clientConfig") or {}) else "add",
                "path": f"/webhooks/{i}/clientConfig/caBundle",
                "value": ca_bundle,
            }
            for i, h in enumerate(hooks)
            if (h.get("clientConfig") or {}).get("caBundle") != ca_bundle
        ]
        if ops:
            ops.insert(
                0,
                {
                    "op": "test",
                    "path": "/metadata/resourceVersion",
                    "value": config["metadata"]["resourceVersion"],
                },
            )
            await _call(patch(name, ops, **self._kw(_content_type="application/json-patch+json")))
        return len(hooks)


def _ours_or_raise(kind: str, body: Mapping[str, Any], existing: Mapping[str, Any] | None) -> bool:
    """After a 409: False when `existing` is ours (it exists: success); else raise."""
    name = body["metadata"]["name"]
    if existing is None:  # deleted meanwhile: try again
        raise KubeError(409, "AlreadyExists", f"{kind} {name} existed and is gone now; retrying")
    verdict = ownership.classify(existing, body)
    if verdict is ownership.Ownership.OURS:
        return False
    if verdict is ownership.Ownership.RELEASING:
        raise KubeError(
            409,
            "AlreadyExists",
            f"{kind} {name} of an earlier owner of the same name is being deleted; retrying",
        )
    raise NameConflict(kind, name, existing)


def _finished_at(status: Mapping[str, Any]) -> str:
    return ((status.get("state") or {}).get("terminated") or {}).get("finishedAt") or ""


def termination_message_of(
    pods: Iterable[Mapping[str, Any]],
    container: str = RUNNER_CONTAINER,
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
