"""Deployment + Service + NetworkPolicy of a Service-mode step (no `url`), owned by the Pipeline.

Name `<pipeline>-<step>--<hash>` (see names.app_service_name); the app pods mount the Pipeline's
`spec.workspace` claim read-only at its mountPath, the same path runs use, so the file paths in
MMIF documents resolve in both. Since those pods can read the namespace's volume, the
NetworkPolicy admits traffic to them only from the operator's step and analysis pods of the same
namespace (where a NetworkPolicy controller enforces it; docs/howto.md says what holds without).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core import names, security
from mmif_operator.core.model import API_VERSION
from mmif_operator.core.placement import place_pod
from mmif_operator.kinds.pipeline.app import App
from mmif_operator.kinds.pipeline.model import KIND as KIND_PIPELINE
from mmif_operator.kinds.pipeline.model import PipelineSpec, Step

APP_CONTAINER = "app"
WORKSPACE_VOLUME = "workspace"
READINESS_PERIOD_SECONDS = 5


@dataclass(frozen=True)
class PipelineContext:
    name: str
    namespace: str
    uid: str

    @classmethod
    def from_pipeline(cls, body: Mapping[str, Any]) -> PipelineContext:
        meta = body.get("metadata") or {}
        return cls(name=meta["name"], namespace=meta.get("namespace") or "default", uid=meta.get("uid") or "")

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND_PIPELINE,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def _metadata(ctx: PipelineContext, step: Step) -> dict[str, Any]:
    name = names.app_service_name(ctx.name, step.name)
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": L.app_service_labels(ctx.name, step.name, instance=name),
        "ownerReferences": [ctx.owner_reference()],
    }


def app_env(step: App) -> list[dict[str, str]]:
    """The app container's environment: the step's `env`, and one gunicorn worker unless the
    step says otherwise (one request at a time reaches an app pod: one copy of the model)."""
    env = [{"name": e.name, "value": e.value} for e in step.env]
    if not any(e["name"] == "CLAMS_GUNICORN_WORKERS" for e in env):
        env.append({"name": "CLAMS_GUNICORN_WORKERS", "value": "1"})
    return env


def app_resources(step: App, container: dict[str, Any]) -> None:
    """The step's `resources` on the app container, as the user wrote them."""
    resources = step.resources.to_dict() if step.resources is not None else {}
    if resources:
        container["resources"] = resources


def app_deployment(ctx: PipelineContext, pipeline_spec: PipelineSpec, step: Step) -> dict[str, Any]:
    workspace = pipeline_spec.workspace
    if workspace is None:  # (the model's rule already refuses it)
        raise ValueError("a Service-mode step needs the Pipeline's spec.workspace")
    return deployment_of(
        _metadata(ctx, step),
        L.app_service_selector(ctx.name, step.name),
        step,
        claim_name=workspace.claim_name,
        mount_path=workspace.mount_path,
        replicas=step.replicas,
    )


def deployment_of(
    meta: dict[str, Any],
    selector: dict[str, str],
    step: App,
    *,
    claim_name: str,
    mount_path: str,
    replicas: int,
) -> dict[str, Any]:
    """A Deployment of `replicas` pods of the app, mounting `claim_name` read-only at
    `mount_path`, ready when its port takes connections: a Pipeline's Service-mode app, or a
    run's pool of a warm Job-mode step (kinds/pipelinerun/pools.py)."""
    port = step.port
    container: dict[str, Any] = {
        "name": APP_CONTAINER,
        "image": step.image,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": READINESS_PERIOD_SECONDS},
        "env": app_env(step),
        "securityContext": security.app_security_context(step.run_as_user, step.run_as_non_root),
        "volumeMounts": [{"name": WORKSPACE_VOLUME, "mountPath": mount_path, "readOnly": True}],
    }
    app_resources(step, container)
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {
                "name": WORKSPACE_VOLUME,
                "persistentVolumeClaim": {"claimName": claim_name, "readOnly": True},
            }
        ],
    }
    place_pod(pod_spec, step)
    security.secure_pod_spec(pod_spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": dict(meta["labels"])}, "spec": pod_spec},
        },
    }


def app_service(ctx: PipelineContext, step: Step) -> dict[str, Any]:
    return service_of(_metadata(ctx, step), L.app_service_selector(ctx.name, step.name), step.port)


def service_of(meta: dict[str, Any], selector: dict[str, str], port: int) -> dict[str, Any]:
    """A ClusterIP Service in front of the pods `selector` picks, on the app's `port`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def network_policy_of(
    meta: dict[str, Any], selector: dict[str, str], clients: dict[str, Any], port: int
) -> dict[str, Any]:
    """Ingress to the pods `selector` picks only from the pods `clients` selects, on `port`. A
    `from` entry without a namespaceSelector selects pods of the policy's own namespace: no
    other namespace reaches the app, whatever it labels its pods."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": clients}], "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


# The pods that may call a Service-mode app: the operator's step pods (runs) and analysis pods
# (an analysis may call a Pipeline's app through its `url`) of the app's own namespace.
CLIENT_COMPONENTS = (L.COMPONENT_STEP, L.COMPONENT_ANALYZE)


def app_clients_selector() -> dict[str, Any]:
    """The podSelector of the pods allowed to reach an app (same namespace only)."""
    return {
        "matchLabels": {L.MANAGED_BY: L.MANAGER},
        "matchExpressions": [{"key": L.COMPONENT, "operator": "In", "values": list(CLIENT_COMPONENTS)}],
    }


def app_network_policy(ctx: PipelineContext, step: Step) -> dict[str, Any]:
    """Ingress to the step's app pods only from the namespace's step and analysis pods, on the
    app port (`network_policy_of`)."""
    return network_policy_of(
        _metadata(ctx, step), L.app_service_selector(ctx.name, step.name), app_clients_selector(), step.port
    )
