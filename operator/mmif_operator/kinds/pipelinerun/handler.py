"""PipelineRun: one reconcile loop (a kopf daemon) per run that is not over.

A pass (`reconcile_run`): take the run as the last pass left it (the object its status patch
returned) or read it again (first pass, timers, a spec change, a conflict); read the Pipeline
(until the run holds its snapshot) and the PVC (while pending), the run's Jobs from the index, the
termination messages `plan_run` needs; plan; apply in this order:

1. create Jobs (409 AlreadyExists = success), at most `MAX_CREATES_PER_PASS`;
2. merge-patch `.status`, conditional on the resourceVersion the plan started from (409
   Conflict: someone changed the run meanwhile, read it again and plan again at once);
3. delete Jobs (404 = success): only now, so a finished Job's outcome is already in the status.
   The loop hands them to `BackgroundDeletes` and goes on; a pass on its own awaits them;
4. post Events; 5. delete the run when its TTL is over; 6. sleep until the plan's requeue time
   or a wake-up.

Wake-ups: the run's Jobs when one finishes or vanishes (jobs.py), the run's own spec changes
(below: `metadata.generation` ahead of `status.observedGeneration`, e.g. `spec.status:
Cancelled`), its Pipeline appearing or becoming Ready while the run is pending (pipelines.py),
a pod that cannot start (podstart.py, which looks at the run's Pending pods beside the loop and
hands the failures to the next pass), and the plan's timer. The loop ends when the
run is over (and has no TTL to wait for); kopf starts it again at operator start for every run
still matching the filter, which is the whole restart story: nothing in memory is needed for
correctness (the cached run only saves a read: a stale one fails the conditional patch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import kopf

from mmif_operator import metrics
from mmif_operator.core import labels as L
from mmif_operator.core.itemstates import ItemPhase
from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import Kube
from mmif_operator.core.model import API_VERSION, VERSION
from mmif_operator.core.observed import ObservedJob
from mmif_operator.core.podstart import Bounds, StartFailure, run_bounds
from mmif_operator.core.runtime import applogs
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.runtime.apply import (
    apply_creates,
    patch_status,
    planned_jobs,
    sooner,
    termination_messages,
)
from mmif_operator.core.runtime.deletions import BackgroundDeletes
from mmif_operator.core.runtime.expectations import RecentCreates
from mmif_operator.core.runtime.loop import Next, Refusals, reconcile_forever, resync_timeout
from mmif_operator.core.runtime.podstart import PodStartWatch
from mmif_operator.core.runtime.runner_inputs import delete_config_maps
from mmif_operator.core.runtime.wakeups import RUN_DEBOUNCE_SECONDS
from mmif_operator.core.specs import API_GROUP, InvalidSpec, ParseCache, parse_spec
from mmif_operator.kinds.analysisjob import handler as analyses
from mmif_operator.kinds.analysisjob import triggers
from mmif_operator.kinds.monitor.model import PLURAL as MONITOR_PLURAL
from mmif_operator.kinds.pipeline import scaling
from mmif_operator.kinds.pipeline.model import PLURAL as PIPELINE_PLURAL
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import conflicts as C
from mmif_operator.kinds.pipelinerun import images, pools
from mmif_operator.kinds.pipelinerun.alternatives import MonitorView
from mmif_operator.kinds.pipelinerun.children import RunContext
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.kinds.pipelinerun.planning import (
    AWAITING_REVIEW,
    PUBLISHING,
    TERMINAL_PHASES,
    Run,
    RunPlan,
    Sibling,
    parse_run,
    plan_invalid_run,
    plan_run,
    progress_only,
    request_of,
    stage_of,
    termination_messages_needed,
)
from mmif_operator.kinds.project.planning import (
    PROJECTS_INDEX,
    RUN_RECORDS_INDEX,
    RecordTarget,
    record_target,
    run_records_entry,
)
from mmif_operator.notifications import outbox

log = logging.getLogger(__name__)

DELETE_RETRY_SECONDS = 10.0
# A busy run's status is written at most about this often while only its progress moves (one
# patch per pass, with passes no longer spaced by a debounce, was one write per item-step).
PROGRESS_INTERVAL_SECONDS = 1.0

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
Wake = Callable[[str], object]  # wake the loop of the run of that name (same namespace)
RecordRuns = Callable[[], dict[str, list[dict[str, Any]]]]  # a snapshot of the runs index


@dataclass(frozen=True)
class PassContext:
    """What one pass is given besides the run and its Jobs (reconcile_run's keyword arguments,
    described there), handed down as one value."""

    operator_image: str
    now: datetime | None = None
    post_event: EventPoster = k8s_events.post
    recent: RecentCreates | None = None
    deletes: BackgroundDeletes | None = None
    progress_wait: float = 0.0
    refusals: Refusals | None = None
    start_failures: Mapping[str, StartFailure] | None = None
    wake: Wake | None = None
    specs: ParseCache | None = None
    records: RecordTarget | None = None
    monitors: Sequence[MonitorView] = ()
    record_runs: RecordRuns | None = None
    hold_starts: bool = False


class RequestLocks:
    """One lock per (namespace, request): the runs of one request that await their review are
    planned one at a time, each after a fresh list of the others, so of two passed at once the
    first to enter Publishing wins and the other sees it (`kinds.pipelinerun.planning.superseded_by`). In
    memory: one operator process plans every run."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, namespace: str, request: str) -> AsyncIterator[None]:
        key = (namespace, request)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]


REQUEST_LOCKS = RequestLocks()


@dataclass
class PassResult:
    done: bool = False  # nothing more to do: the run is over (or gone)
    gone: bool = False  # the run is gone, being deleted, or was replaced
    requeue_after: float | None = None  # come back after this many seconds (None: resync)
    plan: RunPlan | None = None
    run: dict[str, Any] | None = None  # the run as read, with the plan's status
    latest: dict[str, Any] | None = None  # the run as the API server holds it after this pass
    # (the status patch's answer); None: read it again
    patched: bool = False  # this pass wrote the status
    bounds: Bounds | None = None  # how long the run's pods may take to start (None: unreadable)


def is_terminal(status: Mapping[str, Any] | None) -> bool:
    return (status or {}).get("phase") in TERMINAL_PHASES


def needs_loop(spec: Mapping[str, Any] | None, status: Mapping[str, Any] | None) -> bool:
    """Whether a run needs its loop: not over yet, or over with a TTL to enforce."""
    return not is_terminal(status) or (spec or {}).get("ttlSecondsAfterFinished") is not None


def spec_changed(meta: Mapping[str, Any], status: Mapping[str, Any] | None) -> bool:
    """The spec changed since the status was written (generation ahead of observedGeneration)."""
    generation = meta.get("generation")
    observed = (status or {}).get("observedGeneration")
    return generation is not None and generation != observed


async def reconcile_run(
    kube: Kube,
    namespace: str,
    name: str,
    uid: str | None,
    observed: Iterable[ObservedJob],
    *,
    operator_image: str,
    now: datetime | None = None,
    post_event: EventPoster = k8s_events.post,
    recent: RecentCreates | None = None,
    known: Mapping[str, Any] | None = None,
    deletes: BackgroundDeletes | None = None,
    progress_wait: float = 0.0,
    refusals: Refusals | None = None,
    start_failures: Mapping[str, StartFailure] | None = None,
    wake: Wake | None = None,
    specs: ParseCache | None = None,
    records: RecordTarget | None = None,
    monitors: Sequence[MonitorView] = (),
    record_runs: RecordRuns | None = None,
    hold_starts: bool = False,
) -> PassResult:
    """One pass over one run (see the module docstring). `known`: the run as the previous pass
    left it (`PassResult.latest`), instead of reading it; `deletes`: where Jobs are deleted
    beside the loop (None: deleted before this returns); `progress_wait`: seconds a
    progress-only status patch still waits (`progress_only`); the pass then writes nothing but
    its creates and asks to come back when the wait is over. `refusals`: the creates the loop
    was refused for good (a name held by another's object, an invalid Job), handed to the
    planner as failed Jobs of that name (None: only this pass's, planned again at once);
    `start_failures`: Jobs whose pod cannot start (core/runtime/podstart.py), planned as failed
    with that reason and message. A run awaiting its review that was made for a request
    (label `mmif.dev/request`) is planned under the request's lock, with the other runs of the
    request listed afresh; when it enters Publishing, `wake` wakes those still awaiting theirs.
    `specs`: where the run's parsed spec is kept between passes (the loop's; parsed again when
    the generation changes). `monitors`: the Monitors of the namespace, for steps with
    alternatives (kinds/pipelinerun/alternatives.py). `record_runs`: a snapshot of the runs
    index `run_records_by_namespace`, taken only for a run awaiting review (the conflicts of a
    Pass: kinds/pipelinerun/conflicts.py); None: conflicts are not looked for. `hold_starts`:
    a pod of the run waits for room on the nodes (core/podstart.py): no new item starts."""
    run = dict(known) if known is not None else await kube.get_custom(RUN_PLURAL, namespace, name)
    meta = (run or {}).get("metadata") or {}
    if run is None or (uid and meta.get("uid") != uid) or meta.get("deletionTimestamp"):
        return PassResult(done=True, gone=True)
    ctx = PassContext(
        operator_image=operator_image,
        now=now,
        post_event=post_event,
        recent=recent,
        deletes=deletes,
        progress_wait=progress_wait,
        refusals=refusals,
        start_failures=start_failures,
        wake=wake,
        specs=specs,
        records=records,
        monitors=monitors,
        record_runs=record_runs,
        hold_starts=hold_starts,
    )
    if record_runs is not None and passes_from_records(run):
        # Passes of a namespace's runs from records one at a time, each seeing the runs that
        # entered Publishing before it (RECENT_PUBLICATIONS), even before the index does.
        snapshot = record_runs
        async with PUBLISH_LOCKS.hold(namespace, ""):
            overlaid = replace(ctx, record_runs=lambda: RECENT_PUBLICATIONS.overlay(snapshot()))
            result = await _reconcile_review(kube, run, observed, overlaid)
            if result.plan is not None and result.plan.phase == PUBLISHING and result.patched:
                entry = run_records_entry(
                    name,
                    run.get("spec"),
                    meta.get("creationTimestamp"),
                    result.plan.status,
                    meta.get("labels"),
                )
                if entry is not None:
                    RECENT_PUBLICATIONS.add(namespace, entry)
        return result
    return await _reconcile_review(kube, run, observed, ctx)


def passes_from_records(run: Mapping[str, Any]) -> bool:
    """A run awaiting review, passed, whose inline items start from records: its pass may publish
    records another such run's pass would conflict with."""
    spec = run.get("spec") or {}
    if (run.get("status") or {}).get("phase") != AWAITING_REVIEW:
        return False
    if ((spec.get("review") or {}).get("decision")) != "Pass":
        return False
    return any(isinstance(i, Mapping) and i.get("record") for i in spec.get("items") or ())


class RecentPublications:
    """The runs from records that entered Publishing in this process, for the conflicts of the
    next passes (kinds/pipelinerun/conflicts.py) until the runs index shows them: the index is
    fed by the watch, a few milliseconds after the status patch. Kept `KEEP_SECONDS`."""

    KEEP_SECONDS = 120.0

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def add(self, namespace: str, entry: Mapping[str, Any]) -> None:
        self._entries[(namespace, str(entry.get("run")))] = (time.monotonic(), dict(entry))

    def overlay(self, snapshot: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """`snapshot` (a copy of the runs index) with the recent entries in place of the index's."""
        now = time.monotonic()
        for key in [k for k, (at, _) in self._entries.items() if now - at > self.KEEP_SECONDS]:
            del self._entries[key]
        for (namespace, run), (_, entry) in self._entries.items():
            others = [e for e in snapshot.get(namespace, []) if e.get("run") != run]
            snapshot[namespace] = [*others, entry]
        return snapshot


PUBLISH_LOCKS = RequestLocks()  # per namespace: passes of runs from records
RECENT_PUBLICATIONS = RecentPublications()


async def _reconcile_review(
    kube: Kube, run: dict[str, Any], observed: Iterable[ObservedJob], ctx: PassContext
) -> PassResult:
    """A pass; for a run of a request awaiting review, under the request's lock with its
    siblings listed, waking those still awaiting when it enters Publishing."""
    meta = run.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    request = request_of(run)
    if request is None or (run.get("status") or {}).get("phase") != AWAITING_REVIEW:
        return await _reconcile(kube, run, observed, ctx, siblings=None)
    async with REQUEST_LOCKS.hold(namespace, request):
        listed = await kube.list_custom(RUN_PLURAL, namespace, {L.REQUEST: request})
        siblings = [Sibling.from_run(r) for r in listed if (r.get("metadata") or {}).get("name") != name]
        result = await _reconcile(kube, run, observed, ctx, siblings=siblings)
    if (
        result.plan is not None
        and result.plan.phase == PUBLISHING
        and result.patched
        and ctx.wake is not None
    ):
        for sibling in siblings:
            if sibling.phase == AWAITING_REVIEW:
                ctx.wake(sibling.name)  # it is superseded now: tell it at once
    return result


async def _reconcile(
    kube: Kube,
    run: dict[str, Any],
    observed: Iterable[ObservedJob],
    ctx: PassContext,
    *,
    siblings: list[Sibling] | None,
) -> PassResult:
    post_event, recent, deletes, record_runs = ctx.post_event, ctx.recent, ctx.deletes, ctx.record_runs
    meta = run.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    spec = run.get("spec") or {}
    status = run.get("status") or {}
    refusals = ctx.refusals if ctx.refusals is not None else Refusals()
    start_failures = ctx.start_failures or {}
    jobs = planned_jobs(observed, refusals, start_failures, meta.get("uid") or "")
    # Deletes and pod reads are bound to the uid of the run's own Job of that name.
    uids = {j.name: j.uid for j in jobs if j.uid and j.owned_by(meta.get("uid") or "")}
    if (
        is_terminal(status)
        and spec.get("ttlSecondsAfterFinished") is None
        and not spec_changed(meta, status)
        and not jobs
    ):
        return PassResult(done=True)

    # Parsed where they enter: the run's spec and snapshot, the Pipeline's spec (core/specs.py).
    try:
        parsed = parse_run(run, ctx.specs)
        invalid: InvalidSpec | None = None
    except InvalidSpec as e:
        parsed, invalid = None, e
        log.warning("run %s/%s: cannot be read: %s", namespace, name, e.message)
    pipeline_spec: PipelineSpec | None = None
    pipeline: dict[str, Any] | None = None
    pipeline_invalid: str | None = None
    if not status.get("pipelineSpec") and parsed is not None:
        ref = parsed.spec.pipeline_ref.name
        pipeline = await kube.get_custom(PIPELINE_PLURAL, namespace, ref)
        if pipeline:
            try:
                pipeline_spec = parse_spec(PipelineSpec, pipeline.get("spec"))
            except InvalidSpec as e:
                pipeline_invalid = e.message
    workspace_found = True
    if status.get("phase") in (None, "Pending") and parsed is not None:
        claim = parsed.spec.workspace.claim_name
        workspace_found = await kube.read_pvc(namespace, claim) is not None

    # A pod that never started has no termination message (an earlier attempt's would mislead).
    needed = [n for n in termination_messages_needed(run, jobs) if n not in start_failures]
    messages = await termination_messages(kube, namespace, needed, uids, f"run {namespace}/{name}")
    # The app's log of each newly failed step, kept before the plan accounts for the failure
    # (so before its Job is deleted): core/runtime/applogs.py.
    failed_now = set(needed)
    await applogs.keep_failed(
        kube,
        run,
        [j for j in jobs if j.name in failed_now],
        f"run {namespace}/{name}",
        messages,
        parsed.snapshot.steps if parsed is not None and parsed.snapshot is not None else (),
    )

    # The warm steps' app pools (pools.py): made while the run may still send them items; the
    # run starts only once they are.
    uid = meta.get("uid") or ""
    pool_objects = _pool_objects(meta, parsed, pipeline_spec)
    pool_problem: str | None = None
    stage_before = stage_of(status)
    checked = runtime.POOLS_MADE.get(uid)
    if (
        pool_objects
        and pools.lives_in(stage_before)
        and (checked is None or time.monotonic() - checked >= pools.CHECK_SECONDS)
    ):
        pool_problem = await pools.ensure(kube, pool_objects, uid)
        if pool_problem is None:
            runtime.POOLS_MADE[uid] = time.monotonic()
            runtime.POOLS_REMOVED.discard(uid)
        elif stage_before not in (None, "Pending"):  # (a pending run waits on a condition)
            post_event(run, "Warning", "AppPoolNotMade", pool_problem)

    now = ctx.now or datetime.now(UTC)
    if parsed is None:
        assert invalid is not None
        plan = plan_invalid_run(run, invalid, jobs, now)
    else:
        # Pure, but ~50 ms at 10,000 items: off the event loop, so watch streams keep flowing.
        plan = await asyncio.to_thread(
            plan_run,
            parsed,
            pipeline_spec,
            jobs,
            now,
            operator_image=ctx.operator_image,
            termination_messages=messages,
            workspace_found=workspace_found,
            pipeline=pipeline,
            siblings=siblings,
            pipeline_invalid=pipeline_invalid,
            records=ctx.records,
            monitors=ctx.monitors,
            record_runs=record_runs()
            if record_runs is not None and status.get("phase") == AWAITING_REVIEW
            else None,
            pool_problem=pool_problem,
            hold_starts=ctx.hold_starts,
        )
    if plan.notifications:
        # Queued in the same status patch as the transition; sent beside the loop (notifications.py).
        queued = outbox.queue(
            status.get("notifications"),
            plan.notifications,
            outbox.parse_targets(plan.status.get("pipelineSpec") or (pipeline or {}).get("spec")),
            run_uid=meta.get("uid") or "",
            phase=plan.phase,
            now=now,
        )
        if queued is not None:
            plan.status["notifications"] = plan.status_patch["notifications"] = queued
    if parsed is not None and plan.phase not in TERMINAL_PHASES:
        # The image each step's app ran from, once per step, from a pod of it (images.py).
        reads = images.reads_needed(
            status.get("appImages"),
            parsed.snapshot or pipeline_spec,
            parsed.spec.pipeline_ref.name,
            jobs,
            meta.get("uid") or "",
            run=name,
        )
        if reads:
            done = plan.item_states is not None and all(s.phase.terminal for s in plan.item_states)
            reads = images.due(
                reads, runtime.IMAGE_LISTS.setdefault(uid, {}), time.monotonic(), last_chance=done
            )
        found = await images.read_app_images(kube, namespace, reads, f"run {namespace}/{name}")
        if (app_images := images.merged(status.get("appImages"), found)) is not None:
            plan.status["appImages"] = plan.status_patch["appImages"] = app_images
    result = PassResult(
        requeue_after=plan.requeue_after, plan=plan, run={**run, "status": plan.status}, latest=run
    )
    if parsed is not None:
        result.bounds = run_bounds(parsed.spec, parsed.snapshot or pipeline_spec)

    # 1. Create (409 = it exists: fine), at most MAX_CREATES_PER_PASS now, none that this loop
    # just created and the index does not show yet (expectations.py).
    skip = recent.pending(j.name for j in jobs) if recent is not None else set()
    if deletes is not None:
        skip |= deletes.pending()  # a Job still being deleted is not created again yet
    wanted = [b for b in plan.create if b["metadata"]["name"] not in skip]
    result.requeue_after = sooner(
        result.requeue_after,
        await apply_creates(
            kube,
            run,
            wanted,
            plan.create_config_maps,
            refusals,
            f"run {namespace}/{name}",
            post_event,
            recent,
        ),
    )

    # 2. The status, only if changed, only onto the version just read; progress alone waits.
    # The run leaves the stages of its app pools: they go first, so that no ended run holds an
    # app whatever happens after (a pass that then loses its patch only removes them again).
    if pool_objects and not pools.lives_in(stage_of(plan.status)) and uid not in runtime.POOLS_REMOVED:
        await pools.remove(kube, pool_objects, uid)
        runtime.POOLS_REMOVED.add(uid)
        runtime.POOLS_MADE.pop(uid, None)
    if plan.status_patch and ctx.progress_wait > 0 and progress_only(plan, status):
        wait = ctx.progress_wait
        result.requeue_after = wait if result.requeue_after is None else min(result.requeue_after, wait)
        return result
    if plan.status_patch:
        patched = await patch_status(kube, RUN_PLURAL, run, plan.status_patch)
        if patched.conflict or patched.gone:
            # Changed meanwhile (or gone): nothing deleted, nothing lost; read and plan again.
            return PassResult(requeue_after=0.0, done=patched.gone, gone=patched.gone)
        result.latest = patched.obj
        result.patched = True
        if "notifications" in plan.status_patch:
            runtime.NOTIFY_WAKERS.wake(runtime.run_key(namespace, name))

    # 3. Delete only what the status now accounts for: beside the loop, or before returning (a
    # pass on its own, or the pass that ends the run, which awaits every delete still going).
    if plan.delete:
        own = deletes is None
        if deletes is None:
            deletes = BackgroundDeletes(
                lambda n, u=None: _delete_job(kube, namespace, n, u), label=f"run {namespace}/{name}: "
            )
        deletes.submit(plan.delete, uids)
        if own or plan.phase in TERMINAL_PHASES:
            await deletes.drain()
            if deletes.take_failures():
                result.requeue_after = min(result.requeue_after or 10.0, 10.0)

    await delete_config_maps(
        kube, namespace, plan.delete_config_maps, meta.get("uid") or "", f"run {namespace}/{name}"
    )

    # 4. Events, logs and metrics.
    if plan.phase != status.get("phase"):
        cond: dict[str, Any] = next(
            (c for c in plan.status.get("conditions") or () if c.get("type") == "Succeeded"), {}
        )
        log.info(
            "run %s/%s: %s -> %s (%s: %s)",
            namespace,
            name,
            status.get("phase") or "new",
            plan.phase,
            cond.get("reason"),
            cond.get("message"),
        )
    for event in plan.events:
        post_event(run, event.type, event.reason, event.message)
    for notice in plan.conflict_notices:
        _post_conflict_notice(run, notice, post_event)
    _record_metrics(run, status, plan)

    # 5. The run just ended: sweep the Jobs the index may not show yet (e.g. created by a pass
    # that then lost a status conflict), since its loop stops now. Same rule as the planner's.
    if plan.phase in TERMINAL_PHASES and status.get("phase") not in TERMINAL_PHASES:
        await _sweep(kube, run, plan, now, ctx.operator_image)

    # 6. TTL.
    if plan.delete_run:
        await kube.delete_custom(RUN_PLURAL, namespace, name, uid=meta.get("uid"))
        log.info("run %s/%s: deleted (ttlSecondsAfterFinished)", namespace, name)
        result.done = result.gone = True
    elif plan.phase in TERMINAL_PHASES and (spec.get("ttlSecondsAfterFinished") is None or parsed is None):
        result.done = True  # (a TTL in a spec that does not parse is not enforced)
    return result


def _pool_objects(
    meta: Mapping[str, Any], parsed: Run | None, pipeline_spec: PipelineSpec | None
) -> list[dict[str, Any]]:
    """The app pools of the run's warm steps (pools.py), from its snapshot once it started."""
    if parsed is None:
        return []
    spec = parsed.snapshot or pipeline_spec
    if not pools.warm_steps(spec):
        return []
    return pools.run_pools(RunContext.from_run(meta, parsed.spec), spec)


def _post_conflict_notice(run: Mapping[str, Any], notice: C.Notice, post_event: EventPoster) -> None:
    """Tell both projects of a conflict: a Warning Event `Conflict` on the other party's run and
    on its Project, and on this run's Project (this run's own Event is its row's)."""
    own = (run.get("metadata") or {}).get("namespace") or ""
    other_run = {
        "apiVersion": API_VERSION,
        "kind": "PipelineRun",
        "metadata": {"name": notice.run, "namespace": notice.namespace},
    }
    post_event(other_run, "Warning", C.EV_CONFLICT, notice.message)
    for project in sorted({notice.namespace, own}):
        ref = {"apiVersion": API_VERSION, "kind": "Project", "metadata": {"name": project}}
        post_event(ref, "Warning", C.EV_CONFLICT, notice.message)


async def _sweep(
    kube: Kube, run: Mapping[str, Any], plan: RunPlan, now: datetime, operator_image: str
) -> None:
    meta = run.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    try:
        bodies = await kube.list_jobs(namespace, {L.MANAGED_BY: L.MANAGER, L.RUN: L.label_value(name)})
        fresh = [j for j in map(ObservedJob.from_job, bodies) if j is not None and j.name not in plan.delete]
        if not fresh:
            return
        ended = {**run, "status": plan.status}
        try:
            sweep = plan_run(parse_run(ended), None, fresh, now, operator_image=operator_image)
        except InvalidSpec as e:
            sweep = plan_invalid_run(ended, e, fresh, now)
        uids = {j.name: j.uid for j in fresh}
        for job_name in sweep.delete:
            await _delete_job(kube, namespace, job_name, uids.get(job_name))
    except Exception as e:  # noqa: BLE001 - housekeeping only; GC removes them with the run
        log.warning("run %s/%s: sweeping Jobs after the end: %s", namespace, name, e)


async def _delete_job(kube: Kube, namespace: str, name: str, uid: str | None) -> Any:
    """Delete the Job `name`, only the object of `uid` when known (a precondition)."""
    return await (kube.delete_job(namespace, name, uid=uid) if uid else kube.delete_job(namespace, name))


def _record_metrics(run: Mapping[str, Any], old_status: Mapping[str, Any], plan: RunPlan) -> None:
    pipeline = ((run.get("spec") or {}).get("pipelineRef") or {}).get("name", "")
    if plan.phase in TERMINAL_PHASES and old_status.get("phase") not in TERMINAL_PHASES:
        metrics.run_finished(plan.phase)
    if "failures" in plan.status_patch:
        metrics.item_failures(
            pipeline, metrics.new_failures(old_status.get("failures"), plan.status.get("failures"))
        )


def _in_flight(plan: RunPlan | None) -> int | None:
    if plan is None or plan.item_states is None:
        return None
    return sum(1 for s in plan.item_states if s.phase is ItemPhase.RUNNING)


def run_ref(namespace: str, name: str, uid: str | None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
    }


# -- kopf handlers -----------------------------------------------------------------------------


def _needs_loop(spec: Any, status: Any, **_: Any) -> bool:
    return needs_loop(spec, status)


MONITORS_INDEX = "monitors_by_namespace"  # kopf passes an index by its function's name


@kopf.index(API_GROUP, VERSION, MONITOR_PLURAL)
async def monitors_by_namespace(
    name: str, namespace: str | None, spec: Any, status: Any, **_: Any
) -> dict[str, MonitorView]:
    """namespace -> what the choice among a step's alternatives reads of each Monitor there
    (its target app, health and activities' reliability)."""
    return {namespace or "": MonitorView.from_monitor(name, dict(spec or {}), dict(status or {}))}


# kopf passes the index `run_jobs` by name, which its DaemonFn protocol cannot list.
@kopf.daemon(API_GROUP, VERSION, RUN_PLURAL, id="run-loop", when=_needs_loop)  # type: ignore[arg-type]
async def run_loop(
    name: str,
    namespace: str | None,
    uid: str,
    spec: Any,
    stopped: Any,
    logger: kopf.Logger,
    run_jobs: kopf.Index,
    **kwargs: Any,
) -> None:
    """The run's reconcile loop (see the module docstring)."""
    projects: kopf.Index = kwargs[PROJECTS_INDEX]  # the project of the run's namespace, if any
    monitors: kopf.Index = kwargs[MONITORS_INDEX]  # the namespace's Monitors (alternatives)
    run_records: kopf.Index = kwargs[RUN_RECORDS_INDEX]  # runs naming records (conflicts)

    def record_runs() -> dict[str, list[dict[str, Any]]]:
        # Copied on the event loop (kopf updates the index there; the planner runs in a thread).
        return {ns: [dict(e) for e in run_records[ns]] for ns in run_records}

    assert namespace is not None  # a namespaced resource: kopf's None is for cluster-scoped ones
    key = runtime.run_key(namespace, name)
    cfg = runtime.config()
    pipeline_name = (spec.get("pipelineRef") or {}).get("name") or ""
    waker = runtime.RUN_WAKERS.register(key, pipeline=pipeline_name)
    # Pods that cannot start make no Job event: looked at beside the loop (core/runtime/podstart.py).
    pods = PodStartWatch(
        namespace, {L.RUN: L.label_value(name)}, run_ref(namespace, name, uid), wake=waker.wake
    )
    recent = RecentCreates()
    refusals = Refusals()
    deletes = BackgroundDeletes(
        lambda job, job_uid=None: _delete_job(runtime.kube(), namespace, job, job_uid),
        label=f"run {namespace}/{name}: ",
    )
    specs = ParseCache(size=2)  # the run's spec, parsed once per generation
    known: dict[str, Any] | None = None  # the run as the last pass left it
    last_patch = float("-inf")  # time.monotonic() of this loop's last status patch

    async def one_pass(refresh: bool) -> Next:
        nonlocal known, last_patch
        start_from, known = (None if refresh else known), None  # None again if this pass raises
        wait = max(0.0, last_patch + PROGRESS_INTERVAL_SECONDS - time.monotonic())
        jobs = list(run_jobs.get(key, ()))
        pods.prune(jobs)
        result = await reconcile_run(
            runtime.kube(),
            namespace,
            name,
            uid,
            jobs,
            operator_image=cfg.operator_image,
            recent=recent,
            known=start_from,
            deletes=deletes,
            progress_wait=wait,
            refusals=refusals,
            start_failures=pods.failures,
            wake=lambda other: runtime.RUN_WAKERS.wake(runtime.run_key(namespace, other), refresh=True),
            specs=specs,
            records=record_target(list(projects.get(namespace, ()))),
            monitors=tuple(monitors.get(namespace, ())),
            record_runs=record_runs,
            hold_starts=pods.waiting_for_room > 0,
        )
        known = result.latest
        ended = result.gone or result.done
        report_needs(namespace, pipeline_name, name, None if ended else (result.run or {}).get("status"))
        if result.plan is not None:
            waker.tags["pending"] = result.plan.phase == "Pending"  # its Pipeline's readiness wakes it
        if result.patched:
            last_patch = time.monotonic()
        if result.run is not None and not result.gone and triggers.pending_templates(result.run):
            try:
                await analyses.trigger_analyses(runtime.kube(), result.run)
            except Exception as e:  # noqa: BLE001 - decided again at the next pass
                logger.warning(f"triggering analyses: {type(e).__name__}: {e}")
                result.requeue_after = min(result.requeue_after or 5.0, 5.0)
        in_flight = _in_flight(result.plan)
        if in_flight is not None:
            metrics.set_in_flight(key, in_flight)
        # Jobs in flight, or just created (the index shows them at the next pass).
        active = (
            result.run is not None
            and not result.done
            and (
                bool(in_flight)
                or bool(result.plan and result.plan.create)
                or any(not j.finished for j in jobs)
            )
        )
        if active and result.bounds is not None:
            # Beside the loop, not in it: a slow list must not delay the next pass.
            pods.maybe_look(runtime.kube(), jobs, result.bounds)
        if result.gone:
            return Next(stop=True)
        if result.done:
            # Over: kopf stops this daemon once it sees the final status (the filter no longer
            # matches). Returning on our own would keep kopf from ever starting it again in this
            # process (e.g. when a TTL is added later), so wait for that stop instead.
            metrics.set_in_flight(key, None)
            return Next(timeout=None)
        timeout = resync_timeout(result.requeue_after, cfg.resync_seconds)
        if active:
            # Pods that cannot start produce no Job events: look again when the next could be due.
            timeout = min(timeout, max(pods.seconds_left(), 0.5))
        if deletes.take_failures():
            timeout = min(timeout, DELETE_RETRY_SECONDS)
        return Next(timeout=timeout)

    try:
        await reconcile_forever(
            waker,
            stopped,
            logger,
            kind="run",
            ref=run_ref(namespace, name, uid),
            one_pass=one_pass,
            debounce=RUN_DEBOUNCE_SECONDS,
        )
    finally:
        deletes.cancel()  # a new loop (or process) plans them again from the status
        pods.cancel()
        runtime.RUN_WAKERS.unregister(waker)
        metrics.set_in_flight(key, None)
        report_needs(namespace, pipeline_name, name, None)
        runtime.forget_run(uid)


def report_needs(namespace: str, pipeline: str, run: str, status: Mapping[str, Any] | None) -> None:
    """Tell the Pipeline's loop what this run still needs of its autoscaled steps (None: nothing,
    the run ended or its loop stopped); wake that loop when the replicas wanted change."""
    status = status or {}
    bounds = scaling.snapshot_bounds((status.get("pipelineSpec") or {}).get("steps") or ())
    needs = {}
    if bounds and not is_terminal(status):
        needs = {k: v for k, v in scaling.step_needs(status.get("steps") or ()).items() if k in bounds}
    key = runtime.pipeline_key(namespace, pipeline)
    if runtime.BACKLOGS.report(key, run, needs, bounds):
        runtime.PIPELINE_WAKERS.wake(key)


@kopf.on.event(API_GROUP, VERSION, RUN_PLURAL)
async def run_event(
    name: str, namespace: str | None, meta: Any, status: Any, type: str | None, **_: Any
) -> None:
    """Wake the run's loop when its spec changed (e.g. `spec.status: Cancelled`). Our own status
    patches do not change the generation, so they do not wake it."""
    assert namespace is not None  # a namespaced resource: kopf's None is for cluster-scoped ones
    if type != "DELETED" and spec_changed(meta, status):
        runtime.RUN_WAKERS.wake(runtime.run_key(namespace, name), refresh=True)
