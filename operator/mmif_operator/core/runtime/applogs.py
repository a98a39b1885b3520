"""Keep the app's log of a run's newly failed item-steps (what and why: core/applogs.py).

Called by a run's pass with the failed step Jobs whose outcome the status does not hold yet (the
ones it reads termination messages of), before it plans, so before the status patch that lets the
Job be deleted: a process killed anywhere in between reads again at its next pass, finds the keys
it already wrote, and writes only the missing ones. Housekeeping: an error here is logged and
never stops the pass (the run's outcome does not depend on its logs).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from mmif_operator.core import applogs, names
from mmif_operator.core import labels as L
from mmif_operator.core.kube.ops import Kube, KubeError, NameConflict, owned_by
from mmif_operator.core.model import API_VERSION
from mmif_operator.core.observed import JobKind, ObservedJob
from mmif_operator.core.runtime.loop import bounded
from mmif_operator.kinds.pipeline.model import Step
from mmif_operator.kinds.pipelinerun.children import APP_CONTAINER, KIND_RUN
from mmif_operator.kinds.pipelinerun.planning import parse_termination_message
from mmif_operator.kinds.pipelinerun.pools import is_warm
from mmif_operator.kinds.pipelinerun.shared_pods import failed_step

log = logging.getLogger(__name__)


def _app_pod(pods: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest pod with an `app` container (the last attempt); None in Service mode."""
    with_app = [
        p
        for p in pods
        if any(
            c.get("name") == APP_CONTAINER
            for c in [
                *((p.get("spec") or {}).get("initContainers") or []),
                *((p.get("spec") or {}).get("containers") or []),
            ]
        )
    ]
    with_app.sort(key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    return with_app[-1] if with_app else None


async def _read(kube: Kube, namespace: str, job: ObservedJob) -> str | None:
    """The kept text of one failed step's app log; None: the Job has no app container (Service
    mode, or its pods are gone)."""
    pod = _app_pod(await kube.job_pods(namespace, job.name, uid=job.uid))
    if pod is None:
        return None
    name = (pod.get("metadata") or {}).get("name") or ""
    try:
        text = await kube.pod_log(namespace, name, APP_CONTAINER, tail_lines=applogs.TAIL_LINES)
    except KubeError as e:  # e.g. the container never started: say so, once
        return f"(the operator could not read the app's log of pod {name}: {e.message or e})\n"
    return applogs.tail(text or "(the app wrote nothing to its log)\n")


async def _read_pool(kube: Kube, namespace: str, run: str, step: str) -> str | None:
    """The kept text of a failed item-step of warm step `step`: the tail of its pool pods' app
    logs now; None when the pool has no pod."""
    pool = names.run_pool_name(run, step)
    pods = applogs.pool_pods(await kube.list("Pod", namespace, L.run_pool_selector(run, step)), pool)
    logs: list[tuple[str, str]] = []
    for pod in pods:
        try:
            text = await kube.pod_log(namespace, pod, APP_CONTAINER, tail_lines=applogs.TAIL_LINES)
        except KubeError as e:
            text = f"(the operator could not read the app's log of pod {pod}: {e.message or e})\n"
        logs.append((pod, text))
    return applogs.pool_text(logs) or None


def failed_at(job: ObservedJob, message: Any, steps: Sequence[Step]) -> int:
    """The step at which step Job `job` failed: its own, or, when its pod ran several steps
    (shared_pods.py), the one its runner named in `message` (its termination message)."""
    first = job.step or 0
    last = job.last_step if job.last_step is not None else first
    if last <= first or not steps:
        return first
    names_ = [s.name for s in steps]
    return failed_step(first, min(last, len(steps) - 1), names_, parse_termination_message(message))


async def keep_failed(
    kube: Kube,
    run: Mapping[str, Any],
    jobs: Iterable[ObservedJob],
    what: str,
    messages: Mapping[str, Any] | None = None,
    steps: Sequence[Step] = (),
) -> int:
    """Keep the app logs of the failed step Jobs `jobs` in the run's ConfigMap, under the step
    each failed at (`messages`: their termination messages; `steps`: the run's pipeline
    snapshot's); how many were written now."""
    meta = run.get("metadata") or {}
    namespace, name, uid = meta.get("namespace") or "", meta.get("name") or "", meta.get("uid") or ""
    failed: dict[tuple[int, int], Callable[[], Awaitable[str | None]]] = {}
    for j in jobs:
        if j.kind is not JobKind.STEP or j.item is None or j.step is None:
            continue
        k = failed_at(j, (messages or {}).get(j.name), steps)
        if 0 <= k < len(steps) and is_warm(steps[k]):
            failed[(j.item, k)] = partial(_read_pool, kube, namespace, name, steps[k].name)
        else:
            failed[(j.item, k)] = partial(_read, kube, namespace, j)
    if not failed:
        return 0
    cm_name = applogs.config_map_name(name, uid)
    try:
        existing = await kube.get("ConfigMap", namespace, cm_name)
        if existing is not None and not owned_by(existing, uid):
            log.warning("%s: ConfigMap %s is not this run's: app logs not kept", what, cm_name)
            return 0
        chosen = applogs.to_keep(failed, ((existing or {}).get("data") or {}).keys())
        if not chosen:
            return 0
        texts = await bounded([failed[c] for c in chosen])
        data: dict[str, str] = {}
        for (item, step), text in zip(chosen, texts, strict=True):
            if isinstance(text, BaseException):
                log.warning("%s: reading the app log of item %s step %s: %s", what, item, step, text)
            elif text is not None:
                data[applogs.key(item, step)] = text
        if not data:
            return 0
        if existing is None:
            owner = {
                "apiVersion": API_VERSION,
                "kind": KIND_RUN,
                "name": name,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
            body = applogs.config_map(name, namespace, uid, owner, data)
            if await kube.create(body):
                return len(data)
            # ours already (a create of this pass's twin won): add the keys
        await kube.patch("ConfigMap", namespace, cm_name, {"data": data})
        return len(data)
    except NameConflict as e:
        log.warning("%s: %s: app logs not kept", what, e.message)
    except Exception as e:  # noqa: BLE001 - housekeeping: the run goes on without its logs
        log.warning("%s: keeping the app logs of failed steps: %s: %s", what, type(e).__name__, e)
    return 0
