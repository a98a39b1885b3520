"""Beside a run's or an AnalysisJob's loop: look at its Pending pods, decide which Jobs fail because
their pod cannot start (core/podstart.py), and hand those to the loop's next pass.

A look costs one list of the owner's Pending pods (filtered by the API server: a run whose pods
all run sends almost nothing back) and, only for a pod or Job past its bound that does not say
why in its status, a list of that object's Events. Looks follow the bounds: the next one comes
when the first pod in sight would be due, at most `CHECK_SECONDS` later (30 s), and never later
than the owner's smallest bound (a test with a 5 s bound is decided within seconds).

The failures found live here only until the pass records them (the planner then deletes the
Job); after a restart the first look finds them again, from the pods, Jobs and Events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import Kube
from mmif_operator.core.observed import ObservedJob
from mmif_operator.core.podstart import CHECK_SECONDS, Bounds, StartFailure, check_pod_starts

log = logging.getLogger(__name__)

MAX_EVENT_READS = 16  # Event lists per look, at most (the rest at the next look)
EventPoster = Callable[[Mapping[str, Any], str, str, str], None]


def waiting_pods(pods: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(pod name, reason, message) of every pod with a container waiting for a reason worth
    saying before its bound is over (an image that cannot be pulled, a container that cannot be
    created): a heads-up Event, the outcome comes with the bound."""
    telling = {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
    out: list[tuple[str, str, str]] = []
    for pod in pods:
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in telling:
                name = (pod.get("metadata") or {}).get("name", "")
                out.append(
                    (name, waiting["reason"], f"container {cs.get('name')}: {waiting.get('message') or ''}")
                )
                break
    return out


class PodStartWatch:
    """The pod-start looks of one owner (a run or an AnalysisJob)."""

    def __init__(
        self,
        namespace: str,
        selector: Mapping[str, str],
        owner: Mapping[str, Any],
        *,
        wake: Callable[[], None],
        waiting_event: str = "StepPodWaiting",
        post_event: EventPoster = k8s_events.post,
    ):
        self.namespace = namespace
        self.selector = dict(selector)
        self.owner = owner
        self.wake = wake
        self.waiting_event = waiting_event
        self.post_event = post_event
        self.failures: dict[str, StartFailure] = {}
        self.next_at = 0.0  # time.monotonic() of the next look: the first at once
        self.task: asyncio.Future | None = None
        self._seen: set[str] = set()
        self.queued = 0  # pods waiting for room behind the owner's running pods, at the last look
        # pods waiting for room a minute or more, at the last look (holds new items)
        self.waiting_for_room = 0

    def prune(self, jobs: Iterable[ObservedJob]) -> None:
        """Forget failures of Jobs no longer active in the index (recorded and deleted, or
        finished on their own after all)."""
        active = {j.name for j in jobs if not j.finished}
        for name in [n for n in self.failures if n not in active]:
            del self.failures[name]

    def seconds_left(self) -> float:
        return max(0.0, self.next_at - time.monotonic())

    def maybe_look(self, kube: Kube, jobs: list[ObservedJob], bounds: Bounds) -> None:
        """Start a look beside the loop when one is due, there are active Jobs, and none runs.
        Without active Jobs in `jobs` (just created: the index shows them soon) look again in a
        second."""
        if self.task is not None and not self.task.done():
            return
        if time.monotonic() < self.next_at:
            return
        if not any(not j.finished for j in jobs):
            self.next_at = time.monotonic() + 1.0
            return
        self.next_at = time.monotonic() + min(CHECK_SECONDS, bounds.smallest)  # until the look says better
        self.task = asyncio.ensure_future(self._look_safely(kube, jobs, bounds))

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _look_safely(self, kube: Kube, jobs: list[ObservedJob], bounds: Bounds) -> None:
        try:
            await self.look(kube, jobs, bounds)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - looked at again at the next look
            log.warning(
                "%s/%s: looking at pods that cannot start: %s: %s",
                self.namespace,
                (self.owner.get("metadata") or {}).get("name"),
                type(e).__name__,
                e,
            )

    async def look(
        self, kube: Kube, jobs: list[ObservedJob], bounds: Bounds, now: datetime | None = None
    ) -> list[StartFailure]:
        """One look; the new failures (also kept in `failures`; the loop is woken for them)."""
        pods = await kube.list("Pod", self.namespace, self.selector, fields="status.phase=Pending")
        now = now or datetime.now(UTC)
        check = check_pod_starts(jobs, pods, bounds.of, now, min_bound=bounds.smallest)
        if check.want_events:
            events: dict[str, list[dict[str, Any]]] = {}
            for kind, name in check.want_events[:MAX_EVENT_READS]:
                events[name] = await kube.list(
                    "Event", self.namespace, fields=f"involvedObject.kind={kind},involvedObject.name={name}"
                )
            check = check_pod_starts(jobs, pods, bounds.of, now, events=events, min_bound=bounds.smallest)
        self.next_at = time.monotonic() + check.next_check
        if len(check.queued) != self.queued:
            log.info(
                "%s/%s: %d pods past their start bound wait for room behind the owner's running pods",
                self.namespace,
                (self.owner.get("metadata") or {}).get("name"),
                len(check.queued),
            )
        self.queued = len(check.queued)
        held = bool(self.waiting_for_room)
        self.waiting_for_room = len(check.waiting_for_room)
        if held != bool(self.waiting_for_room):
            log.info(
                "%s/%s: %s",
                self.namespace,
                (self.owner.get("metadata") or {}).get("name"),
                f"{self.waiting_for_room} pods wait for room on the nodes: new items wait behind them"
                if self.waiting_for_room
                else "no pod waits for room: new items start again",
            )
            self.wake()
        new = [f for f in check.failures if f.job not in self.failures]
        for failure in new:
            self.failures[failure.job] = failure
            log.info(
                "%s/%s: Job %s fails: %s: %s",
                self.namespace,
                (self.owner.get("metadata") or {}).get("name"),
                failure.job,
                failure.reason,
                failure.message,
            )
        failing = {f.job for f in check.failures}
        for pod_name, reason, message in waiting_pods(pods):
            key = f"{pod_name}/{reason}"
            if key in self._seen or any(pod_name.startswith(f"{j}-") for j in failing):
                continue
            self._seen.add(key)
            self.post_event(
                self.owner,
                "Warning",
                self.waiting_event,
                f"pod {pod_name}: {reason}: {message} (its item fails if the pod has not "
                "started within its startupTimeoutSeconds)",
            )
        if new:
            self.wake()
        return new
