"""The run's child Jobs: an in-memory index of small summaries, and wake-ups of the run's loop.

Neither handler writes anything on the Jobs (no finalizer, no annotation): `@kopf.index` and
`@kopf.on.event` are read-only. The watch itself is narrowed server-side to
`app.kubernetes.io/managed-by=mmif-operator` (settings.py).

A Job changes about five times in its life (created, pod active, ready, finished, deleted); only
the changes the planner reads wake the loop (`changes_plan`: finished, or gone unfinished), so a
busy run makes passes for work, not for pod counts.

Both handlers are coroutines, as are all the operator's watch and index handlers: kopf runs a
plain function in its thread pool, which costs two thread hand-offs per Job event (about five per
Job) and wakes the loop's `asyncio.Event` from another thread, which asyncio does not support (the
waiting loop may notice only at its next event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mmif_operator import metrics
from mmif_operator.core import labels as L
from mmif_operator.core.observed import JobKind, ObservedJob, changes_plan
from mmif_operator.core.runtime.state import RUN_WAKERS

MANAGED = {L.MANAGED_BY: L.MANAGER}
_RUN_COMPONENTS = {L.COMPONENT: kopf.PRESENT, L.RUN: kopf.PRESENT}


def job_index_entry(namespace: str | None, body: Any) -> dict[tuple[str, str], ObservedJob] | None:
    """`{(namespace, run label): summary}` of one Job, or None when it is not a run's Job."""
    summary = ObservedJob.from_job(body)
    if summary is None or not summary.run or not namespace:
        return None
    return {(namespace, summary.run): summary}


@kopf.index("batch", "v1", "jobs", labels={**MANAGED, **_RUN_COMPONENTS})
async def run_jobs(namespace: str | None, body: Any, **_: Any) -> dict[tuple[str, str], ObservedJob] | None:
    """The Jobs of every run, by (namespace, `mmif.dev/run` label): `ObservedJob`s only."""
    return job_index_entry(namespace, body)


class JobSummaries:
    """The last summary seen of each Job (by uid), to tell which watch events change a plan."""

    def __init__(self) -> None:
        self._by_uid: dict[str, ObservedJob] = {}

    def update(self, body: Mapping[str, Any], deleted: bool) -> bool:
        """Record one event of a Job; True when it can change its owner's plan."""
        uid = (body.get("metadata") or {}).get("uid") or ""
        previous = self._by_uid.pop(uid, None)
        current = None if deleted else ObservedJob.from_job(body)
        if current is not None:
            self._by_uid[uid] = current
        return changes_plan(previous, current)

    def __len__(self) -> int:
        return len(self._by_uid)


RUN_JOB_SUMMARIES = JobSummaries()


@kopf.on.event("batch", "v1", "jobs", labels={**MANAGED, **_RUN_COMPONENTS})
async def job_event(namespace: str | None, labels: Any, body: Any, type: str | None, **_: Any) -> None:
    """A run's Job changed (or was listed): wake the run's loop if that matters to its plan;
    count finished steps."""
    run = labels.get(L.RUN)
    if RUN_JOB_SUMMARIES.update(body, deleted=type == "DELETED") and namespace and run:
        RUN_WAKERS.wake((namespace, run))
    if labels.get(L.COMPONENT) == JobKind.STEP.value and type != "DELETED":
        metrics.observe_step_job(body, pipeline=labels.get(L.PIPELINE, ""), step=labels.get(L.STEP, ""))
