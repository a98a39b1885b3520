"""The Pipeline reconciler, pure: the app Deployments/Services/NetworkPolicies wanted, whether a
live one drifted from what the operator sets, and the Pipeline's status from the Deployments
(and, optionally, the app pods' waiting reasons and the name conflicts) observed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.core.specs import parse_spec
from mmif_operator.core.status import FALSE, TRUE, cut, find_condition, parse_time, set_condition
from mmif_operator.kinds.pipeline import children as services
from mmif_operator.kinds.pipeline.app import is_service_without_url
from mmif_operator.kinds.pipeline.model import Alternative, PipelineSpec

CONDITION_READY = "Ready"
# kstatus's conditions (abnormal-true: True only while something is going on or wrong).
CONDITION_RECONCILING = "Reconciling"
CONDITION_STALLED = "Stalled"
R_ROLLING_OUT = "RollingOut"
R_READY = "Ready"
R_NO_SERVICE_STEPS = "NoServiceSteps"
R_APP_NOT_AVAILABLE = "AppNotAvailable"
R_IMAGE_PULL_FAILED = "ImagePullFailed"
R_CRASH_LOOP = "CrashLoop"
R_NAME_CONFLICT = "NameConflict"
R_INVALID_SPEC = "InvalidSpec"

_IMAGE_PULL = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
}
_CRASH = {"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@dataclass(frozen=True)
class Pipeline:
    """A Pipeline as the planner reads it: its spec parsed into the model (defaults applied);
    metadata and status as stored (the status is the operator's own bookkeeping)."""

    meta: Mapping[str, Any]
    spec: PipelineSpec
    status: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.meta["name"])


def parse_pipeline(body: Mapping[str, Any]) -> Pipeline:
    """The Pipeline object kopf or the API server hands over, parsed where it enters
    (`core.specs.InvalidSpec`, naming the field, when its spec does not parse)."""
    return Pipeline(
        meta=body.get("metadata") or {},
        spec=parse_spec(PipelineSpec, body.get("spec")),
        status=body.get("status") or {},
    )


def desired_app_objects(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The Deployment, Service and NetworkPolicy of every Service-mode step without `url`, in
    step order."""
    ctx = services.PipelineContext.from_pipeline({"metadata": pipeline.meta})
    out: list[dict[str, Any]] = []
    for step in pipeline.spec.steps:
        if is_service_without_url(step):
            out.append(services.app_deployment(ctx, pipeline.spec, step))
            out.append(services.app_service(ctx, step))
            out.append(services.app_network_policy(ctx, step))
    return out


# -- drift ------------------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SCALE: dict[str | None, Decimal | int] = {
    None: 1,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def _quantity(value: Any) -> Decimal | None:
    """A resource quantity's value ("500m", "0.5", "1Gi"), None when it is not one."""
    m = _QUANTITY.match(str(value))
    if not m:
        return None
    try:
        return Decimal(m.group(1)) * _SCALE[m.group(2)]
    except InvalidOperation:
        return None


def _differences(desired: Any, live: Any, path: str, out: list[str]) -> None:
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            out.append(path or ".")
            return
        for key, value in desired.items():
            if key not in live:
                if value not in ({}, [], None, ""):  # the API server omits empty fields
                    out.append(f"{path}.{key}")
            else:
                _differences(value, live[key], f"{path}.{key}", out)
    elif isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            out.append(path)
            return
        for i, (want, have) in enumerate(zip(desired, live, strict=True)):
            _differences(want, have, f"{path}[{i}]", out)
    elif desired != live:
        # The API server writes quantities in canonical form ("0.5" -> "500m").
        if ".resources." in path and _quantity(desired) is not None and _quantity(desired) == _quantity(live):
            return
        out.append(path)


def drift(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The paths of the fields the operator sets on an app object (`desired`) whose live value
    differs: a Deployment scaled by hand (`.spec.replicas`), a template, Service selector or
    ports, or a NetworkPolicy edited. Fields the API server or others add are not compared
    (defaults, `clusterIP`, another field manager's annotations); lists must match in length
    and order. Ownership is not drift: only objects the Pipeline controls are compared."""
    out: list[str] = []
    meta, live_meta = desired.get("metadata") or {}, live.get("metadata") or {}
    for key in ("labels", "annotations"):
        if key in meta:
            _differences(meta[key], live_meta.get(key), f".metadata.{key}", out)
    if "spec" in desired:
        _differences(desired["spec"], live.get("spec"), ".spec", out)
    return out


def stale_app_objects(pipeline: Pipeline, existing: Iterable[str]) -> list[str]:
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


def _rolling_out(deployment: Mapping[str, Any] | None, wanted: int) -> bool:
    """Whether an app Deployment has not finished rolling out its latest template to exactly the
    wanted replicas, by kstatus's own rules for Deployments: its controller has not observed the
    latest generation, or fewer (or more) replicas, updated, available or ready replicas than
    wanted (old pods not yet gone count)."""
    if not deployment:
        return False
    gen = (deployment.get("metadata") or {}).get("generation")
    st = deployment.get("status") or {}
    seen = st.get("observedGeneration")
    if gen is not None and seen is not None and int(seen) < int(gen):
        return True
    available = int(st.get("availableReplicas") or 0)
    replicas = int(st.get("replicas", available) or 0)
    updated = int(st.get("updatedReplicas", available) or 0)
    ready = int(st.get("readyReplicas", available) or 0)
    return replicas != wanted or updated < wanted or updated > available or ready < wanted


def _available(deployment: Mapping[str, Any] | None) -> tuple[int, int]:
    """(readyReplicas, availableReplicas) of a Deployment (0, 0 when missing)."""
    if not deployment:
        return 0, 0
    st = deployment.get("status") or {}
    return int(st.get("readyReplicas") or 0), int(st.get("availableReplicas") or 0)


def alternative_status(alt: Alternative) -> dict[str, Any]:
    """`status.steps[].alternatives[]`: an alternative runs as a Job or at a url (the model
    refuses a Service-mode one without url), so it can always take items."""
    entry: dict[str, Any] = {"name": alt.name, "mode": alt.mode.value, "ready": True}
    if alt.url:
        entry["url"] = alt.url
    return entry


def compute_pipeline_status(
    pipeline: Pipeline,
    deployments: Iterable[Mapping[str, Any]],
    now: datetime,
    pod_waiting: Mapping[str, Any] | None = None,
    conflicts: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Pipeline's whole new `status`.

    deployments: the app Deployments observed (any; matched to steps by name).
    pod_waiting: step name → waiting reason of its app pods, as a string ("ImagePullBackOff")
        or `{reason, message}` (see `waiting_reasons_from_pods`).
    conflicts: step name -> why one of its app objects cannot be made (the name is held by an
        object the Pipeline does not own): the step is not ready, whatever answers at its name.
    A Service-mode step is ready when its Deployment has at least one available replica, or is
    scaled to zero (`autoscaling`: it starts when a run needs it), and no conflict; the Ready
    condition is True when every such step is ready.
    """
    meta, spec, old = pipeline.meta, pipeline.spec, pipeline.status
    ns = meta.get("namespace") or "default"
    by_name = {(d.get("metadata") or {}).get("name"): d for d in deployments}
    waiting = {
        k: ({"reason": v, "message": ""} if isinstance(v, str) else dict(v))
        for k, v in (pod_waiting or {}).items()
    }
    steps_status: list[dict[str, Any]] = []
    problems: list[tuple[int, str, str]] = []  # (rank, reason, message)
    rolling: list[str] = []  # Ready steps whose Deployment is still rolling out
    service_steps = 0
    idle: list[str] = []  # autoscaled steps at 0 replicas (no run needs them)
    for step in spec.steps:
        entry: dict[str, Any] = {"name": step.name, "mode": step.mode.value}
        if step.url:
            entry.update(url=step.url, ready=True)
        elif is_service_without_url(step):
            service_steps += 1
            name = names.app_service_name(meta["name"], step.name)
            ready, available = _available(by_name.get(name))
            conflict = (conflicts or {}).get(step.name)
            entry.update(
                url=f"http://{name}.{ns}.svc:{step.port}",
                replicas=step.replicas,
                readyReplicas=ready,
                # scaled to zero (`autoscaling`): ready to take items, the app starts for them
                ready=(available >= 1 or step.replicas == 0) and not conflict,
            )
            if step.replicas == 0 and not conflict:
                idle.append(step.name)
            if entry["ready"] and _rolling_out(by_name.get(name), step.replicas):
                dep_status = (by_name.get(name) or {}).get("status") or {}
                rolling.append(
                    f"step {step.name}: rolling out the latest spec "
                    f"({int(dep_status.get('updatedReplicas') or 0)} of {step.replicas} replicas "
                    f"updated, {available} available)"
                )
            if conflict:
                problems.append((3, R_NAME_CONFLICT, f"step {step.name}: {conflict}"))
            elif not entry["ready"]:
                w = waiting.get(step.name)
                if w and w.get("reason") in _IMAGE_PULL:
                    problems.append((2, R_IMAGE_PULL_FAILED, _msg(step.name, w)))
                elif w and w.get("reason") in _CRASH:
                    problems.append((1, R_CRASH_LOOP, _msg(step.name, w)))
                elif name not in by_name:
                    problems.append(
                        (0, R_APP_NOT_AVAILABLE, f"step {step.name}: Deployment {name} not found")
                    )
                else:
                    problems.append(
                        (0, R_APP_NOT_AVAILABLE, f"step {step.name}: 0 of {step.replicas} replicas available")
                    )
        else:
            entry["ready"] = True
        if step.alternatives:
            entry["alternatives"] = [alternative_status(a) for a in step.alternatives]
        steps_status.append(entry)
    if problems:
        rank = max(p[0] for p in problems)
        reason = next(p[1] for p in problems if p[0] == rank)
        message = "; ".join(p[2] for p in problems)
        status, cond_reason = FALSE, reason
    elif service_steps == 0:
        status, cond_reason, message = TRUE, R_NO_SERVICE_STEPS, "every step runs as a Job or at a url"
    else:
        status, cond_reason, message = TRUE, R_READY, f"{service_steps - len(idle)} app services available"
        if idle:
            message += f"; scaled to zero until a run needs them: {', '.join(idle)}"
    generation = meta.get("generation")
    conditions = set_condition(
        old.get("conditions"), CONDITION_READY, status, cond_reason, message, now, generation
    )
    conditions = _kstatus_conditions(
        conditions,
        spec.progress_deadline_seconds,
        generation,
        now,
        status == TRUE,
        cond_reason,
        message,
        rolling,
    )
    out: dict[str, Any] = {"conditions": conditions, "steps": steps_status}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def invalid_spec_status(body: Mapping[str, Any], message: str, now: datetime) -> dict[str, Any]:
    """The status of a Pipeline whose spec does not parse (stored before a schema change):
    `Ready=False InvalidSpec` with the field named, and `Stalled=True` at once (only a person
    can fix it); the steps are not described and no app object is touched."""
    meta = body.get("metadata") or {}
    old = body.get("status") or {}
    generation = meta.get("generation")
    message = f"the spec does not parse: {message}"
    conditions = set_condition(
        old.get("conditions"), CONDITION_READY, FALSE, R_INVALID_SPEC, message, now, generation
    )
    conditions = set_condition(
        conditions,
        CONDITION_RECONCILING,
        FALSE,
        R_INVALID_SPEC,
        "stalled: see the Stalled condition",
        now,
        generation,
    )
    conditions = set_condition(conditions, CONDITION_STALLED, TRUE, R_INVALID_SPEC, message, now, generation)
    out: dict[str, Any] = {"conditions": conditions, "steps": []}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def _kstatus_conditions(
    conditions: list[dict[str, Any]],
    deadline: int,
    generation: int | None,
    now: datetime,
    ready: bool,
    reason: str,
    message: str,
    rolling: list[str],
) -> list[dict[str, Any]]:
    """`Reconciling` and `Stalled` beside `Ready`, as kstatus (Flux, kpt, cli-utils) reads them.

    Ready and rolled out: both False. Not Ready: `Reconciling=True` with Ready's reason and
    message while the operator works toward the spec, counted from when it began (the Pipeline
    stopped being Ready, or its spec changed: a new generation starts the count again); past
    `spec.progressDeadlineSeconds`, or at once for a name conflict (only a person can resolve it),
    `Stalled=True` with Ready's reason instead (kstatus takes the first True of the two, so they
    are never True together). Ready while an app Deployment rolls out: `Reconciling=True
    RollingOut`."""
    old = find_condition(conditions, CONDITION_RECONCILING)
    if old and old.get("status") == TRUE and old.get("observedGeneration") != generation:
        # A new generation: the count starts again (a new lastTransitionTime).
        conditions = [c for c in conditions if c.get("type") != CONDITION_RECONCILING]
        old = None
    since = parse_time(old.get("lastTransitionTime")) if old and old.get("status") == TRUE else None
    was = find_condition(conditions, CONDITION_STALLED)
    was_stalled = bool(was and was.get("status") == TRUE and was.get("observedGeneration") == generation)
    gave_up = f"not Ready for {deadline} s (spec.progressDeadlineSeconds); the operator keeps trying"
    if ready:
        stalled = (FALSE, R_READY, "")
        reconciling = (TRUE, R_ROLLING_OUT, "; ".join(rolling)) if rolling else (FALSE, R_READY, "")
    elif reason == R_NAME_CONFLICT:
        stalled = (TRUE, reason, message)
        reconciling = (FALSE, reason, "stalled: see the Stalled condition")
    elif was_stalled or (since is not None and (now - since).total_seconds() >= deadline):
        stalled = (TRUE, reason, f"{gave_up}: {message}")
        reconciling = (FALSE, reason, "stalled: see the Stalled condition")
    else:
        stalled = (FALSE, reason, f"not Ready; Stalled after {deadline} s (spec.progressDeadlineSeconds)")
        reconciling = (TRUE, reason, message)
    conditions = set_condition(conditions, CONDITION_RECONCILING, *reconciling, now, generation)
    return set_condition(conditions, CONDITION_STALLED, *stalled, now, generation)


def seconds_until_stalled(status: Mapping[str, Any], spec: PipelineSpec, now: datetime) -> float | None:
    """How long until a Pipeline that is Reconciling because it is not Ready would be Stalled
    (None when it is not counting), so the loop wakes up in time to say so."""
    conditions = status.get("conditions")
    ready = find_condition(conditions, CONDITION_READY)
    rec = find_condition(conditions, CONDITION_RECONCILING)
    if not ready or ready.get("status") == TRUE or not rec or rec.get("status") != TRUE:
        return None
    since = parse_time(rec.get("lastTransitionTime"))
    if since is None:
        return None
    return max(0.0, spec.progress_deadline_seconds - (now - since).total_seconds())


def _msg(step: str, waiting: Mapping[str, Any]) -> str:
    detail = waiting.get("message")
    text = f"step {step}: {waiting.get('reason')}"
    return f"{text}: {detail}" if detail else text
