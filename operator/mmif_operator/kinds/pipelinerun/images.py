"""The image each step's app really ran from, for the records' lineage (`status.appImages`).

A step names its image by tag (`ghcr.io/clamsproject/app-whisper-wrapper:v10`); what ran is the
image the node resolved, which only the pod knows (`containerStatuses[].imageID`). The run loop
reads it once per step and app (a step with `alternatives` may run several), beside its pass:
from a pod of a finished step Job of that app (Job mode: the `app` container, before the Job is
deleted), or from a pod of the step's Deployment (Service mode). A `url` app runs somewhere
else: no image. At most one pod list per (step, app) lacking an entry, per pass, and none once
each has one. Decisions here are pure
(`reads_needed`, `image_of`, `merged`); `read_app_images` does the reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core.kube.ops import Kube
from mmif_operator.core.observed import JobKind, JobState, ObservedJob
from mmif_operator.kinds.pipeline.app import App, StepMode
from mmif_operator.kinds.pipeline.model import PipelineSpec, Step
from mmif_operator.kinds.pipelinerun.children import APP_CONTAINER
from mmif_operator.kinds.pipelinerun.model import MAX_APP_IMAGES

log = logging.getLogger(__name__)

# A step's Deployment or pool pods listed with no imageID yet: listed again this long after.
RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Read:
    """One pod list: the pods of Job `job` (Job mode), or those matching `selector` (Service)."""

    step: str
    image: str | None = None  # the image the step names for the app read (None: Service mode)
    job: str | None = None
    job_uid: str | None = None
    selector: Mapping[str, str] | None = None


def reads_needed(
    app_images: Sequence[Mapping[str, Any]] | None,
    spec: PipelineSpec | None,
    pipeline: str,
    jobs: Iterable[ObservedJob],
    owner_uid: str,
    run: str = "",
) -> list[Read]:
    """The reads this pass makes: for each (step, image) with no entry yet, one pod list (a
    Job-mode app: of one of its finished step Jobs observed now, succeeded first; a Service-mode
    step: of its Deployment's pods; a warm step: of the pods of the pool of `run`). A step Job runs the step's own app, or the alternative its
    `mmif.dev/alternative` label names."""
    if spec is None or not any(_may_run_an_image(step) for step in spec.steps):
        return []  # url steps only (the benchmark's shape): no loop over the Jobs at all
    have = {(str(e.get("step")), str(e.get("image"))) for e in app_images or ()}
    finished: dict[tuple[int, str], ObservedJob] = {}
    for job in jobs:
        if job.kind is not JobKind.STEP or not job.exists or job.step is None or not job.finished:
            continue
        if not job.owned_by(owner_uid) or not 0 <= job.step < len(spec.steps):
            continue
        image = _image_of_job(spec.steps[job.step], job.alternative)
        if image is None:
            continue
        key = (job.step, image)
        best = finished.get(key)
        if best is None or (job.state is JobState.SUCCEEDED and best.state is not JobState.SUCCEEDED):
            finished[key] = job
    out: list[Read] = []
    known_steps = {s for s, _ in have}
    for step in spec.steps:
        if step.mode is StepMode.SERVICE and step.image and not step.url and step.name not in known_steps:
            out.append(Read(step=step.name, selector=L.app_service_selector(pipeline, step.name)))
        elif step.warm and run and step.name not in known_steps:  # the run's pool (pools.py)
            out.append(Read(step=step.name, selector=L.run_pool_selector(run, step.name)))
    for (k, image), job in sorted(finished.items(), key=lambda kv: kv[0]):
        name = spec.steps[k].name
        if (name, image) not in have:
            out.append(Read(step=name, image=image, job=job.name, job_uid=job.uid))
    return out


def due(
    reads: Sequence[Read], listed: MutableMapping[str, float], now: float, *, last_chance: bool = False
) -> list[Read]:
    """The `reads` to make at `now` (monotonic seconds). A finished Job's pods are read at once
    (the Job is deleted soon); the pods of a step's Deployment or pool at most every
    `RETRY_SECONDS`, unless this is the `last_chance` (every item is done: a run's pools go
    now, and a run that ends reads no more). `listed` (step -> when they were last listed, kept
    by the caller per run) is updated for those returned."""
    out: list[Read] = []
    for read in reads:
        if read.job is None:
            if not last_chance and now - listed.get(read.step, float("-inf")) < RETRY_SECONDS:
                continue
            listed[read.step] = now
        out.append(read)
    return out


def _may_run_an_image(step: Step) -> bool:
    """Whether any app of the step runs from an image here (not only at someone's url)."""
    return any(app.image and not app.url for app in (step, *(step.alternatives or ())))


def _image_of_job(step: Step, alternative: str | None) -> str | None:
    """The image a Job-mode step Job runs: the step's own, or its alternative's; None for a url
    app or a Service-mode step (its Jobs call the app; they do not run it)."""
    app: App | None = step
    if alternative is not None and alternative != step.name:
        app = next((a for a in step.alternatives or () if a.name == alternative), None)
    if app is None or app.url or not app.image or app.mode is StepMode.SERVICE:
        return None
    if app is step and step.warm:
        return None  # its app is the run's pool, read from the pool's pods
    return app.image


def image_of(pods: Iterable[Mapping[str, Any]], container: str = APP_CONTAINER) -> tuple[str, str] | None:
    """(image, imageID) of `container` in the first pod that ran it (containers and native
    sidecars alike); None when none has an imageID yet."""
    for pod in pods:
        status = pod.get("status") or {}
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            if cs.get("name") == container and cs.get("imageID"):
                spec = pod.get("spec") or {}
                images = {
                    c.get("name"): c.get("image")
                    for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                }
                return str(images.get(container) or cs.get("image") or ""), str(cs["imageID"])
    return None


def merged(
    app_images: Sequence[Mapping[str, Any]] | None, found: Mapping[str, tuple[str, str]]
) -> list[dict[str, Any]] | None:
    """`status.appImages` with the entries just found (step -> (image, imageID)); None when
    nothing is new. Bounded: the oldest entries go first past `MAX_APP_IMAGES`."""
    out = [dict(e) for e in app_images or ()]
    have = {(e.get("step"), e.get("image")) for e in out}
    added = False
    for step, (image, image_id) in found.items():
        if (step, image) not in have:
            out.append({"step": step, "image": image, "imageID": image_id})
            added = True
    return out[-MAX_APP_IMAGES:] if added else None


def digest(image_id: str) -> str | None:
    """`sha256:...` of an imageID (`repo@sha256:...`, or a bare `sha256:...`)."""
    tail = image_id.rsplit("@", 1)[-1]
    return tail if tail.startswith("sha256:") else None


def image_digests(app_images: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """image -> digest, for the lineage of records (the latest entry of an image wins)."""
    out: dict[str, str] = {}
    for e in app_images or ():
        d = digest(str(e.get("imageID") or ""))
        if d and e.get("image"):
            out[str(e["image"])] = d
    return out


async def read_app_images(
    kube: Kube, namespace: str, reads: Sequence[Read], what: str
) -> dict[str, tuple[str, str]]:
    """Make `reads`; step -> (image, imageID) for those that found one. A read that fails is
    logged and tried again on a later pass."""
    found: dict[str, tuple[str, str]] = {}
    for read in reads:
        try:
            if read.job is not None:
                pods = await kube.job_pods(namespace, read.job, uid=read.job_uid)
            else:
                pods = await kube.list("Pod", namespace, dict(read.selector or {}))
        except Exception as e:  # noqa: BLE001  # a read is retried next pass; never fail the pass
            log.warning("%s: reading the image of step %s: %s", what, read.step, e)
            continue
        seen = image_of(pods)
        if seen is not None:
            found[read.step] = seen
    return found
