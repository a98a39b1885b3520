"""What every per-object reconcile loop (a kopf daemon: runs, Pipelines, AnalysisJobs) shares.

`reconcile_forever` waits for a wake-up, a timer or the daemon's stop flag; runs one pass (the
caller's `one_pass`, which says whether to stop and how long to sleep without a wake-up); and,
when a pass raises, logs it, says so on the object (the first and the fifth failure in a row, not
at every retry) and tries again with backoff. A crash never ends the loop, and nothing in it is
needed after a restart: every pass recomputes from the cluster. `bounded` is how a pass sends
many writes at once (creates, deletes) without flooding the API server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from mmif_operator import metrics
from mmif_operator.core import observed
from mmif_operator.core.kube import events as k8s_events
from mmif_operator.core.kube.ops import Kube, KubeError, NameConflict
from mmif_operator.core.observed import ObservedJob
from mmif_operator.core.runtime.wakeups import DEBOUNCE_SECONDS, Wake, Waker, backoff

log = logging.getLogger(__name__)

# A timer at least this long asks the pass to read its object again (a safety net for a missed
# watch event); shorter ones (come back at once, flush progress in a second) trust the copy.
TIMER_REFRESH_SECONDS = 5.0
MAX_CONCURRENT_WRITES = 16
# Jobs created per pass at most; the rest in the next pass, at once. A pass that created all
# 1,000 first-step Jobs of a run took several seconds on a busy API server, and every item that
# finished meanwhile waited for it (step-transition p99 of 9 s in the scale benchmark); 64 per
# pass, four rounds of 16, still left a p99 over 1 s while a 1,000-item run started. One round
# per pass: an item that finishes a step waits for at most one round before its next Job (items
# at later steps come first in every plan). Items in flight whose Job is not created yet are
# simply created by the next pass (the planner's rule).
MAX_CREATES_PER_PASS = MAX_CONCURRENT_WRITES


@dataclass(frozen=True)
class Next:
    """What a pass asks of its loop."""

    stop: bool = False  # end the daemon (the object is gone)
    timeout: float | None = None  # the next pass in this many seconds without a wake-up (None: only on one)


def resync_timeout(requeue_after: float | None, resync_seconds: float) -> float:
    """The plan's requeue time, at most the resync period (which also stands in for none)."""
    if requeue_after is None:
        return resync_seconds
    return min(max(requeue_after, 0.0), resync_seconds)


async def reconcile_forever(
    waker: Waker,
    stopped: Any,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    *,
    kind: str,
    ref: Mapping[str, Any],
    one_pass: Callable[[bool], Awaitable[Next]],
    debounce: float = DEBOUNCE_SECONDS,
) -> None:
    """Run `one_pass(refresh)` at once, then after each wake-up or timer, until it says stop or
    kopf stops the daemon. `refresh` is True when the pass should read its object again rather
    than trust a copy it kept: a wake asked so (the spec changed), or a long timer came due."""
    failures = 0
    timeout: float | None = 0.0  # the first pass at once
    while True:
        wake = await waker.wait(timeout, stopped)
        if wake is Wake.STOPPED:
            return
        if wake is Wake.WOKEN and debounce > 0:
            await asyncio.sleep(debounce)
        refresh = waker.take_refresh() or (wake is Wake.TIMEOUT and (timeout or 0) >= TIMER_REFRESH_SECONDS)
        waker.clear()
        started = time.monotonic()
        try:
            step = await one_pass(refresh)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - keep the loop alive; retry with backoff
            failures += 1
            metrics.RECONCILE_ERRORS.labels(kind=kind).inc()
            timeout = backoff(failures)
            logger.warning(
                f"reconcile failed ({failures} in a row), retrying in {timeout:.0f}s: "
                f"{type(e).__name__}: {e}",
                exc_info=failures == 1,
            )
            if failures in (1, 5):
                k8s_events.post(ref, "Warning", "ReconcileError", f"{type(e).__name__}: {e}")
            continue
        finally:
            metrics.RECONCILE_DURATION.labels(kind=kind).observe(time.monotonic() - started)
        failures = 0
        if step.stop:
            return
        timeout = step.timeout


async def bounded(
    calls: Iterable[Callable[[], Awaitable[Any]]], limit: int = MAX_CONCURRENT_WRITES
) -> list[Any]:
    """Run the coroutine factories with at most `limit` in flight; their results or exceptions,
    in order."""
    sem = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await factory()

    return await asyncio.gather(*(one(f) for f in calls), return_exceptions=True)


@dataclass
class Creates:
    """What a round of creates did."""

    created: list[str]  # names created now, or found existing and ours
    failed: bool  # some create failed in a way worth retrying
    refused: list[ObservedJob]  # permanent refusals, as failed Jobs (`observed.refused`)


def refusal(body: Mapping[str, Any], error: BaseException) -> ObservedJob | None:
    """A create error that retrying cannot fix, as the refused Job's summary; None otherwise:
    the name is held by an object that is not ours (`NameConflict`), or the API server refused
    the Job as invalid (422: `CreateFailed`, with its message)."""
    if isinstance(error, NameConflict):
        return observed.refused(body, observed.R_NAME_CONFLICT, error.message)
    if isinstance(error, KubeError) and error.invalid:
        return observed.refused(
            body,
            observed.R_CREATE_FAILED,
            f"the API server refused Job {body['metadata']['name']}: {error.message}",
        )
    return None


async def create_jobs(
    kube: Kube,
    bodies: list[dict[str, Any]],
    owner: Mapping[str, Any],
    what: str,
    post_event: Callable[[Mapping[str, Any], str, str, str], None],
) -> Creates:
    """Create `bodies` (Jobs) with `bounded` concurrency; an existing Job counts as created only
    when it is ours (`Kube.create`). Permanent refusals (a name held by another's object, an
    invalid Job) come back as `refused` summaries, for the planner to fail their item or run
    with the reason; other errors are logged (`what`: e.g. "run ns/name"), one `CreateFailed`
    Event goes on `owner`, and the caller tries again later."""
    outcomes = await bounded([partial(kube.create, b) for b in bodies])
    refused: list[ObservedJob] = []
    errors: list[tuple[dict[str, Any], BaseException]] = []
    created: list[str] = []
    for body, outcome in zip(bodies, outcomes, strict=True):
        if not isinstance(outcome, BaseException):
            created.append(body["metadata"]["name"])
            continue
        summary = refusal(body, outcome)
        if summary is not None:
            refused.append(summary)
            log.warning("%s: Job %s cannot be created: %s", what, summary.name, summary.message)
        else:
            errors.append((body, outcome))
    for body, error in errors[:3]:
        log.warning("%s: creating Job %s: %s", what, body["metadata"]["name"], error)
    if errors:
        post_event(
            owner,
            "Warning",
            "CreateFailed",
            f"{len(errors)} of {len(bodies)} Jobs could not be created: {errors[0][1]}",
        )
    return Creates(created=created, failed=bool(errors), refused=refused)


class Refusals:
    """The creates a loop was refused for good, remembered for its next passes (the planner
    fails their item or run from them). Only memory: a new process meets the same refusal
    again at its first create, or finds the outcome already in the status."""

    def __init__(self) -> None:
        self._by_name: dict[str, ObservedJob] = {}

    def add(self, summaries: Iterable[ObservedJob]) -> int:
        count = 0
        for s in summaries:
            count += s.name not in self._by_name
            self._by_name[s.name] = s
        return count

    def merged(self, observed: Iterable[ObservedJob], owner_uid: str = "") -> list[ObservedJob]:
        """`observed` plus the refusals whose name no Job of the owner holds."""
        jobs = list(observed)
        ours = {j.name for j in jobs if j.owned_by(owner_uid)}
        return jobs + [s for n, s in self._by_name.items() if n not in ours]

    def __len__(self) -> int:
        return len(self._by_name)
