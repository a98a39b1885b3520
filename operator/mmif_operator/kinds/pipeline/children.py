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
from mmif_operator.core.placement import place_pod
from mmif_operator.core.specs import (
    API_VERSION,
    KIND_PIPELINE,
    plain,
    step_port,
    step_replicas,
    workspace_mount_path,
)

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


def _metadata(ctx: PipelineContext, step: Mapping[str, Any]) -> dict[str, Any]:
    name = names.app_service_name(ctx.name, step["name"])
    return {
        "name": name,
        "namespace": ctx.namespace,
        "labels": L.app_service_labels(ctx.name, step["name"], instance=name),
        "ownerReferences": [ctx.owner_reference()],
    }


def app_deployment(
    ctx: PipelineContext, pipeline_spec: Mapping[str, Any] | Any, step: Mapping[str, Any] | Any
) -> dict[str, Any]:
    pipeline_spec = plain(pipeline_spec)
    step = plain(step)
    workspace = pipeline_spec.get("workspace")
    if not workspace or not workspace.get("claimName"):
        raise ValueError("a Service-mode step needs the Pipeline's spec.workspace")
    mount_path = workspace_mount_path(workspace)
    port = step_port(step)
    meta = _metadata(ctx, step)
    selector = L.app_service_selector(ctx.name, step["name"])
    env = [{"name": e["name"], "value": str(e.get("value", ""))} for e in step.get("env") or []]
    if not any(e["name"] == "CLAMS_GUNICORN_WORKERS" for e in env):
        env.append({"name": "CLAMS_GUNICORN_WORKERS", "value": "1"})
    container: dict[str, Any] = {
        "name": APP_CONTAINER,
        "image": step["image"],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": READINESS_PERIOD_SECONDS},
        "env": env,
        "securityContext": security.app_security_context(step.get("runAsUser"), step.get("runAsNonRoot")),
        "volumeMounts": [{"name": WORKSPACE_VOLUME, "mountPath": mount_path, "readOnly": True}],
    }
    resources = plain(step.get("resources"))
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {
                "name": WORKSPACE_VOLUME,
                "persistentVolumeClaim": {"claimName": workspace["claimName"], "readOnly": True},
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
            "replicas": step_replicas(step),
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": dict(meta["labels"])}, "spec": pod_spec},
        },
    }


def app_service(ctx: PipelineContext, step: Mapping[str, Any] | Any) -> dict[str, Any]:
    step = plain(step)
    port = step_port(step)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(ctx, step),
        "spec": {
            "type": "ClusterIP",
            "selector": L.app_service_selector(ctx.name, step["name"]),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
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


def app_network_policy(ctx: PipelineContext, step: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Ingress to the step's app pods only from the namespace's step and analysis pods, on the
    app port. A `from` entry without a namespaceSelector selects pods of the policy's own
    namespace: no other namespace reaches the app, whatever it labels its pods."""
    step = plain(step)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(ctx, step),
        "spec": {
            "podSelector": {"matchLabels": L.app_service_selector(ctx.name, step["name"])},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": app_clients_selector()}],
                    "ports": [{"protocol": "TCP", "port": step_port(step)}],
                }
            ],
        },
    }
