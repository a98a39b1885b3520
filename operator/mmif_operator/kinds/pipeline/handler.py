"""Pipeline: one reconcile loop (a kopf daemon) per Pipeline, for its Service-mode apps.

A pass (`reconcile_pipeline`): re-read the Pipeline; list the app Deployments, Services and
NetworkPolicies it owns (labels + controller uid); create the missing ones; server-side-apply
(field manager `mmif-operator`, forced) the ones that drifted from what the operator sets (the
live fields compared with the desired object: `kinds.pipeline.planning.drift`, e.g. a Deployment
scaled to 0 by hand; a changed spec changes the desired-hash annotation, so it drifts too); an
object of that name the Pipeline does not own is never touched: the step is not ready and the
Pipeline says `Ready=False NameConflict` naming the owner (and a Warning Event); delete the ones
no step wants; compute `status` from the Deployments (and, while a step is not ready, the
waiting reasons of its pods: ImagePullBackOff, CrashLoopBackOff, ...) and merge-patch it when it
changed. Beside `Ready`, the status carries kstatus's `Reconciling` and `Stalled` (see
`kinds.pipeline.planning._kstatus_conditions`): a Pipeline not Ready past
`spec.progressDeadlineSeconds` is `Stalled`, and the loop wakes up in time to say so.

Wake-ups: the Pipeline's own spec changes (generation ahead of observedGeneration), events of its
app Deployments, Services and NetworkPolicies (scaled, edited or deleted by hand), a 10-second
timer while a step is not ready (pods are not watched), and the resync timer. A Pipeline that
appears also wakes the runs waiting for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import kopf

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import Kube, KubeError, NameConflict, owned_by
from mmif_operator.core.model import API_VERSION, VERSION
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.runtime.apply import patch_status
from mmif_operator.core.runtime.loop import Next, reconcile_forever, resync_timeout
from mmif_operator.core.specs import API_GROUP, InvalidSpec
from mmif_operator.kinds.pipeline import scaling
from mmif_operator.kinds.pipeline.planning import (
    CONDITION_READY,
    compute_pipeline_status,
    desired_app_objects,
    drift,
    invalid_spec_status,
    parse_pipeline,
    seconds_until_stalled,
    stale_app_objects,
    waiting_reasons_from_pods,
)
from mmif_operator.kinds.pipeline.scaling import Need
from mmif_operator.kinds.pipelinerun.handler import EventPoster, spec_changed

log = logging.getLogger(__name__)

PLURAL = "pipelines"
HASH_ANNOTATION = "mmif.dev/desired-hash"
NOT_READY_REQUEUE_SECONDS = 10.0
APP_KINDS = ("Deployment", "Service", "NetworkPolicy")


@dataclass
class PipelinePass:
    done: bool = False
    requeue_after: float | None = None
    status: dict[str, Any] | None = None


def desired_hash(obj: Mapping[str, Any]) -> str:
    """A short digest of a desired object (without our hash annotation)."""
    clean = json.loads(json.dumps(obj, sort_keys=True))
    meta = clean.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    annotations.pop(HASH_ANNOTATION, None)
    if not annotations:
        meta.pop("annotations", None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:16]


def with_hash(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(obj))
    out["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = desired_hash(obj)
    return out


def is_ready(status: Mapping[str, Any] | None) -> bool:
    for cond in (status or {}).get("conditions") or ():
        if cond.get("type") == CONDITION_READY:
            return cond.get("status") == "True"
    return False


def _ready_message(status: Mapping[str, Any]) -> str:
    for cond in status.get("conditions") or ():
        if cond.get("type") == CONDITION_READY:
            return cond.get("message") or ""
    return ""


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    old = old or {}
    return any(old.get(k) != v for k, v in new.items())


async def reconcile_pipeline(
    kube: Kube,
    namespace: str,
    name: str,
    uid: str | None,
    *,
    now: datetime | None = None,
    post_event: EventPoster = k8s_events.post,
    needs: Mapping[str, list[Need]] | None = None,
    needed_at: dict[str, float] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PipelinePass:
    """One pass over the Pipeline `name`: its app objects as its steps want them, then its
    status. `needs`: what the runs in flight need of its autoscaled steps (core/runtime/
    backlog.py); `needed_at`: the loop's memory of when each such step last needed its replicas
    (kinds/pipeline/scaling.py), updated in place."""
    pipeline = await kube.get_custom(PLURAL, namespace, name)
    meta = (pipeline or {}).get("metadata") or {}
    if pipeline is None or (uid and meta.get("uid") != uid) or meta.get("deletionTimestamp"):
        return PipelinePass(done=True)
    now = now or datetime.now(UTC)
    try:
        parsed = parse_pipeline(pipeline)
    except InvalidSpec as e:
        # Stored before a schema change: say so (Ready=False, Stalled=True, InvalidSpec) and
        # touch no app object; a spec change wakes the loop.
        log.warning("pipeline %s/%s: the spec does not parse: %s", namespace, name, e.message)
        return await _write_status(
            kube, pipeline, invalid_spec_status(pipeline, e.message, now), None, post_event
        )
    puid = meta.get("uid") or ""
    selector = {
        L.MANAGED_BY: L.MANAGER,
        L.COMPONENT: L.COMPONENT_APP_SERVICE,
        L.PIPELINE: L.label_value(name),
    }
    existing: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in APP_KINDS:
        objs = await kube.list(kind, namespace, selector)
        existing[kind] = {o["metadata"]["name"]: o for o in objs if owned_by(o, puid)}

    requeue: float | None = None
    if any(s.autoscaling is not None for s in parsed.spec.steps):
        current = {
            s.name: (existing["Deployment"].get(names.app_service_name(name, s.name)) or {})
            .get("spec", {})
            .get("replicas")
            for s in parsed.spec.steps
        }
        memory = needed_at if needed_at is not None else {}
        replicas, at, requeue = scaling.plan_replicas(
            parsed.spec.steps, current, needs or {}, memory, clock()
        )
        memory.clear()
        memory.update(at)
        parsed = replace(parsed, spec=scaling.with_replicas(parsed.spec, replicas))
    desired = desired_app_objects(parsed)
    step_of = {names.app_service_name(name, s.name): s.name for s in parsed.spec.steps}
    conflicts: dict[str, str] = {}
    old_status = parsed.status

    for obj in desired:
        kind, obj_name = obj["kind"], obj["metadata"]["name"]
        body = with_hash(obj)
        have = existing[kind].get(obj_name)
        if have is not None:
            changed = drift(body, have)
            if not changed:
                continue  # as desired: no write
            # Server-side apply updates what drifted (forced: a `kubectl scale` gives the
            # replicas back), and drops fields an earlier apply set that the desired object no
            # longer has (e.g. a removed nodeSelector).
            existing[kind][obj_name] = await kube.apply(body)
            log.info(
                "pipeline %s/%s: updated %s %s (%s)", namespace, name, kind, obj_name, ", ".join(changed[:5])
            )
            continue
        # Not in our list: create it. A 409 is ours only when the object has our uid (its labels
        # were edited: apply them back); anyone else's is left alone: a name conflict.
        try:
            created = await kube.create(body)
        except NameConflict as e:
            step = step_of.get(obj_name, obj_name)
            conflicts[step] = e.message
            if e.message not in _ready_message(old_status):
                post_event(pipeline, "Warning", "NameConflict", f"step {step}: {e.message}; not touching it")
            requeue = _sooner(requeue, NOT_READY_REQUEUE_SECONDS)
            continue
        except KubeError as e:
            if not e.conflict:
                raise
            # an earlier same-named Pipeline's object goes
            requeue = _sooner(requeue, NOT_READY_REQUEUE_SECONDS)
            continue
        existing[kind][obj_name] = body if created else await kube.apply(body)
        log.info(
            "pipeline %s/%s: %s %s %s",
            namespace,
            name,
            "created" if created else "re-applied",
            kind,
            obj_name,
        )

    for kind in APP_KINDS:
        for stale in stale_app_objects(parsed, existing[kind]):
            stale_uid = (existing[kind][stale].get("metadata") or {}).get("uid")
            if await kube.delete(kind, namespace, stale, uid=stale_uid):
                log.info("pipeline %s/%s: deleted %s %s (no step wants it)", namespace, name, kind, stale)
            existing[kind].pop(stale, None)

    deployments = list(existing["Deployment"].values())
    status = compute_pipeline_status(parsed, deployments, now, conflicts=conflicts)
    if not all(s.get("ready") for s in status["steps"]):
        pods = await kube.list("Pod", namespace, selector)
        status = compute_pipeline_status(
            parsed, deployments, now, waiting_reasons_from_pods(pods), conflicts=conflicts
        )
        requeue = _sooner(requeue, NOT_READY_REQUEUE_SECONDS)
        until_stalled = seconds_until_stalled(status, parsed.spec, now)
        if until_stalled is not None:  # wake up in time to say Stalled
            requeue = min(requeue, until_stalled + 0.5)
    return await _write_status(kube, pipeline, status, requeue, post_event)


def _sooner(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


async def _write_status(
    kube: Kube,
    pipeline: Mapping[str, Any],
    status: dict[str, Any],
    requeue: float | None,
    post_event: EventPoster,
) -> PipelinePass:
    """Merge-patch the Pipeline's status when it changed (conditional on the resourceVersion
    read), with an Event when Ready changes."""
    old = pipeline.get("status") or {}
    if status_changed(old, status):
        patched = await patch_status(kube, PLURAL, pipeline, status)
        if patched.conflict:
            return PipelinePass(requeue_after=0.0)
        if patched.gone:
            return PipelinePass(done=True)
        if is_ready(status) != is_ready(old):
            cond = next(c for c in status["conditions"] if c["type"] == CONDITION_READY)
            post_event(
                pipeline, "Normal" if is_ready(status) else "Warning", cond["reason"], cond.get("message", "")
            )
    return PipelinePass(requeue_after=requeue, status=status)


# -- kopf handlers -----------------------------------------------------------------------------


@kopf.daemon(API_GROUP, VERSION, PLURAL, id="pipeline-loop")
async def pipeline_loop(
    name: str, namespace: str | None, uid: str, stopped: Any, logger: kopf.Logger, **_: Any
) -> None:
    assert namespace is not None  # a namespaced resource: kopf's None is for cluster-scoped ones
    cfg = runtime.config()
    key = runtime.pipeline_key(namespace, name)
    waker = runtime.PIPELINE_WAKERS.register(key)
    needed_at: dict[str, float] = {}  # autoscaled steps: when each last needed its replicas

    async def one_pass(_refresh: bool) -> Next:
        result = await reconcile_pipeline(
            runtime.kube(), namespace, name, uid, needs=runtime.BACKLOGS.needs(key), needed_at=needed_at
        )
        return Next(stop=result.done, timeout=resync_timeout(result.requeue_after, cfg.resync_seconds))

    ref = {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
    }
    try:
        await reconcile_forever(waker, stopped, logger, kind="pipeline", ref=ref, one_pass=one_pass)
    finally:
        runtime.PIPELINE_WAKERS.unregister(waker)


@kopf.on.event(API_GROUP, VERSION, PLURAL)
async def pipeline_event(
    name: str, namespace: str | None, meta: Any, status: Any, type: str | None, **_: Any
) -> None:
    """Spec changes wake the Pipeline's loop; a Pipeline that appears, or is Ready, wakes the
    pending runs waiting for it (they would otherwise look again after up to 30 s)."""
    assert namespace is not None  # a namespaced resource: kopf's None is for cluster-scoped ones
    if type == "DELETED":
        return
    if spec_changed(meta, status):
        runtime.PIPELINE_WAKERS.wake(runtime.pipeline_key(namespace, name))
    if type in ("ADDED", None) or is_ready(status):
        runtime.RUN_WAKERS.wake_where(
            lambda w: w.key[0] == namespace and w.tags.get("pipeline") == name and w.tags.get("pending", True)
        )


_APP_OBJECTS = {L.MANAGED_BY: L.MANAGER, L.COMPONENT: L.COMPONENT_APP_SERVICE}


def _wake_pipeline(namespace: str | None, labels: Any) -> None:
    pipeline = labels.get(L.PIPELINE)
    if namespace and pipeline:
        runtime.PIPELINE_WAKERS.wake((namespace, pipeline))


@kopf.on.event("apps", "v1", "deployments", labels=_APP_OBJECTS)
async def app_deployment_event(namespace: str | None, labels: Any, **_: Any) -> None:
    """An app Deployment changed (replicas ready, scaled or deleted by hand): wake its Pipeline's
    loop (which corrects drift)."""
    _wake_pipeline(namespace, labels)


@kopf.on.event("v1", "services", labels=_APP_OBJECTS)
async def app_service_event(namespace: str | None, labels: Any, **_: Any) -> None:
    """An app Service changed (edited or deleted by hand): wake its Pipeline's loop."""
    _wake_pipeline(namespace, labels)


@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=_APP_OBJECTS)
async def app_network_policy_event(namespace: str | None, labels: Any, **_: Any) -> None:
    """An app NetworkPolicy changed (edited or deleted by hand): wake its Pipeline's loop."""
    _wake_pipeline(namespace, labels)
