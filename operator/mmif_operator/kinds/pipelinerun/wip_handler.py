"""A finished run's work in progress (`spec.workInProgress`): one kopf timer per run that asks
for something not done yet (kinds/pipelinerun/wip.py decides; this applies).

Beside the run loop, never in it: the loop's item-step path is untouched, and a run whose loop
is over (terminal, no TTL) is still served. A pass: read the Job of the wanted action's name;
list the namespace's AnalysisJobs and runs only when the plan needs the descendants; then, in
the usual order, create the Job (409 with our Job: success), patch the status (conditional on
the resourceVersion read: a conflict is planned again at the next tick), delete the finished
Job. Restart-safe: everything is read again at each tick, the Job's name is deterministic.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from mmif_operator.core import names
from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import NameConflict
from mmif_operator.core.model import VERSION
from mmif_operator.core.runtime import state as runtime
from mmif_operator.core.runtime.apply import patch_status
from mmif_operator.core.specs import API_GROUP
from mmif_operator.kinds.analysisjob.model import PLURAL as ANALYSIS_PLURAL
from mmif_operator.kinds.pipelinerun import wip
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.kinds.pipelinerun.model import WorkInProgress
from mmif_operator.kinds.project.planning import PROJECTS_INDEX, record_target

log = logging.getLogger(__name__)

# How often a run asking for a WIP action is looked at (refusals are looked at again as often:
# a descendant deleted, the run finished). One Job read per tick; the namespace's lists only
# until the Job exists.
INTERVAL_SECONDS = 3.0


def _wants(spec: Any, status: Any, meta: Any, **_: Any) -> bool:
    return wip.wants_pass(spec, status, meta)


async def wip_pass(body: dict[str, Any], projects: kopf.Index) -> None:
    kube = runtime.kube()
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    if meta.get("deletionTimestamp"):
        return
    want = wip.wanted(body.get("spec"))
    job = None
    if want is not WorkInProgress.KEEP:
        job = await kube.get("Job", namespace, names.wip_job_name(name, want.value))
    has_store = record_target(list(projects.get(namespace, ()))) is not None
    image = runtime.config().operator_image
    now = datetime.now(UTC)
    plan = wip.plan_wip(body, job=job, has_record_store=has_store, operator_image=image, now=now)
    if plan.needs_listing:
        analyses = await kube.list_custom(ANALYSIS_PLURAL, namespace, {})
        runs = await kube.list_custom(RUN_PLURAL, namespace, {})
        plan = wip.plan_wip(
            body, job=job, has_record_store=has_store, operator_image=image, now=now, listed=(analyses, runs)
        )
    if plan.create is not None:
        try:
            await kube.create(plan.create)
        except NameConflict:
            return  # someone else's Job of that name: the next tick says JobConflict
    if plan.conditions is not None:
        patched = await patch_status(kube, RUN_PLURAL, body, {"conditions": plan.conditions})
        if patched.conflict or patched.gone:
            return  # changed meanwhile: planned again at the next tick
    for type_, reason, message in plan.events:
        k8s_events.post(body, type_, reason, message)
        log.info("run %s/%s: work in progress: %s: %s", namespace, name, reason, message)
    if plan.delete_job is not None:
        uid = ((job or {}).get("metadata") or {}).get("uid")
        await kube.delete("Job", namespace, plan.delete_job, uid=uid)


@kopf.timer(API_GROUP, VERSION, RUN_PLURAL, id="run-wip", interval=INTERVAL_SECONDS, when=_wants)
async def run_wip(body: Any, **kwargs: Any) -> None:
    """Delete or archive a finished run's folder as `spec.workInProgress` asks (module docstring)."""
    await wip_pass(dict(body), kwargs[PROJECTS_INDEX])
