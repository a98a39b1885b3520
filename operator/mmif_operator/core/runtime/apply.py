"""Applying a plan, the same way for a PipelineRun and an AnalysisJob.

A pass of either loop does, around its own planner: take the Jobs it observed plus the creates
it was refused (`Refusals`) and the pods that cannot start (podstart.py) -> `planned_jobs`; read
the termination messages the planner asks for -> `termination_messages`; after planning,
create what the Jobs read (ConfigMaps), then the Jobs, at most `MAX_CREATES_PER_PASS` ->
`apply_creates`; then patch the status onto the version the plan started from ->
`patch_status`. What is left differs and stays with each kind's handler: a run batches
progress-only patches, deletes beside its loop, sweeps and honours its TTL; an AnalysisJob
deletes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.core.observed import ObservedJob
from mmif_operator.core.podstart import StartFailure, apply_start_failures
from mmif_operator.core.runtime.expectations import RecentCreates
from mmif_operator.core.runtime.loop import MAX_CREATES_PER_PASS, Refusals, bounded, create_jobs
from mmif_operator.core.runtime.runner_inputs import create_config_maps

log = logging.getLogger(__name__)

EventPoster = Callable[[Mapping[str, Any], str, str, str], None]
#: after a create that failed for now (not refused for good), the next pass comes this soon
CREATE_RETRY_SECONDS = 10.0


def sooner(current: float | None, other: float | None) -> float | None:
    """The earlier of two requeue times (None: no requeue)."""
    if current is None:
        return other
    return current if other is None else min(current, other)


def planned_jobs(
    observed: Iterable[ObservedJob],
    refusals: Refusals,
    start_failures: Mapping[str, StartFailure],
    owner_uid: str,
) -> list[ObservedJob]:
    """What the planner sees: the observed Jobs, the creates refused for good (as failed Jobs),
    and the Jobs whose pod cannot start marked failed with that reason."""
    return apply_start_failures(refusals.merged(observed, owner_uid), start_failures)


async def termination_messages(
    kube: Kube, namespace: str, names: Iterable[str], uids: Mapping[str, str | None], what: str
) -> dict[str, Any]:
    """The termination messages of the Jobs `names` (bounded concurrency, each read bound to the
    uid of the Job of that name when known); a read that fails is logged and left out."""
    names = list(names)
    if not names:
        return {}
    results = await bounded([partial(_termination_message, kube, namespace, n, uids.get(n)) for n in names])
    messages: dict[str, Any] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("%s: reading the termination message of Job %s: %s", what, name, result)
        elif result:
            messages[name] = result
    return messages


async def _termination_message(kube: Kube, namespace: str, name: str, uid: str | None) -> str | None:
    if uid:  # only pods that Job controls
        return await kube.job_termination_message(namespace, name, uid=uid)
    return await kube.job_termination_message(namespace, name)


async def apply_creates(
    kube: Kube,
    owner: Mapping[str, Any],
    jobs: list[dict[str, Any]],
    config_maps: list[dict[str, Any]],
    refusals: Refusals,
    what: str,
    post_event: EventPoster,
    recent: RecentCreates | None = None,
) -> float | None:
    """Create the ConfigMaps the Jobs read, then (if they all exist) at most
    `MAX_CREATES_PER_PASS` of `jobs`. Returns when the next pass should come: at once when Jobs
    are left over or a create was refused for good (the planner fails their item or run), soon
    when a create failed for now; None when all went through."""
    creates = jobs[:MAX_CREATES_PER_PASS]
    requeue = 0.0 if len(jobs) > len(creates) else None
    if config_maps and not await create_config_maps(kube, config_maps, owner, what, post_event):
        # What the Jobs read comes first: without it they would wait for their volume.
        return sooner(requeue, CREATE_RETRY_SECONDS)
    if not creates:
        return requeue
    outcome = await create_jobs(kube, creates, owner, what, post_event)
    if recent is not None:
        recent.note(outcome.created)
    if refusals.add(outcome.refused):
        requeue = 0.0
    if outcome.failed:
        # The status still holds: a Job missing for an item in flight is created again.
        requeue = sooner(requeue, CREATE_RETRY_SECONDS)
    return requeue


@dataclass(frozen=True)
class Patched:
    """The outcome of `patch_status`: the object the API server returned, or why there is none."""

    obj: dict[str, Any] | None = None
    conflict: bool = False  # changed meanwhile: read it again and plan again
    gone: bool = False  # deleted meanwhile


async def patch_status(kube: Kube, plural: str, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> Patched:
    """Merge-patch the status of `obj`, only onto the resourceVersion the plan started from: a
    conflict or a deletion meanwhile loses nothing (nothing was deleted yet); the caller reads
    and plans again."""
    meta = obj.get("metadata") or {}
    try:
        result = await kube.patch_status(
            plural,
            meta.get("namespace") or "",
            meta.get("name") or "",
            dict(patch),
            resource_version=meta.get("resourceVersion"),
        )
    except KubeError as e:
        if e.conflict or e.not_found:
            return Patched(conflict=e.conflict, gone=e.not_found)
        raise
    return Patched(obj=result if isinstance(result, dict) and result.get("metadata") else None)
