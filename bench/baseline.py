"""The baseline: the least a client must do to run N items x S steps as the operator does.

It creates exactly the step Jobs the operator would (bodies from the operator's own builder,
`mmif_operator.kinds.pipelinerun.children.step_job`; only the owner differs: a ConfigMap stands in for the
PipelineRun, since a Job whose owner does not exist is garbage-collected), each item's steps in
order, up to `parallelism` items at once; when a Job finishes it creates the item's next Job (or
starts the next item) and deletes the finished Job, as the operator does. Creates and deletes
have a bound of 16 in flight each, so a create never waits behind deletes (the operator deletes
beside its passes too). No status, no prepare or manifest Job, nothing else. It reacts to the
same watch that measures it, as the cluster admin (exempt from the API server's priority and
fairness queues, where the operator's service account lands in `workload-low`)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from mmif_operator.core.specs import parse_spec
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec

from .kube import ApiError, Kube
from .watch import JobRecord

log = logging.getLogger("bench")

MAX_CONCURRENT_WRITES = 16  # the operator's bounds (kinds/pipelinerun/handler.py, core/runtime/deletions.py)


@dataclass
class BaselineResult:
    started: float  # time.monotonic() before the first create
    ended: float  # when the last item's last step was seen finished
    failed_items: int
    requests: int  # API requests this client made (creates + deletes)


class Baseline:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        run: str,
        run_spec: dict[str, Any],
        pipeline_spec: dict[str, Any],
        items: int,
        image: str,
    ):
        self.kube = kube
        self.namespace = namespace
        self.run = run
        self.run_spec = run_spec
        self.pipeline_spec = pipeline_spec
        # Parsed as the operator's handler parses them (core/specs.py): the builders take models.
        self.parsed_run_spec = parse_spec(PipelineRunSpec, run_spec)
        self.parsed_pipeline_spec = parse_spec(PipelineSpec, pipeline_spec)
        self.items = items
        self.steps = len(pipeline_spec["steps"])
        self.parallelism = min(int(run_spec["parallelism"]), items)
        self.image = image
        self.finished: asyncio.Queue[JobRecord] = asyncio.Queue()
        self.create_sem = asyncio.Semaphore(MAX_CONCURRENT_WRITES)
        self.delete_sem = asyncio.Semaphore(MAX_CONCURRENT_WRITES)
        self.tasks: set[asyncio.Task] = set()
        self.requests = 0
        self.errors: list[BaseException] = []
        self.ctx: J.RunContext | None = None
        self.owner: dict[str, Any] | None = None

    def on_finished(self, rec: JobRecord) -> None:
        """The recorder's callback: a step Job of this run was seen finished."""
        if rec.run == self.run and rec.item is not None:
            self.finished.put_nowait(rec)

    async def _owner(self) -> None:
        cm = await self.kube.call(
            "POST",
            f"/api/v1/namespaces/{self.namespace}/configmaps",
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{self.run}-owner"}},
        )
        self.owner = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": cm["metadata"]["name"],
            "uid": cm["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        self.ctx = J.RunContext.from_run(
            {"name": self.run, "namespace": self.namespace, "uid": cm["metadata"]["uid"]},
            self.parsed_run_spec,
        )

    def job_body(self, item: int, step: int) -> dict[str, Any]:
        assert self.ctx is not None and self.owner is not None
        body = J.step_job(
            self.ctx, self.parsed_run_spec.params, self.parsed_pipeline_spec, item, step, self.image
        )
        body["metadata"]["ownerReferences"] = [dict(self.owner)]
        return body

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())

    async def _create(self, item: int, step: int) -> None:
        body = self.job_body(item, step)
        async with self.create_sem:
            self.requests += 1
            await self.kube.call(
                "POST", f"/apis/batch/v1/namespaces/{self.namespace}/jobs", body=body, allow=(409,)
            )

    async def _delete(self, name: str) -> None:
        async with self.delete_sem:
            self.requests += 1
            await self.kube.call(
                "DELETE",
                f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}",
                body={"propagationPolicy": "Background"},
                allow=(404,),
            )

    async def run_all(self, timeout: float) -> BaselineResult:
        await self._owner()
        started = time.monotonic()
        next_item = 0
        for next_item in range(self.parallelism):
            self._spawn(self._create(next_item, 0))
        next_item = self.parallelism
        done = failed = 0
        ended = started
        deadline = started + timeout
        while done < self.items:
            if self.errors:
                raise RuntimeError(f"baseline: {self.errors[0]}") from self.errors[0]
            try:
                rec = await asyncio.wait_for(
                    self.finished.get(), timeout=max(1.0, deadline - time.monotonic())
                )
            except TimeoutError:
                raise RuntimeError(
                    f"baseline: {done} of {self.items} items done after {timeout:.0f}s"
                ) from None
            assert rec.item is not None and rec.step is not None
            self._spawn(self._delete(rec.name))
            if rec.succeeded and rec.step + 1 < self.steps:
                self._spawn(self._create(rec.item, rec.step + 1))
                continue
            done += 1
            failed += 0 if rec.succeeded else 1
            ended = rec.finished or time.monotonic()
            if next_item < self.items:
                self._spawn(self._create(next_item, 0))
                next_item += 1
        while self.tasks:  # the last deletes
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        return BaselineResult(started=started, ended=ended, failed_items=failed, requests=self.requests)


__all__ = ["ApiError", "Baseline", "BaselineResult"]
