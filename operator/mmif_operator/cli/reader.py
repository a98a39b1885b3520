"""The reader pod: how the plugin reads a run's volume with the user's own identity (as `kubectl
debug` and `kubectl cp` work through pods). Its body and its answer are results/readerpod.py's
(shared with the web console's MMIF viewer); here it is created, watched, read and deleted."""

from __future__ import annotations

import asyncio
from typing import Any

from mmif_operator.cli.errors import CliError
from mmif_operator.cli.kube import Kube
from mmif_operator.results import readerpod
from mmif_operator.results.readerpod import (  # noqa: F401 - the plugin's names for them
    COMPONENT_READER,
    DEADLINE_SECONDS,
    DEFAULT_IMAGE,
    IMAGE_ENV,
    NAME_READER,
    READS_RUN,
    STUCK,
    reader_pod,
    run_location,
    run_steps,
    volume_reader_pod,
)


def parse_answer(log: str) -> dict[str, Any]:
    """The JSON answer in the reader pod's log (results/readerpod.py), errors as CliError."""
    try:
        return readerpod.parse_answer(log)
    except readerpod.ReaderError as e:
        raise CliError(str(e)) from None


def _stuck(pod: Any) -> str | None:
    statuses = (pod.status.container_statuses or []) if pod.status else []
    waiting = [cs.state.waiting for cs in statuses if cs.state and cs.state.waiting]
    return readerpod.stuck([(w.reason, w.message) for w in waiting])


async def read(kube: Kube, run: dict[str, Any], args: list[str], image: str | None = None) -> dict[str, Any]:
    """Run the reader pod over the run's folder, return its answer, delete it (whatever happened)."""
    return await read_with(kube, reader_pod(run, args, image))


async def read_with(kube: Kube, pod_body: dict[str, Any]) -> dict[str, Any]:
    """Run the reader pod `pod_body`, return its answer, delete it (whatever happened)."""
    created = await kube.create_pod(pod_body)
    name = created.metadata.name
    try:
        phase = None
        try:
            async with asyncio.timeout(DEADLINE_SECONDS + 15):
                async for pod in kube.watch_pod(name, DEADLINE_SECONDS + 10):
                    phase = pod.status.phase if pod.status else None
                    if phase in ("Succeeded", "Failed"):
                        break
                    stuck = _stuck(pod)
                    if stuck:
                        raise CliError(f"the reader pod {name} cannot start: {stuck}")
        except TimeoutError:
            pass
        if phase not in ("Succeeded", "Failed"):
            raise CliError(
                f"the reader pod {name} did not finish within {DEADLINE_SECONDS} s (phase {phase}); "
                f"see `kubectl describe pod {name} -n {kube.namespace}` while it exists"
            )
        return parse_answer(await kube.pod_log(name, "reader"))
    finally:
        await kube.delete_pod(name)
