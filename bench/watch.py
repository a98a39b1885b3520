"""What the benchmark sees of step Jobs: a watch in the bench process, local receive times.

Job creation timestamps have a one-second resolution, so every time here is `time.monotonic()`
when the watch event reached the bench: `added` when a Job was first seen, `finished` when its
outcome was first seen (the operator's own definition: core/observed.py `job_state`).
The same recorder watches the baseline's Jobs and the operator's, so both are measured alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core.observed import JobState, job_state

from .kube import ApiError, Kube

log = logging.getLogger("bench")

WATCH_TIMEOUT_SECONDS = 240


@dataclass
class JobRecord:
    name: str
    uid: str
    run: str
    component: str
    item: int | None
    step: int | None
    added: float
    last: int | None = None  # the last step its pod runs (steps sharing a pod); `step` without the label
    finished: float | None = None
    succeeded: bool | None = None
    deleted: float | None = None


def last_step(rec: JobRecord) -> int | None:
    """The last step the Job's pod runs: its label, else its own step."""
    return rec.last if rec.last is not None else rec.step


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class JobRecorder:
    """Every Job of a namespace (matching a label selector) the watch showed, by uid."""

    def __init__(self, on_finished: Callable[[JobRecord], None] | None = None):
        self.by_uid: dict[str, JobRecord] = {}
        self.on_finished = on_finished
        self.events = 0

    def observe(self, kind: str, job: Mapping[str, Any], now: float) -> JobRecord | None:
        """Record one watch event (ADDED / MODIFIED / DELETED, or a listed object as ADDED).
        Returns the record when this event is the first to show the Job finished."""
        self.events += 1
        meta = job.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return None
        rec = self.by_uid.get(uid)
        if rec is None:
            labels = meta.get("labels") or {}
            rec = JobRecord(
                name=meta.get("name", ""),
                uid=uid,
                run=labels.get(L.RUN, ""),
                component=labels.get(L.COMPONENT, ""),
                item=_int(labels.get(L.ITEM_INDEX)),
                step=_int(labels.get(L.STEP_INDEX)),
                added=now,
                last=_int(labels.get(L.LAST_STEP_INDEX)),
            )
            self.by_uid[uid] = rec
        if kind == "DELETED" and rec.deleted is None:
            rec.deleted = now
        if rec.finished is None:
            state, _, _ = job_state(job)
            if state is not JobState.ACTIVE:
                rec.finished = now
                rec.succeeded = state is JobState.SUCCEEDED
                if self.on_finished is not None:
                    self.on_finished(rec)
                return rec
        return None

    def steps(self, run: str | None = None) -> list[JobRecord]:
        return [
            r
            for r in self.by_uid.values()
            if r.component == L.COMPONENT_STEP and (run is None or r.run == run)
        ]


async def record_jobs(
    kube: Kube, namespace: str, selector: str, recorder: JobRecorder, ready: asyncio.Event | None = None
) -> None:
    """Feed `recorder` from a watch of the namespace's Jobs until cancelled. Re-watches from the
    last resourceVersion when the server ends a stream; lists again after 410 Gone."""
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    rv = None
    while True:
        if rv is None:
            listing = await kube.call("GET", path, params={"labelSelector": selector})
            now = time.monotonic()
            for job in listing.get("items") or []:
                recorder.observe("ADDED", job, now)
            rv = listing["metadata"]["resourceVersion"]
            if ready is not None:
                ready.set()
        params = {
            "labelSelector": selector,
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT_SECONDS),
        }
        try:
            async for now, event in kube.watch(path, params):
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        rv = None
                        break
                    raise ApiError(obj.get("code") or 500, obj)
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if event.get("type") != "BOOKMARK":
                    recorder.observe(event["type"], obj, now)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except ApiError as e:
            if e.status == 410:
                rv = None
                continue
            log.warning("job watch: %s; watching again", e)
            await asyncio.sleep(0.5)
        except Exception as e:  # noqa: BLE001 - a dropped stream: watch again from rv
            log.warning("job watch: %s: %s; watching again", type(e).__name__, e)
            await asyncio.sleep(0.5)
