"""Delivering a run's notifications: one kopf daemon per PipelineRun with pending deliveries.

The run handler (runs.py) only *queues*: the deliveries a transition asks for go into
`status.notifications` in the same status patch as the transition (notifications/outbox.py). This
daemon sends them, beside the run's own loop, so a receiver that is slow or down never delays a
run's pass or transition:

* kopf starts it for every run whose `status.notifications.pending` is not 0 (its `when`
  filter), also for runs that are over and at every operator start: pending entries survive a
  restart, since they live in the run's status, not in memory. Once nothing is pending kopf stops
  it (and starts it again when a later transition queues more, e.g. ReviewPassed after
  AwaitingReview). It never returns on its own (kopf would not start it again in this process).
* A pass reads the run, attempts the due deliveries (bounded in flight, each attempt bounded in
  time: notifications/deliver.py), records the outcomes (outbox.record) with a status patch
  conditional on the version read (a conflict reads again and records the same outcomes onto
  it: the run loop may have queued more meanwhile), then posts the Events (delivered: Normal
  `NotificationDelivered`; given up: Warning `NotificationFailed`) and sleeps until the next
  attempt is due or the run handler wakes it (`runtime.NOTIFY_WAKERS`).

At least once: an attempt whose outcome was not recorded (the operator died in between) is
made again, with the same CloudEvent id. Targets come from the run's snapshot
`status.pipelineSpec.notifications`; a run that ended before it took one (e.g. its Pipeline was
not found or not Ready) follows its Pipeline as it is.

Why a daemon, not a background task woken by the handler: kopf already starts a daemon for every
matching object at start and stops it when the run is deleted (its finalizer holds the run until
then), which is exactly the resume-after-restart and stop-on-delete this needs, with no list of
runs to keep in memory.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.core.model import API_VERSION, VERSION
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.runtime.loop import Next, reconcile_forever
from mmif_operator.core.runtime.wakeups import Wakers
from mmif_operator.core.specs import API_GROUP
from mmif_operator.kinds.pipeline.model import PLURAL as PIPELINE_PLURAL
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.notifications import messages, outbox
from mmif_operator.notifications.deliver import Sender
from mmif_operator.notifications.model import Delivery, NotificationTarget
from mmif_operator.notifications.outbox import Outcome

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 8  # attempts at once, all runs together
MAX_CONFLICTS = 5  # a pass records its outcomes at most this many times over

_sender: Sender | None = None
_in_flight: asyncio.Semaphore | None = None


def sender() -> Sender:
    global _sender
    if _sender is None:
        _sender = Sender(runtime.kube())
    return _sender


def _slots() -> asyncio.Semaphore:
    global _in_flight
    if _in_flight is None:
        _in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
    return _in_flight


async def close() -> None:
    global _sender
    if _sender is not None:
        await _sender.close()
        _sender = None


async def targets_of(kube: Kube, run: dict[str, Any]) -> list[NotificationTarget]:
    """The run's targets: its snapshot's, else (it ended before taking one) its Pipeline's now.
    A Monitor's or a Project's: its own `spec.notifications`."""
    if run.get("kind") in (messages.MONITOR_KIND, messages.PROJECT_KIND):
        return outbox.parse_targets(run.get("spec"))
    status = run.get("status") or {}
    if status.get("pipelineSpec"):
        return outbox.parse_targets(status["pipelineSpec"])
    ref = ((run.get("spec") or {}).get("pipelineRef") or {}).get("name")
    namespace = (run.get("metadata") or {}).get("namespace") or ""
    pipeline = await kube.get_custom(PIPELINE_PLURAL, namespace, ref) if ref else None
    return outbox.parse_targets((pipeline or {}).get("spec"))


async def _attempt(target: NotificationTarget | None, run: dict[str, Any], delivery: Delivery) -> Outcome:
    if target is None:
        return Outcome(
            False, permanent=True, error=f"the Pipeline has no notification target {delivery.target!r}"
        )
    async with _slots():
        return await sender().attempt(target, run, delivery)


async def deliver_pass(
    kube: Kube,
    namespace: str,
    name: str,
    uid: str | None,
    *,
    now: datetime | None = None,
    plural: str = RUN_PLURAL,
) -> float | None:
    """One pass over one run's (or, with `plural` "monitors", one Monitor's) outbox. Returns the
    seconds until the next attempt is due (None: nothing pending, or the object is gone)."""
    run = await kube.get_custom(plural, namespace, name)
    meta = (run or {}).get("metadata") or {}
    if run is None or (uid and meta.get("uid") != uid):
        return None
    now = now or datetime.now(UTC)
    box = (run.get("status") or {}).get("notifications")
    todo = outbox.due(box, now)
    if not todo:
        return outbox.seconds_to_next(box, now)
    targets = {t.name: t for t in await targets_of(kube, run)}
    results = await asyncio.gather(*(_attempt(targets.get(d.target), run, d) for d in todo))
    outcomes = {d.id: r for d, r in zip(todo, results, strict=True)}
    policies = {n: t.retry for n, t in targets.items()}
    done = datetime.now(UTC)
    for _ in range(MAX_CONFLICTS):
        new_box, notices = outbox.record(box, outcomes, policies, done)
        try:
            await kube.patch_status(
                plural,
                namespace,
                name,
                {"notifications": new_box},
                resource_version=meta.get("resourceVersion"),
            )
        except KubeError as e:
            if e.not_found:
                return None
            if not e.conflict:
                raise
            run = await kube.get_custom(plural, namespace, name)
            meta = (run or {}).get("metadata") or {}
            if run is None or (uid and meta.get("uid") != uid):
                return None
            box = (run.get("status") or {}).get("notifications")
            continue
        for notice in notices:
            k8s_events.post(run, notice.type, notice.reason, notice.message)
        for d, r in zip(todo, results, strict=True):
            if not r.delivered:
                log.info(
                    "%s %s/%s: %s for %s not delivered: %s",
                    plural,
                    namespace,
                    name,
                    d.event,
                    d.target,
                    r.error,
                )
        return outbox.seconds_to_next(new_box, done)
    raise RuntimeError(
        f"recording the outcomes of {len(todo)} deliveries: {MAX_CONFLICTS} conflicts in a row"
    )


def _has_pending(status: Any, **_: Any) -> bool:
    return outbox.has_pending(status)


@kopf.daemon(API_GROUP, VERSION, RUN_PLURAL, id="notify", when=_has_pending)
async def notify_loop(
    name: str, namespace: str | None, uid: str, stopped: Any, logger: kopf.Logger, **_: Any
) -> None:
    """The run's delivery loop (see the module docstring)."""
    assert namespace is not None
    key = runtime.run_key(namespace, name)
    waker = runtime.NOTIFY_WAKERS.register(key)
    ref = {
        "apiVersion": API_VERSION,
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
    }

    async def one_pass(refresh: bool) -> Next:
        wait = await deliver_pass(runtime.kube(), namespace, name, uid)
        # Nothing pending: kopf stops this daemon once it sees the status; a wake (more queued)
        # or the resync period brings another pass meanwhile.
        return Next(timeout=runtime.config().resync_seconds if wait is None else max(wait, 0.2))

    try:
        await reconcile_forever(waker, stopped, logger, kind="notifications", ref=ref, one_pass=one_pass)
    finally:
        runtime.NOTIFY_WAKERS.unregister(waker)


MONITOR_NOTIFY_WAKERS = Wakers()  # the Monitors' delivery loops, woken when a change is queued


@kopf.daemon(API_GROUP, VERSION, messages.MONITOR_PLURAL, id="notify-monitor", when=_has_pending)
async def notify_monitor_loop(
    name: str, namespace: str | None, uid: str, stopped: Any, logger: kopf.Logger, **_: Any
) -> None:
    """A Monitor's delivery loop: its HealthChanged deliveries, exactly as a run's."""
    assert namespace is not None
    waker = MONITOR_NOTIFY_WAKERS.register((namespace, name))
    ref = {
        "apiVersion": API_VERSION,
        "kind": messages.MONITOR_KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
    }

    async def one_pass(refresh: bool) -> Next:
        wait = await deliver_pass(runtime.kube(), namespace, name, uid, plural=messages.MONITOR_PLURAL)
        return Next(timeout=runtime.config().resync_seconds if wait is None else max(wait, 0.2))

    try:
        await reconcile_forever(waker, stopped, logger, kind="notifications", ref=ref, one_pass=one_pass)
    finally:
        MONITOR_NOTIFY_WAKERS.unregister(waker)


PROJECT_NOTIFY_WAKERS = Wakers()  # the Projects' delivery loops, woken when an event is queued


@kopf.daemon(API_GROUP, VERSION, messages.PROJECT_PLURAL, id="notify-project", when=_has_pending)
async def notify_project_loop(name: str, uid: str, stopped: Any, logger: kopf.Logger, **_: Any) -> None:
    """A Project's delivery loop (cluster-scoped: namespace ""): its DisposalNotice,
    ProjectClosed and SharedRecords deliveries, exactly as a run's."""
    waker = PROJECT_NOTIFY_WAKERS.register(("", name))
    ref = {"apiVersion": API_VERSION, "kind": messages.PROJECT_KIND, "metadata": {"name": name, "uid": uid}}

    async def one_pass(refresh: bool) -> Next:
        wait = await deliver_pass(runtime.kube(), "", name, uid, plural=messages.PROJECT_PLURAL)
        return Next(timeout=runtime.config().resync_seconds if wait is None else max(wait, 0.2))

    try:
        await reconcile_forever(waker, stopped, logger, kind="notifications", ref=ref, one_pass=one_pass)
    finally:
        PROJECT_NOTIFY_WAKERS.unregister(waker)
