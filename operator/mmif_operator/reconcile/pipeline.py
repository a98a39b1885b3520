"""The Pipeline reconciler, pure: the app Deployments/Services wanted, and the Pipeline's status
from the Deployments (and, optionally, the app pods' waiting reasons) observed."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..builders import labels as L
from ..builders import names, services
from ..builders.specs import plain, step_mode, step_needs_deployment, step_port, step_replicas
from .status import FALSE, TRUE, cut, set_condition

CONDITION_READY = "Ready"
R_READY = "Ready"
R_NO_SERVICE_STEPS = "NoServiceSteps"
R_APP_NOT_AVAILABLE = "AppNotAvailable"
R_IMAGE_PULL_FAILED = "ImagePullFailed"
R_CRASH_LOOP = "CrashLoop"

_IMAGE_PULL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
               "RegistryUnavailable"}
_CRASH = {"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


def desired_app_objects(pipeline: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Deployment and Service of every Service-mode step without `url`, in step order."""
    ctx = services.PipelineContext.from_pipeline(pipeline)
    spec = plain(pipeline.get("spec"))
    out: list[dict[str, Any]] = []
    for step in spec.get("steps") or []:
        if step_needs_deployment(step):
            out.append(services.app_deployment(ctx, spec, step))
            out.append(services.app_service(ctx, step))
    return out


def stale_app_objects(pipeline: Mapping[str, Any], existing: Iterable[str]) -> list[str]:
    """Names of app Deployments/Services (owned by this pipeline, listed by the handler with
    `app_service_selector`-style labels) that no step wants any more, e.g. after a step became
    Job mode or was renamed."""
    wanted = {o["metadata"]["name"] for o in desired_app_objects(pipeline)}
    return sorted({n for n in existing if n not in wanted})


def waiting_reasons_from_pods(pods: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Step name → the most telling `{reason, message}` of its app pods' waiting containers."""
    out: dict[str, dict[str, str]] = {}
    for pod in pods:
        step = ((pod.get("metadata") or {}).get("labels") or {}).get(L.STEP)
        if not step:
            continue
        status = pod.get("status") or {}
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason and (step not in out or _rank(reason) > _rank(out[step]["reason"])):
                out[step] = {"reason": reason, "message": cut(waiting.get("message"), 512)}
    return out


def _rank(reason: str) -> int:
    return 2 if reason in _IMAGE_PULL else 1 if reason in _CRASH else 0


def _available(deployment: Mapping[str, Any] | None) -> tuple[int, int]:
    """(readyReplicas, availableReplicas) of a Deployment (0, 0 when missing)."""
    if not deployment:
        return 0, 0
    st = deployment.get("status") or {}
    return int(st.get("readyReplicas") or 0), int(st.get("availableReplicas") or 0)


def compute_pipeline_status(pipeline: Mapping[str, Any], deployments: Iterable[Mapping[str, Any]],
                            now: datetime, pod_waiting: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Pipeline's whole new `status`.

    deployments: the app Deployments observed (any; matched to steps by name).
    pod_waiting: step name → waiting reason of its app pods, as a string ("ImagePullBackOff")
        or `{reason, message}` (see `waiting_reasons_from_pods`).
    A Service-mode step is ready when its Deployment has at least one available replica; the
    Ready condition is True when every such step is ready.
    """
    meta = pipeline.get("metadata") or {}
    spec = plain(pipeline.get("spec"))
    old = plain(pipeline.get("status"))
    ns = meta.get("namespace") or "default"
    by_name = {(d.get("metadata") or {}).get("name"): d for d in deployments}
    waiting = {k: ({"reason": v, "message": ""} if isinstance(v, str) else dict(v))
               for k, v in (pod_waiting or {}).items()}
    steps_status: list[dict[str, Any]] = []
    problems: list[tuple[int, str, str]] = []      # (rank, reason, message)
    service_steps = 0
    for step in spec.get("steps") or []:
        entry: dict[str, Any] = {"name": step["name"], "mode": step_mode(step)}
        if step.get("url"):
            entry.update(url=step["url"], ready=True)
        elif step_needs_deployment(step):
            service_steps += 1
            name = names.app_service_name(meta["name"], step["name"])
            ready, available = _available(by_name.get(name))
            entry.update(url=f"http://{name}.{ns}.svc:{step_port(step)}", replicas=step_replicas(step),
                         readyReplicas=ready, ready=available >= 1)
            if not entry["ready"]:
                w = waiting.get(step["name"])
                if w and w.get("reason") in _IMAGE_PULL:
                    problems.append((2, R_IMAGE_PULL_FAILED, _msg(step["name"], w)))
                elif w and w.get("reason") in _CRASH:
                    problems.append((1, R_CRASH_LOOP, _msg(step["name"], w)))
                elif name not in by_name:
                    problems.append((0, R_APP_NOT_AVAILABLE, f"step {step['name']}: Deployment {name} not found"))
                else:
                    problems.append((0, R_APP_NOT_AVAILABLE,
                                     f"step {step['name']}: 0 of {step_replicas(step)} replicas available"))
        else:
            entry["ready"] = True
        steps_status.append(entry)
    if problems:
        rank = max(p[0] for p in problems)
        reason = next(p[1] for p in problems if p[0] == rank)
        message = "; ".join(p[2] for p in problems)
        status, cond_reason = FALSE, reason
    elif service_steps == 0:
        status, cond_reason, message = TRUE, R_NO_SERVICE_STEPS, "every step runs as a Job or at a url"
    else:
        status, cond_reason, message = TRUE, R_READY, f"{service_steps} app services available"
    out: dict[str, Any] = {
        "conditions": set_condition(old.get("conditions"), CONDITION_READY, status, cond_reason, message,
                                    now, meta.get("generation")),
        "steps": steps_status,
    }
    if meta.get("generation") is not None:
        out["observedGeneration"] = meta["generation"]
    return out


def _msg(step: str, waiting: Mapping[str, Any]) -> str:
    detail = waiting.get("message")
    text = f"step {step}: {waiting.get('reason')}"
    return f"{text}: {detail}" if detail else text
