"""The operator's side: one PipelineRun of N items x S steps, with the operator deployed as in
production (`make deploy`), measured from outside: wall time, its process in /proc, its API
requests at the API server (apf.py), the run object's size at the end."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from . import apf
from . import operator_process as op
from . import workspace as ws
from .kube import Kube

TERMINAL = ("Succeeded", "Failed", "Cancelled")
POLL_SECONDS = 0.25
SETTLE_SECONDS = 5.0  # after start (kopf's first listings) and after the end (the last deletes)


@dataclass
class OperatorResult:
    started: float
    ended: float
    phase: str
    status: dict[str, Any]
    cpu_seconds: float
    peak_rss_kib: int
    reads: float
    writes: float
    object_bytes: int


def run_path(namespace: str, name: str = "") -> str:
    base = f"/apis/mmif.dev/v1alpha1/namespaces/{namespace}/pipelineruns"
    return f"{base}/{name}" if name else base


async def wait_terminal(
    kube: Kube, namespace: str, name: str, timeout: float
) -> tuple[dict[str, Any], float]:
    """The run once its phase is terminal, and time.monotonic() when that was seen."""
    deadline = time.monotonic() + timeout
    while True:
        run = await kube.get(run_path(namespace, name)) or {}
        if (run.get("status") or {}).get("phase") in TERMINAL:
            return run, time.monotonic()
        if time.monotonic() > deadline:
            status = run.get("status") or {}
            raise RuntimeError(
                f"run {name}: still {status.get('phase')} ({status.get('progress')}) after {timeout:.0f}s"
            )
        await asyncio.sleep(POLL_SECONDS)


async def run_operator(
    kube: Kube, namespace: str, name: str, items: int, parallelism: int, timeout: float
) -> OperatorResult:
    pid, _ = await asyncio.to_thread(op.fresh_operator)
    await asyncio.sleep(SETTLE_SECONDS)
    before = op.sample(pid)
    reads0, writes0 = await apf.counts(kube)
    started = time.monotonic()
    await kube.call("POST", run_path(namespace), body=ws.run_body(name, items, parallelism))
    run, ended = await wait_terminal(kube, namespace, name, timeout)
    await asyncio.sleep(SETTLE_SECONDS)
    after = op.sample(pid)
    reads1, writes1 = await apf.counts(kube)
    status, raw = await kube.raw("GET", run_path(namespace, name))
    return OperatorResult(
        started=started,
        ended=ended,
        phase=run["status"]["phase"],
        status=run["status"],
        cpu_seconds=after.cpu_seconds - before.cpu_seconds,
        peak_rss_kib=after.peak_rss_kib,
        reads=reads1 - reads0,
        writes=writes1 - writes0,
        object_bytes=len(raw),
    )
