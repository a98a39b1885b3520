"""Monitor: one reconcile loop (a kopf daemon) per Monitor.

A pass (`reconcile_monitor`): read the Monitor; list its test runs and HealthReports (label
`mmif.dev/monitor`, controlled by its uid); for a single-app target make sure its probe Pipeline
exists and matches the app; plan (kinds/monitor/planning.py); then, in this order:

1. create the reports of finished test runs (409 counts only when the report is ours:
   core/ownership.py), so a report is written once whatever happens;
2. delete the test runs that are reported (only after their report exists: a crash between the
   two leaves a finished run whose report exists, deleted by the next pass);
3. create the next test run when one is due (its name is its scheduled time: a crash after the
   create finds it in flight, never makes a second);
4. delete the pruned reports; patch the status conditional on the resourceVersion read; post
   the Events (HealthChanged); set the gauges.

Wake-ups: a test run that ends (a PipelineRun event with the `mmif.dev/monitor` label and a
final phase), the Monitor's spec changing (`kubectl patch` of the interval: the next pass
recomputes the due time), and the timer the plan asks for (the next due time). Nothing is kept
in memory: the schedule follows from the reports' and runs' ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from mmif_operator import metrics
from mmif_operator.core import labels as L
from mmif_operator.core import ownership
from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import Kube, KubeError, NameConflict, owned_by
from mmif_operator.core.model import API_VERSION, VERSION
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.runtime.apply import patch_status
from mmif_operator.core.runtime.loop import Next, reconcile_forever, resync_timeout
from mmif_operator.core.runtime.wakeups import Wakers
from mmif_operator.core.specs import API_GROUP
from mmif_operator.core.status import find_condition
from mmif_operator.kinds.monitor import planning
from mmif_operator.kinds.monitor.model import KIND, PLURAL, REPORT_PLURAL
from mmif_operator.kinds.pipeline.model import PLURAL as PIPELINE_PLURAL
from mmif_operator.kinds.pipelinerun.handler import EventPoster, spec_changed
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.notifications import handler as notifications

log = logging.getLogger(__name__)
MONITOR_WAKERS = Wakers()
SPEC_HASH_ANNOTATION = "mmif.dev/probe-spec-hash"


def monitor_key(namespace: str, name: str) -> tuple[str, str]:
    return (namespace, L.label_value(name))


@dataclass
class MonitorPass:
    done: bool = False
    requeue_after: float | None = None
    status: dict[str, Any] | None = None


def _spec_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


async def ensure_probe_pipeline(kube: Kube, body: dict[str, Any]) -> tuple[str, str] | None:
    """The probe Pipeline exists and carries the app as its one step; (reason, message) when it
    cannot (another's Pipeline holds the name)."""
    meta = body["metadata"]
    digest = _spec_hash(body["spec"])
    body = {**body, "metadata": {**meta, "annotations": {SPEC_HASH_ANNOTATION: digest}}}
    have = await kube.get_custom(PIPELINE_PLURAL, meta["namespace"], meta["name"])
    if have is None:
        try:
            await kube.create_custom(PIPELINE_PLURAL, body)
        except NameConflict as e:
            return planning.R_NAME_CONFLICT, e.message
        return None
    verdict = ownership.classify(have, body)
    if verdict is not ownership.Ownership.OURS:
        return planning.R_NAME_CONFLICT, ownership.conflict_message("Pipeline", meta["name"], have)
    if ((have.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION) != digest:
        await kube.patch_custom(
            PIPELINE_PLURAL,
            meta["namespace"],
            meta["name"],
            {"metadata": {"annotations": {SPEC_HASH_ANNOTATION: digest}}, "spec": body["spec"]},
        )
        log.info("monitor probe Pipeline %s/%s: updated to the app", meta["namespace"], meta["name"])
    return None


async def reconcile_monitor(
    kube: Kube,
    namespace: str,
    name: str,
    uid: str | None,
    *,
    now: datetime | None = None,
    post_event: EventPoster = k8s_events.post,
    resync_seconds: float = 300.0,
) -> MonitorPass:
    monitor = await kube.get_custom(PLURAL, namespace, name)
    meta = (monitor or {}).get("metadata") or {}
    if monitor is None or (uid and meta.get("uid") != uid) or meta.get("deletionTimestamp"):
        return MonitorPass(done=True)
    own = meta.get("uid") or ""
    selector = {L.MONITOR: L.label_value(name)}
    runs = [r for r in await kube.list_custom(RUN_PLURAL, namespace, selector) if owned_by(r, own)]
    reports = [r for r in await kube.list_custom(REPORT_PLURAL, namespace, selector) if owned_by(r, own)]
    now = now or datetime.now(UTC)
    plan = planning.plan_monitor(monitor, runs, reports, now, resync_seconds=resync_seconds)
    stalled: tuple[str, str] | None = None
    what = f"monitor {namespace}/{name}"

    if plan.probe_pipeline is not None:
        stalled = await ensure_probe_pipeline(kube, plan.probe_pipeline)

    # 1. reports, then 2. the runs they report.
    for body in plan.create_reports:
        created = await kube.create_custom(REPORT_PLURAL, body)
        spec = body["spec"]
        log.info(
            "%s: report %s %s (%s)%s",
            what,
            spec["id"],
            spec["result"],
            spec["summary"],
            "" if created else " (existed)",
        )
    for run_name, run_uid in plan.delete_runs:
        await kube.delete_custom(RUN_PLURAL, namespace, run_name, uid=run_uid or None)

    # 3. the next test.
    if plan.create_run is not None and stalled is None:
        try:
            created = await kube.create_custom(RUN_PLURAL, plan.create_run)
            log.info(
                "%s: test %s started (%s)",
                what,
                plan.create_run["metadata"]["name"],
                "created" if created else "existed",
            )
        except NameConflict as e:
            stalled = (planning.R_NAME_CONFLICT, e.message)
        except KubeError as e:
            if not e.invalid:
                raise
            stalled = (planning.R_CREATE_FAILED, f"the API server refused the test run: {e.message}")
    status = dict(plan.status)
    if stalled is not None:
        if plan.create_run is not None:
            status["currentTest"] = None  # not started
        was = find_condition((monitor.get("status") or {}).get("conditions"), planning.CONDITION_STALLED)
        status["conditions"] = planning.conditions_for(
            (monitor.get("status") or {}).get("conditions"),
            plan.health,
            None,
            suspended=False,
            generation=meta.get("generation"),
            now=now,
            stalled=stalled,
        )
        if not was or (was.get("status"), was.get("message")) != ("True", stalled[1]):
            post_event(monitor, "Warning", stalled[0], stalled[1])  # once per new reason
        plan.requeue_after = min(plan.requeue_after or 30.0, 30.0)

    # 4. pruning, status, events, gauges.
    for report_name, report_uid in plan.prune:
        try:
            await kube.delete_custom(REPORT_PLURAL, namespace, report_name, uid=report_uid or None)
        except KubeError as e:
            log.warning("%s: pruning report %s: %s", what, report_name, e)
    patch = planning.status_patch(monitor.get("status"), status)
    if patch:
        patched = await patch_status(kube, PLURAL, monitor, patch)
        if patched.conflict:
            return MonitorPass(requeue_after=0.0)
        if patched.gone:
            return MonitorPass(done=True)
        for event in plan.events:
            post_event(monitor, event.type, event.reason, event.message)
            log.info("%s: %s", what, event.message)
        if plan.notify:
            notifications.MONITOR_NOTIFY_WAKERS.wake((namespace, name))
    metrics.set_monitor(namespace, name, status)
    return MonitorPass(requeue_after=plan.requeue_after, status=status)


# -- kopf handlers -----------------------------------------------------------------------------


@kopf.daemon(API_GROUP, VERSION, PLURAL, id="monitor-loop")
async def monitor_loop(
    name: str, namespace: str | None, uid: str, stopped: Any, logger: kopf.Logger, **_: Any
) -> None:
    assert namespace is not None  # a namespaced resource: kopf's None is for cluster-scoped ones
    cfg = runtime.config()
    waker = MONITOR_WAKERS.register(monitor_key(namespace, name))

    async def one_pass(_refresh: bool) -> Next:
        result = await reconcile_monitor(
            runtime.kube(), namespace, name, uid, resync_seconds=cfg.resync_seconds
        )
        if result.done:
            metrics.set_monitor(namespace, name, None)
        return Next(stop=result.done, timeout=resync_timeout(result.requeue_after, cfg.resync_seconds))

    ref = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
    }
    try:
        await reconcile_forever(waker, stopped, logger, kind="monitor", ref=ref, one_pass=one_pass)
    finally:
        MONITOR_WAKERS.unregister(waker)


@kopf.on.event(API_GROUP, VERSION, PLURAL)
async def monitor_event(
    name: str, namespace: str | None, meta: Any, status: Any, type: str | None, **_: Any
) -> None:
    """A spec change (e.g. the interval patched) wakes the Monitor's loop at once."""
    if namespace and type != "DELETED" and spec_changed(meta, status):
        MONITOR_WAKERS.wake(monitor_key(namespace, name))


@kopf.on.event(API_GROUP, VERSION, RUN_PLURAL, labels={L.MONITOR: kopf.PRESENT})
async def monitor_test_run_event(
    namespace: str | None, labels: Any, status: Any, type: str | None, **_: Any
) -> None:
    """A test run ended (or vanished): wake its Monitor's loop to report it."""
    monitor = labels.get(L.MONITOR)
    if not namespace or not monitor:
        return
    if type == "DELETED" or planning.run_done({"status": status}):
        MONITOR_WAKERS.wake((namespace, monitor))
