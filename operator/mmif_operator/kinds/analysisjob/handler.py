"""AnalysisJob: one reconcile loop (a kopf daemon) per AnalysisJob that is not over, the index
of its Jobs, and the triggered analyses a run creates.

A pass (`reconcile_analysis`): read the AnalysisJob and its source run, take its Jobs from the
index and the termination messages of the failed ones, plan (kinds/analysisjob/planning.py), then as for
runs: create Jobs, patch the status conditional on the resourceVersion read, delete the Jobs the
status accounts for, post Events. Wake-ups: its Jobs, its source run's status (every change:
items succeeding is what a Live analysis waits for), and the plan's timer.

Triggered analyses (`trigger_analyses`, called by the run's loop once the run holds its Pipeline
snapshot): for each analysis of the Pipeline not yet decided, a SubjectAccessReview for the run's
requester, then the AnalysisJob (owned by the run) or an `AnalysisNotAuthorized` condition and
Event on the run; an AnalysisJob of that name the run does not own is left alone and recorded
`NameConflict` (core/ownership.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import kopf

from mmif_operator.core import labels as L
from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import Kube, KubeError, NameConflict
from mmif_operator.core.model import API_VERSION, VERSION
from mmif_operator.core.observed import ObservedJob
from mmif_operator.core.podstart import Bounds, StartFailure, analysis_bounds
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.runtime.apply import (
    apply_creates,
    patch_status,
    planned_jobs,
    sooner,
    termination_messages,
)
from mmif_operator.core.runtime.jobs import JobSummaries
from mmif_operator.core.runtime.loop import Next, Refusals, bounded, reconcile_forever, resync_timeout
from mmif_operator.core.runtime.podstart import PodStartWatch
from mmif_operator.core.runtime.runner_inputs import delete_config_maps
from mmif_operator.core.specs import API_GROUP, InvalidSpec, parse_spec
from mmif_operator.kinds.analysisjob import triggers
from mmif_operator.kinds.analysisjob.model import PLURAL as ANALYSIS_PLURAL
from mmif_operator.kinds.analysisjob.model import AnalysisJobSpec
from mmif_operator.kinds.analysisjob.planning import (
    TERMINAL_PHASES,
    AnalysisPlan,
    needs_termination_messages,
    parse_analysis,
    parse_source_run,
    plan_analysis,
    plan_invalid_analysis,
)
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL

log = logging.getLogger(__name__)
EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
_ANALYSIS_JOBS: dict[str, Any] = {
    L.MANAGED_BY: L.MANAGER,
    L.ANALYSIS: kopf.PRESENT,
    L.COMPONENT: kopf.PRESENT,
}


def analysis_key(namespace: str, name: str) -> tuple[str, str]:
    return (namespace, L.label_value(name))


@dataclass
class AnalysisPass:
    done: bool = False
    gone: bool = False
    requeue_after: float | None = None
    plan: AnalysisPlan | None = None


async def reconcile_analysis(
    kube: Kube,
    namespace: str,
    name: str,
    uid: str | None,
    observed: Iterable[ObservedJob],
    *,
    operator_image: str,
    now: datetime | None = None,
    post_event: EventPoster = k8s_events.post,
    refusals: Refusals | None = None,
    start_failures: Mapping[str, StartFailure] | None = None,
) -> AnalysisPass:
    """One pass over one AnalysisJob (see the module docstring); `refusals` as for runs
    (kinds/pipelinerun/handler.reconcile_run); `start_failures`: Jobs whose pod cannot start
    (core/runtime/podstart.py), planned as failed with that reason and message."""
    aj = await kube.get_custom(ANALYSIS_PLURAL, namespace, name)
    meta = (aj or {}).get("metadata") or {}
    if aj is None or (uid and meta.get("uid") != uid) or meta.get("deletionTimestamp"):
        return AnalysisPass(done=True, gone=True)
    now = now or datetime.now(UTC)
    try:
        analysis = parse_analysis(aj)  # parsed where it enters
    except InvalidSpec as e:
        log.warning("analysis %s/%s: the spec does not parse: %s", namespace, name, e.message)
        analysis, invalid = None, e
    run = None
    if analysis is not None:
        body = await kube.get_custom(RUN_PLURAL, namespace, analysis.spec.run_ref.name)
        try:
            run = parse_source_run(body) if body else None
        except InvalidSpec as e:
            analysis, invalid = None, e
    refusals = refusals if refusals is not None else Refusals()
    start_failures = start_failures or {}
    own_uid = meta.get("uid") or ""
    jobs = [j for j in planned_jobs(observed, refusals, start_failures, own_uid) if j.owned_by(own_uid)]
    uids = {j.name: j.uid for j in jobs if j.uid}
    # its pod never ran (start failures): no termination message to read
    needed = [n for n in needs_termination_messages(jobs) if n not in start_failures]
    messages = await termination_messages(kube, namespace, needed, uids, f"analysis {namespace}/{name}")
    if analysis is None:
        plan = plan_invalid_analysis(aj, invalid, now)
    else:
        plan = plan_analysis(
            analysis, run, jobs, now, operator_image=operator_image, termination_messages=messages
        )
    result = AnalysisPass(requeue_after=plan.requeue_after, plan=plan, done=plan.done)
    result.requeue_after = sooner(
        result.requeue_after,
        await apply_creates(
            kube,
            aj,
            plan.create,
            plan.create_config_maps,
            refusals,
            f"analysis {namespace}/{name}",
            post_event,
        ),
    )
    if plan.status_patch:
        patched = await patch_status(kube, ANALYSIS_PLURAL, aj, plan.status_patch)
        if patched.conflict or patched.gone:
            return AnalysisPass(requeue_after=0.0, done=patched.gone, gone=patched.gone)
    await delete_config_maps(
        kube, namespace, plan.delete_config_maps, own_uid, f"analysis {namespace}/{name}"
    )
    outcomes = await bounded(
        [partial(kube.delete_job, namespace, n, uid=uids.get(n) or None) for n in plan.delete]
    )
    for job_name, outcome in zip(plan.delete, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            log.warning("analysis %s/%s: deleting Job %s: %s", namespace, name, job_name, outcome)
            result.requeue_after = min(result.requeue_after or 10.0, 10.0)
    if plan.phase != (aj.get("status") or {}).get("phase"):
        log.info(
            "analysis %s/%s: %s -> %s",
            namespace,
            name,
            (aj.get("status") or {}).get("phase") or "new",
            plan.phase,
        )
    for event in plan.events:
        post_event(aj, event.type, event.reason, event.message)
    return result


# -- triggered analyses -----------------------------------------------------------------------


async def trigger_analyses(
    kube: Kube,
    run: Mapping[str, Any],
    *,
    now: datetime | None = None,
    post_event: EventPoster = k8s_events.post,
) -> list[triggers.Decision]:
    """Decide every analysis of the run's Pipeline snapshot not decided yet (see module doc)."""
    templates = triggers.pending_templates(run)
    if not templates:
        return []
    meta = run.get("metadata") or {}
    namespace = meta.get("namespace", "")
    requester = (run.get("spec") or {}).get("requester")
    review = None
    if requester:
        review = await kube.subject_access_review(triggers.access_review(requester, namespace))
    decisions: list[triggers.Decision] = []
    for template in templates:
        decision = triggers.decide(template, run, review)
        if decision.allowed:
            try:
                await kube.create_custom(ANALYSIS_PLURAL, triggers.analysis_job(run, template))
            except InvalidSpec as e:  # the snapshot's template, stored before a schema change
                decision = decision.not_created(
                    triggers.CREATE_FAILED, f"the analysis does not parse: {e.message}"
                )
            except NameConflict as e:
                # Someone's AnalysisJob holds the name: never taken for the run's, left alone.
                decision = decision.not_created(triggers.NAME_CONFLICT, e.message)
            except KubeError as e:
                if not e.invalid:
                    raise  # e.g. an earlier same-named run's AnalysisJob still going: later
                decision = decision.not_created(
                    triggers.CREATE_FAILED,
                    f"the API server refused AnalysisJob {decision.analysis_job}: {e.message}",
                )
        state = decision.recorded_state
        if state == triggers.CREATED:
            post_event(
                run,
                "Normal",
                "AnalysisCreated",
                f"AnalysisJob {decision.analysis_job} created for {(requester or {}).get('username')}",
            )
        else:
            reason = {triggers.NOT_AUTHORIZED: triggers.R_NOT_AUTHORIZED}.get(state, state)
            post_event(run, "Warning", reason, f"analysis {decision.name}: {decision.message}")
        decisions.append(decision)
    patch = triggers.status_patch(run, decisions, now or datetime.now(UTC))
    await kube.patch_status(RUN_PLURAL, namespace, meta.get("name", ""), patch)
    log.info(
        "run %s/%s: analyses %s",
        namespace,
        meta.get("name"),
        ", ".join(f"{d.name}={d.recorded_state}" for d in decisions),
    )
    return decisions


# -- kopf handlers ----------------------------------------------------------------------------


def analysis_index_entry(namespace: str | None, body: Any) -> dict[tuple[str, str], ObservedJob] | None:
    summary = ObservedJob.from_job(body)
    if summary is None or not summary.analysis or not namespace:
        return None
    return {(namespace, summary.analysis): summary}


@kopf.index("batch", "v1", "jobs", labels=_ANALYSIS_JOBS)
async def analysis_jobs(
    namespace: str | None, body: Any, **_: Any
) -> dict[tuple[str, str], ObservedJob] | None:
    """The Jobs of every AnalysisJob, by (namespace, `mmif.dev/analysis` label)."""
    return analysis_index_entry(namespace, body)


ANALYSIS_JOB_SUMMARIES = JobSummaries()


@kopf.on.event("batch", "v1", "jobs", labels=_ANALYSIS_JOBS)
async def analysis_job_event(
    namespace: str | None, labels: Any, body: Any, type: str | None, **_: Any
) -> None:
    """An AnalysisJob's Job finished or vanished: wake its loop (jobs.py, `changes_plan`)."""
    analysis = labels.get(L.ANALYSIS)
    if ANALYSIS_JOB_SUMMARIES.update(body, deleted=type == "DELETED") and namespace and analysis:
        runtime.ANALYSIS_WAKERS.wake((namespace, analysis))


@kopf.on.event(API_GROUP, VERSION, RUN_PLURAL)
async def source_run_event(name: str, namespace: str | None, type: str | None, **_: Any) -> None:
    """A run changed (its items' states live in its status): wake the analyses reading it."""
    runtime.ANALYSIS_WAKERS.wake_where(lambda w: w.tags.get("run") == (namespace, name))


def _not_over(status: Any, **_: Any) -> bool:
    return (status or {}).get("phase") not in TERMINAL_PHASES


def _ref(namespace: str, name: str, uid: str | None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisJob",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
    }


# kopf passes the index `analysis_jobs` by name, which its DaemonFn protocol cannot list.
@kopf.daemon(API_GROUP, VERSION, ANALYSIS_PLURAL, id="analysis-loop", when=_not_over)  # type: ignore[arg-type]
async def analysis_loop(
    name: str,
    namespace: str | None,
    uid: str,
    spec: Any,
    stopped: Any,
    logger: kopf.Logger,
    analysis_jobs: kopf.Index,
    **_: Any,
) -> None:
    assert namespace is not None  # a namespaced resource: kopf's None is for cluster-scoped ones
    key = analysis_key(namespace, name)
    cfg = runtime.config()
    waker = runtime.ANALYSIS_WAKERS.register(key, run=(namespace, (spec.get("runRef") or {}).get("name")))
    refusals = Refusals()
    # Pods that cannot start make no Job event: looked at beside the loop (core/runtime/podstart.py).
    pods = PodStartWatch(
        namespace,
        {L.ANALYSIS: L.label_value(name)},
        _ref(namespace, name, uid),
        wake=waker.wake,
        waiting_event="PodWaiting",
    )
    try:
        bounds: Bounds | None = analysis_bounds(parse_spec(AnalysisJobSpec, spec).app)  # immutable
    except InvalidSpec:
        bounds = None  # (the pass says why)

    async def one_pass(_refresh: bool) -> Next:
        jobs = list(analysis_jobs.get(key, ()))
        pods.prune(jobs)
        result = await reconcile_analysis(
            runtime.kube(),
            namespace,
            name,
            uid,
            jobs,
            operator_image=cfg.operator_image,
            refusals=refusals,
            start_failures=pods.failures,
        )
        if result.gone:
            return Next(stop=True)
        if result.done:
            return Next(timeout=None)  # kopf stops the daemon once it sees the final status
        timeout = resync_timeout(result.requeue_after, cfg.resync_seconds)
        plan = result.plan
        busy = (
            any(not j.finished for j in jobs)
            or (plan is not None and plan.create)
            or (plan is not None and plan.status.get("itemsRunning"))
        )
        if busy and bounds is not None:
            pods.maybe_look(runtime.kube(), jobs, bounds)
            timeout = min(timeout, max(pods.seconds_left(), 0.5))
        return Next(timeout=timeout)

    try:
        await reconcile_forever(
            waker, stopped, logger, kind="analysis", ref=_ref(namespace, name, uid), one_pass=one_pass
        )
    finally:
        pods.cancel()
        runtime.ANALYSIS_WAKERS.unregister(waker)
