"""SIGKILL the operator with items in flight: how long until every run progresses again, and
whether any item-step ran twice or never.

Several runs share the in-flight items (`runs` x `parallelism`). Once every run has items moving
(some first steps finished) and the total in flight reached the target, the operator's process is
killed with SIGKILL on this machine; the kubelet restarts its container. A run progresses again
when the watch sees a new step Job of it created after the new process appeared; the runs then
finish, and the step Jobs seen are checked against items x steps."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from . import operator_process as op
from . import workspace as ws
from .kube import Kube
from .measure import Integrity, integrity
from .operator_run import run_path, wait_terminal
from .watch import JobRecorder

MIN_FINISHED_PER_RUN = 50


@dataclass
class KillResult:
    in_flight: int  # items in flight when killed
    new_process_after: float  # seconds from SIGKILL to the new process
    progress_after: dict[str, float]  # run -> seconds from SIGKILL to its first new step Job
    phases: dict[str, str]
    succeeded: dict[str, int]
    items: int
    integrity: Integrity

    @property
    def progress_all(self) -> float | None:
        return max(self.progress_after.values()) if self.progress_after else None

    @property
    def lost(self) -> int:
        not_succeeded = sum(self.items - s for s in self.succeeded.values())
        return max(not_succeeded, self.integrity.items_lost)


def in_flight(recorder: JobRecorder, runs: list[str], steps: int) -> dict[str, int]:
    started: dict[str, set[int]] = {r: set() for r in runs}
    done: dict[str, set[int]] = {r: set() for r in runs}
    for rec in recorder.steps():
        if rec.run in started and rec.item is not None:
            started[rec.run].add(rec.item)
            if rec.step == steps - 1 and rec.finished is not None:
                done[rec.run].add(rec.item)
    return {r: len(started[r] - done[r]) for r in runs}


async def run_kill(
    kube: Kube,
    recorder: JobRecorder,
    namespace: str,
    runs: int,
    items: int,
    parallelism: int,
    steps: int,
    timeout: float,
) -> KillResult:
    names = [f"kill-{j}" for j in range(runs)]
    pid, pod_uid = await asyncio.to_thread(op.fresh_operator)
    await asyncio.sleep(2)
    for name in names:
        await kube.call("POST", run_path(namespace), body=ws.run_body(name, items, parallelism))
    target = runs * min(parallelism, items)
    deadline = time.monotonic() + timeout
    while True:
        flying = in_flight(recorder, names, steps)
        finished = {r: sum(1 for rec in recorder.steps(r) if rec.finished is not None) for r in names}
        if sum(flying.values()) >= target and min(finished.values()) >= MIN_FINISHED_PER_RUN:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"kill: never {target} items in flight ({flying}, finished {finished})")
        await asyncio.sleep(0.05)
    killed_at = time.monotonic()
    op.sigkill(pid)
    flying_total = sum(in_flight(recorder, names, steps).values())
    _, new_at = await asyncio.to_thread(op.wait_new_pid, pid, pod_uid)
    progress: dict[str, float] = {}
    while len(progress) < len(names):
        for name in names:
            if name in progress:
                continue
            after = [rec.added for rec in recorder.steps(name) if rec.added > new_at]
            if after:
                progress[name] = min(after) - killed_at
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    phases, succeeded = {}, {}
    for name in names:
        run, _ = await wait_terminal(kube, namespace, name, max(60.0, deadline - time.monotonic()))
        phases[name] = run["status"]["phase"]
        succeeded[name] = int(run["status"].get("itemsSucceeded") or 0)
    await asyncio.sleep(2)
    check = integrity(recorder.steps(), {n: items for n in names}, steps)
    return KillResult(
        in_flight=flying_total,
        new_process_after=new_at - killed_at,
        progress_after=progress,
        phases=phases,
        succeeded=succeeded,
        items=items,
        integrity=check,
    )
