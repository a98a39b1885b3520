"""The run's child Jobs: an in-memory index of small summaries, and wake-ups of the run's loop.

Neither handler writes anything on the Jobs (no finalizer, no annotation): `@kopf.index` and
`@kopf.on.event` are read-only. The watch itself is narrowed server-side to
`app.kubernetes.io/managed-by=mmif-operator` (settings.py).
"""
from __future__ import annotations

from typing import Any

import kopf

from .. import metrics
from ..builders import labels as L
from ..reconcile.observed import JobKind, ObservedJob
from .runtime import RUN_WAKERS

MANAGED = {L.MANAGED_BY: L.MANAGER}
_RUN_COMPONENTS = {L.COMPONENT: kopf.PRESENT, L.RUN: kopf.PRESENT}


def job_index_entry(namespace: str | None, body: Any) -> dict[tuple[str, str], ObservedJob] | None:
    """`{(namespace, run label): summary}` of one Job, or None when it is not a run's Job."""
    summary = ObservedJob.from_job(body)
    if summary is None or not summary.run or not namespace:
        return None
    return {(namespace, summary.run): summary}


@kopf.index("batch", "v1", "jobs", labels={**MANAGED, **_RUN_COMPONENTS})
def run_jobs(namespace: str | None, body: Any, **_: Any) -> dict[tuple[str, str], ObservedJob] | None:
    """The Jobs of every run, by (namespace, `mmif.dev/run` label): `ObservedJob`s only."""
    return job_index_entry(namespace, body)


@kopf.on.event("batch", "v1", "jobs", labels={**MANAGED, **_RUN_COMPONENTS})
def job_event(namespace: str | None, labels: Any, body: Any, type: str | None, **_: Any) -> None:
    """A run's Job changed (or was listed): wake the run's loop; count finished steps."""
    run = labels.get(L.RUN)
    if namespace and run:
        RUN_WAKERS.wake((namespace, run))
    if labels.get(L.COMPONENT) == JobKind.STEP.value and type != "DELETED":
        metrics.observe_step_job(body, pipeline=labels.get(L.PIPELINE, ""), step=labels.get(L.STEP, ""))
