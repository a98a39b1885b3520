"""A run's app pools: the warm Job-mode steps' apps, started once per run (`Step.warm`).

A Job-mode step starts a fresh app next to each item, and a CLAMS app loads its model before it
listens: seconds to minutes, paid again by every item. A warm step's app is started once for the
run instead, in `replicas` pods of a Deployment the run owns (so the run's volume, its resources
and its placement are the step's, as in Job mode), behind a Service only the run's own item pods
can reach (NetworkPolicy). The item pods then call it as they call a Service-mode app, and share a
pod with neighbouring steps whose apps also run outside it (shared_pods.py).

The pool lives while the run may still send it items: from Pending (made while the run waits,
so its start-up overlaps the prepare Job) through RunningItems; the run checks every
`CHECK_SECONDS` that it is still there (reads only) and makes again what is missing. It is removed before the status
patch that leaves those stages, so a run that ended never holds an app (a restart mid-way does
it again: deletes of what is gone are no-ops). The decisions are the pure functions here; the
two calls (`ensure`, `remove`) are what the run loop awaits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.core.kube.ops import KubeError, NameConflict
from mmif_operator.kinds.pipeline import children as apps
from mmif_operator.kinds.pipeline.app import StepMode
from mmif_operator.kinds.pipeline.model import PipelineSpec, Step
from mmif_operator.kinds.pipelinerun.model import RunStage

log = logging.getLogger(__name__)

#: The stages in which a run's pools exist: it may still send them items.
LIVES_IN = frozenset({RunStage.PENDING.value, RunStage.PREPARING.value, RunStage.RUNNING_ITEMS.value})
#: How often a running run checks that its pools are still there (one read per object), so a pool
#: deleted by hand is made again.
CHECK_SECONDS = 30.0
#: The kinds of a pool, in the order they are made (and removed in reverse).
POOL_KINDS = ("Deployment", "Service", "NetworkPolicy")


def is_warm(step: Step) -> bool:
    """A Job-mode step whose app the run starts once (its pool), not once per item."""
    return step.warm and step.mode is StepMode.JOB


def warm_steps(spec: PipelineSpec | None) -> list[Step]:
    return [s for s in spec.steps if is_warm(s)] if spec is not None else []


def lives_in(stage: str | None) -> bool:
    """Whether a run at `stage` keeps its pools (None: a run not seen yet, i.e. Pending)."""
    return stage is None or stage in LIVES_IN


def pool_url(run: str, namespace: str, step: Step) -> str:
    return f"http://{names.run_pool_name(run, step.name)}.{namespace}.svc:{step.port}"


class PoolOwner(Protocol):
    """What a pool needs of its run (a kinds/pipelinerun/children.RunContext)."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def pipeline(self) -> str: ...
    @property
    def claim_name(self) -> str: ...
    @property
    def mount_path(self) -> str: ...
    def owner_reference(self) -> dict[str, Any]: ...


def pool_objects(run: PoolOwner, step: Step) -> list[dict[str, Any]]:
    """The Deployment, Service and NetworkPolicy of the run's pool of `step` (`POOL_KINDS` order):
    `step.replicas` app pods mounting the run's volume read-only at the run's mount path (the
    paths in its MMIF resolve as in the item pods), reachable only from this run's item pods."""
    name = names.run_pool_name(run.name, step.name)
    selector = L.run_pool_selector(run.name, step.name)

    def meta() -> dict[str, Any]:
        return {
            "name": name,
            "namespace": run.namespace,
            "labels": L.run_pool_labels(run.name, run.pipeline, step.name),
            "ownerReferences": [run.owner_reference()],
        }

    return [
        apps.deployment_of(
            meta(),
            selector,
            step,
            claim_name=run.claim_name,
            mount_path=run.mount_path,
            replicas=step.replicas,
        ),
        apps.service_of(meta(), selector, step.port),
        apps.network_policy_of(meta(), selector, {"matchLabels": L.run_step_pods(run.name)}, step.port),
    ]


def run_pools(run: PoolOwner, spec: PipelineSpec | None) -> list[dict[str, Any]]:
    """The objects of every pool of the run (its warm steps', in step order)."""
    return [obj for step in warm_steps(spec) for obj in pool_objects(run, step)]


def is_ours(obj: dict[str, Any] | None, uid_of_run: str) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or ()
    return any(r.get("controller") and r.get("uid") == uid_of_run for r in refs)


async def ensure(kube: Any, objects: Sequence[dict[str, Any]], uid_of_run: str) -> str | None:
    """Make what is missing of the pools `objects` (reads first: the run's own already there cost
    no write). None when all are there; else why not: a name held by an object the run does not
    own (never taken for its own), or an earlier run's of that name still being removed."""
    for body in objects:
        kind, meta = body["kind"], body["metadata"]
        have = await kube.get(kind, meta["namespace"], meta["name"])
        if have is not None:
            if is_ours(have, uid_of_run):
                continue
            return (
                f"the app pool of step {meta['labels'].get(L.STEP)!r}: {kind} {meta['name']!r} "
                "exists and is not this run's; not touching it"
            )
        try:
            await kube.create(body)
            log.info("made %s %s/%s (the run's app pool)", kind, meta["namespace"], meta["name"])
        except NameConflict as e:
            return f"the app pool of step {meta['labels'].get(L.STEP)!r}: {e.message}"
        except KubeError as e:
            if not e.conflict:
                raise
            return f"the app pool's {kind} {meta['name']!r} of an earlier run of that name is still being removed"
    return None


async def remove(kube: Any, objects: Sequence[dict[str, Any]], uid_of_run: str) -> None:
    """Delete the pools `objects` that are the run's (`uid_of_run` its controller); gone: fine."""
    for body in reversed(objects):
        kind, meta = body["kind"], body["metadata"]
        have = await kube.get(kind, meta["namespace"], meta["name"])
        if have is None or not is_ours(have, uid_of_run):
            continue  # gone, or not the run's: never touched
        await kube.delete(kind, meta["namespace"], meta["name"], uid=(have.get("metadata") or {}).get("uid"))
        log.info("removed %s %s/%s (the run's app pool)", kind, meta["namespace"], meta["name"])
