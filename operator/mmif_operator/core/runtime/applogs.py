"""Keep the app's log of a run's newly failed item-steps (what and why: core/applogs.py).

Called by a run's pass with the failed step Jobs whose outcome the status does not hold yet (the
ones it reads termination messages of), before it plans, so before the status patch that lets the
Job be deleted: a process killed anywhere in between reads again at its next pass, finds the keys
it already wrote, and writes only the missing ones. Housekeeping: an error here is logged and
never stops the pass (the run's outcome does not depend on its logs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from mmif_operator.core import applogs
from mmif_operator.core.kube.ops import Kube, KubeError, NameConflict, owned_by
from mmif_operator.core.model import API_VERSION
from mmif_operator.core.observed import JobKind, ObservedJob
from mmif_operator.core.runtime.loop import bounded
from mmif_operator.kinds.pipelinerun.children import APP_CONTAINER, KIND_RUN

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


async def keep_failed(
    kube: Kube,
    run: Mapping[str, Any],
    jobs: Iterable[ObservedJob],
    what: str,
) -> int:
    """Keep the app logs of the failed step Jobs `jobs` in the run's ConfigMap; how many were
    written now."""
    failed = {
        (j.item, j.step): j
        for j in jobs
        if j.kind is JobKind.STEP and j.item is not None and j.step is not None
    }
    if not failed:
        return 0
    meta = run.get("metadata") or {}
    namespace, name, uid = meta.get("namespace") or "", meta.get("name") or "", meta.get("uid") or ""
    cm_name = applogs.config_map_name(name, uid)
    try:
        existing = await kube.get("ConfigMap", namespace, cm_name)
        if existing is not None and not owned_by(existing, uid):
            log.warning("%s: ConfigMap %s is not this run's: app logs not kept", what, cm_name)
            return 0
        chosen = applogs.to_keep(failed, ((existing or {}).get("data") or {}).keys())
        if not chosen:
            return 0
        texts = await bounded([partial(_read, kube, namespace, failed[c]) for c in chosen])
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
