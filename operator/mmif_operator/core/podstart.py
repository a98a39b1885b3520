"""Pods that cannot start, as a pure decision: which active Jobs fail, why, and when to look again.

A Job's pod that never starts makes no Job event: the Job stays active, its item "in flight",
for ever (a missing image, an unschedulable pod, a volume that cannot be mounted, a namespace
whose Pod Security level refuses the pod). The run's and the AnalysisJob's loops therefore look,
beside the loop, at their owner's Pending pods, and call `check_pod_starts` with them, the
owner's Jobs as the index shows them, the Events asked for, each Job's bound and the time:

* a pod whose container waits for a reason that cannot heal (`NEVER_HEALS`: an invalid image
  name, an image that may never be pulled) fails its Job at once;
* a pod that has not started its containers within the Job's bound (the app's
  `startupTimeoutSeconds`; for a run's prepare and manifest Jobs the run's
  `startTimeoutSeconds`) fails its Job with the reason read from the pod (`Unschedulable`,
  `ImagePullFailed`, `MountFailed`, ...) and the scheduler's or kubelet's message;
* a Job that has made no pod at all within its bound fails with `PodCreateFailed` and the Job
  controller's `FailedCreate` message (e.g. the PodSecurity refusal);
* but a pod the scheduler turns down for capacity alone (`Insufficient cpu`, `Too many pods`)
  while a pod of the same owner holds room on a node (it runs, or is scheduled and creating its
  containers) is queued behind its own siblings, not stuck: capacity comes
  back when they end (a `parallelism` above what the nodes hold is ordinary, as with Argo's). It
  is counted in `PodStartCheck.queued` and looked at again; its bound applies once none of the
  owner's pods runs. The owner's progress deadline still bounds the whole wait.

Every Job whose pod has waited for capacity alone for `ROOM_HOLD_SECONDS` or more is also named
in `PodStartCheck.waiting_for_room`: while one is, the run starts no new item (`hold_starts` in
kinds/pipelinerun/planning.py) and the pods are looked at every `ROOM_CHECK_SECONDS`. The
scheduler tries a new pod before one it turned down (that one waits out a back-off), so a run
that kept starting items as room came back could starve its oldest pods: they would wait, behind
their own younger siblings, until their bound failed them. A pod waiting a few seconds is the
ordinary churn of a full node, and holds nothing.

The loop hands each failure to its planner as the Job observed failed (`as_failed`): the planner
records the item's failure and deletes the Job, as for any failed Job. Everything is recomputed
from pods, Jobs and Events, so a restarted operator decides the same.

`check_pod_starts` is called twice when it needs Events (pods' `FailedMount`, Jobs'
`FailedCreate`): first without, then with the Events of the objects it asked for
(`PodStartCheck.want_events`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mmif_operator.core import labels as L
from mmif_operator.core.observed import JobKind, JobState, ObservedJob
from mmif_operator.core.status import cut, parse_time

if TYPE_CHECKING:
    from mmif_operator.kinds.pipeline.app import App
    from mmif_operator.kinds.pipeline.model import PipelineSpec
    from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec

MAX_MESSAGE = 512
CHECK_SECONDS = 30.0  # at most this long between two looks at a busy owner's pods
MIN_CHECK_SECONDS = 1.0
ROOM_HOLD_SECONDS = 60.0  # a pod waiting for room this long holds its run's new items
ROOM_CHECK_SECONDS = 5.0  # between two looks while it does


# Reasons (CamelCase) an item fails with.
R_IMAGE_PULL_FAILED = "ImagePullFailed"
R_UNSCHEDULABLE = "Unschedulable"
R_MOUNT_FAILED = "MountFailed"
R_CONTAINER_CREATE_FAILED = "ContainerCreateFailed"
R_POD_CREATE_FAILED = "PodCreateFailed"
R_POD_START_TIMEOUT = "PodStartTimeout"

# Container waiting reasons that no wait will cure: the image name itself is wrong, or the pod
# may never pull it (imagePullPolicy Never).
NEVER_HEALS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
_IMAGE_PULL = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "RegistryUnavailable", "SignatureValidationFailed"}
)
_CREATE = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
_MOUNT_WORDS = ("subpath", "volume", "mount")
_MOUNT_EVENTS = frozenset({"FailedMount", "FailedAttachVolume", "FailedMapVolume"})


@dataclass(frozen=True)
class StartFailure:
    """A Job whose pod could not start: the reason and message its item fails with."""

    job: str
    reason: str
    message: str


@dataclass
class PodStartCheck:
    failures: list[StartFailure] = field(default_factory=list)
    want_events: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) still to read
    next_check: float = CHECK_SECONDS  # seconds until the next look
    queued: list[str] = field(default_factory=list)  # Jobs whose pod waits for capacity behind siblings
    # Jobs whose pod has waited for capacity alone ROOM_HOLD_SECONDS or more (no item starts meanwhile).
    waiting_for_room: list[str] = field(default_factory=list)


def as_failed(job: ObservedJob, failure: StartFailure) -> ObservedJob:
    """The Job as the planner should see it: failed, with the start failure's reason and message."""
    return dataclasses.replace(job, state=JobState.FAILED, reason=failure.reason, message=failure.message)


def apply_start_failures(
    observed: Iterable[ObservedJob], failures: Mapping[str, StartFailure]
) -> list[ObservedJob]:
    """`observed` with every still-active Job named in `failures` turned failed (`as_failed`)."""
    return [
        as_failed(j, failures[j.name]) if j.name in failures and j.state is JobState.ACTIVE else j
        for j in observed
    ]


def job_of_pod(pod: Mapping[str, Any]) -> str | None:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    for key in L.JOB_NAME_LABELS:
        if labels.get(key):
            return labels[key]
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "Job" and ref.get("controller"):
            return ref.get("name")
    return None


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _waiting(pod: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(container, reason, message) of every waiting container, init containers first."""
    out = []
    for cs in _statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting is not None:
            out.append((cs.get("name") or "?", waiting.get("reason") or "", waiting.get("message") or ""))
    return out


def _image_of(pod: Mapping[str, Any], container: str) -> str:
    for cs in _statuses(pod):
        if cs.get("name") == container and cs.get("image"):
            return cs["image"]
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if c.get("name") == container:
            return c.get("image") or ""
    return ""


def _condition(pod: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return cond
    return None


def _when(event: Mapping[str, Any]) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""


def _latest(
    events: Iterable[Mapping[str, Any]], reasons: frozenset[str] | None = None, warning_only: bool = True
) -> Mapping[str, Any] | None:
    best, key = None, ""
    for ev in events:
        if warning_only and ev.get("type") != "Warning":
            continue
        if reasons is not None and ev.get("reason") not in reasons:
            continue
        when = _when(ev)
        if best is None or when >= key:
            best, key = ev, when
    return best


def _scheduled(pod: Mapping[str, Any]) -> bool:
    """Whether the pod is bound to a node (it holds its requests there, and frees them when it ends)."""
    if (pod.get("spec") or {}).get("nodeName"):
        return True
    scheduled = _condition(pod, "PodScheduled")
    return scheduled is not None and str(scheduled.get("status")) == "True"


_CAPACITY_WORDS = ("insufficient ", "too many pods")


def waits_for_capacity(pod: Mapping[str, Any]) -> bool:
    """Whether the scheduler turned the pod down for lack of room alone: every reason it gives
    is a resource the nodes have too little of now (a node selector, taint or volume that no node
    matches heals with no pod ending, and is not this)."""
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is None or str(scheduled.get("status")) != "False":
        return False
    if scheduled.get("reason") != "Unschedulable":
        return False
    message = (scheduled.get("message") or "").lower()
    # "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient memory. preemption: ..."
    head = message.split("preemption:", 1)[0]
    reasons = [r.strip() for r in head.split(":", 1)[-1].replace(".", ",").split(",") if r.strip()]
    return bool(reasons) and all(any(w in r for w in _CAPACITY_WORDS) for r in reasons)


def _never_heals(pod: Mapping[str, Any]) -> StartFailure | None:
    name = (pod.get("metadata") or {}).get("name", "")
    for container, reason, message in _waiting(pod):
        if reason in NEVER_HEALS:
            image = _image_of(pod, container)
            return StartFailure(
                job_of_pod(pod) or "",
                R_IMAGE_PULL_FAILED,
                cut(
                    f"pod {name}: container {container} (image {image!r}): {reason}: {message}".rstrip(": "),
                    MAX_MESSAGE,
                ),
            )
    return None


def _why_not_started(
    pod: Mapping[str, Any],
    bound: int,
    events: Mapping[str, Sequence[Mapping[str, Any]]],
) -> StartFailure | tuple[str, str] | None:
    """Why a pod past its bound has not started: a StartFailure, or ("Pod", name) when its Events
    are needed to say, or None when it did start after all."""
    meta = pod.get("metadata") or {}
    name = meta.get("name", "")
    job = job_of_pod(pod) or ""
    late = f"not started within {bound} s"
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is not None and str(scheduled.get("status")) == "False":
        detail = scheduled.get("message") or scheduled.get("reason") or "not scheduled"
        return StartFailure(
            job, R_UNSCHEDULABLE, cut(f"pod {name} not scheduled within {bound} s: {detail}", MAX_MESSAGE)
        )
    waiting = _waiting(pod)
    for container, reason, message in waiting:
        if reason in _IMAGE_PULL:
            image = _image_of(pod, container)
            return StartFailure(
                job,
                R_IMAGE_PULL_FAILED,
                cut(
                    f"pod {name} {late}: container {container} (image {image!r}): {reason}: {message}".rstrip(
                        ": "
                    ),
                    MAX_MESSAGE,
                ),
            )
    for container, reason, message in waiting:
        if reason in _CREATE:
            mount = any(w in message.lower() for w in _MOUNT_WORDS)
            return StartFailure(
                job,
                R_MOUNT_FAILED if mount else R_CONTAINER_CREATE_FAILED,
                cut(
                    f"pod {name} {late}: container {container}: {reason}: {message}".rstrip(": "), MAX_MESSAGE
                ),
            )
    if (pod.get("status") or {}).get("phase") not in (None, "Pending"):
        return None
    if name not in events:
        return ("Pod", name)
    pod_events = events[name]
    mount_event = _latest(pod_events, _MOUNT_EVENTS)
    if mount_event is not None:
        return StartFailure(
            job,
            R_MOUNT_FAILED,
            cut(
                f"pod {name} {late}: {mount_event.get('reason')}: {mount_event.get('message') or ''}".rstrip(
                    ": "
                ),
                MAX_MESSAGE,
            ),
        )
    # The kubelet's last complaint, when the container statuses have moved on meanwhile (a
    # container that cannot be created shows `PodInitializing` between two attempts).
    warning = _latest(pod_events)
    if warning is not None:
        text = (warning.get("message") or "").lower()
        why = (
            R_MOUNT_FAILED
            if any(w in text for w in _MOUNT_WORDS)
            else R_IMAGE_PULL_FAILED
            if "image" in text and ("pull" in text or "pulling" in text)
            else None
        )
        if why is not None:
            return StartFailure(
                job,
                why,
                cut(f"pod {name} {late}: {warning.get('reason')}: {warning.get('message')}", MAX_MESSAGE),
            )
    state = ", ".join(f"container {c}: {r}" for c, r, _ in waiting if r) or "Pending"
    last = warning or _latest(pod_events, warning_only=False)
    text = f"pod {name} {late} ({state})"
    if last is not None:
        text += f"; last event {last.get('reason')}: {last.get('message') or ''}".rstrip(": ")
    return StartFailure(job, R_POD_START_TIMEOUT, cut(text, MAX_MESSAGE))


def check_pod_starts(
    jobs: Iterable[ObservedJob],
    pods: Iterable[Mapping[str, Any]],
    bound: Callable[[ObservedJob], int],
    now: datetime,
    *,
    events: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    min_bound: float | None = None,
) -> PodStartCheck:
    """Which active Jobs fail because their pod cannot start (see the module docstring).

    jobs: the owner's Jobs (`ObservedJob`, with `created` and `pods`); finished ones are skipped.
    pods: the owner's Pending pods (others may be missing: a running pod is not asked about).
    bound: seconds a Job's pod may take to start.
    events: object name -> its Events, for the objects an earlier call asked for (`want_events`).
    min_bound: the smallest bound a Job of this owner may get (so that a Job created after this
        look is looked at again in time); the next look is at most `CHECK_SECONDS` away.
    """
    events = events or {}
    out = PodStartCheck()
    by_job: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        job_name = job_of_pod(pod)
        if job_name and not meta.get("deletionTimestamp"):
            by_job.setdefault(job_name, []).append(pod)
    next_check = CHECK_SECONDS if min_bound is None else min(CHECK_SECONDS, float(min_bound))
    # Capacity comes back when a pod of the owner's ends: one holds room on a node when its Job
    # is active, made a pod, and that pod is not Pending (it runs, or has just ended) or is
    # Pending but scheduled (creating its containers: on a busy node, most of a short pod's life).
    sibling_runs = any(
        j.state is JobState.ACTIVE
        and j.pods > 0
        and (j.name not in by_job or any(_scheduled(p) for p in by_job[j.name]))
        for j in jobs
    )

    for job in jobs:
        if job.state is not JobState.ACTIVE:
            continue
        limit = int(bound(job))
        pending = sorted(
            by_job.get(job.name, ()), key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""
        )
        failure: StartFailure | None = None
        if pending:
            for pod in pending:
                failure = _never_heals(pod)
                if failure is not None:
                    break
            if failure is None:
                pod = pending[-1]  # the newest attempt: an earlier one may be going away
                created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
                age = (now - created).total_seconds() if created is not None else 0.0
                if waits_for_capacity(pod):
                    if age >= ROOM_HOLD_SECONDS:
                        out.waiting_for_room.append(job.name)
                    else:
                        next_check = min(next_check, ROOM_HOLD_SECONDS - age)
                if age < limit:
                    next_check = min(next_check, limit - age)
                    continue
                if sibling_runs and waits_for_capacity(pod):
                    out.queued.append(job.name)
                    continue
                verdict = _why_not_started(pod, limit, events)
                if isinstance(verdict, tuple):
                    out.want_events.append(verdict)
                    continue
                failure = verdict
        elif job.pods == 0:
            created = parse_time(job.created)
            if created is None:
                continue
            age = (now - created).total_seconds()
            if age < limit:
                next_check = min(next_check, limit - age)
                continue
            if job.name not in events:
                out.want_events.append(("Job", job.name))
                continue
            # No pod now is not "could not make one": a pod evicted a moment ago (not counted as
            # failed) is being replaced. Only a refusal after the last pod made, or never a pod
            # nor an Event in all that time, fails the Job.
            refused = _latest(events[job.name], frozenset({"FailedCreate"}))
            made = _latest(events[job.name], frozenset({"SuccessfulCreate"}), warning_only=False)
            if made is not None and (refused is None or _when(made) >= _when(refused)):
                next_check = min(next_check, float(limit))
                continue
            detail = (refused.get("message") if refused else None) or "no FailedCreate event says why"
            failure = StartFailure(
                job.name,
                R_POD_CREATE_FAILED,
                cut(f"Job {job.name} made no pod within {limit} s: {detail}", MAX_MESSAGE),
            )
        if failure is not None:
            out.failures.append(dataclasses.replace(failure, job=job.name))
    failed = {f.job for f in out.failures}
    out.waiting_for_room = [j for j in out.waiting_for_room if j not in failed]
    if out.waiting_for_room:
        # The run holds its new items until these are placed: look again soon to let them go.
        next_check = min(next_check, ROOM_CHECK_SECONDS)
    out.next_check = max(MIN_CHECK_SECONDS, next_check)
    return out


# -- the bounds of a run's and an AnalysisJob's Jobs ------------------------------------------


@dataclass(frozen=True)
class Bounds:
    """Seconds each Job of one owner may take to start a pod, and the smallest of them."""

    of: Callable[[ObservedJob], int]
    smallest: int


def run_bounds(spec: PipelineRunSpec, snapshot: PipelineSpec | None) -> Bounds:
    """A run's step Jobs: their step's `startupTimeoutSeconds` (the snapshot's); its prepare and
    manifest Jobs (the operator's image only): the run's `startTimeoutSeconds`."""
    steps = snapshot.steps if snapshot is not None else []
    per_step = [s.startup_timeout_seconds for s in steps]
    # A step Job serving an alternative (label mmif.dev/alternative): that app's bound.
    per_alternative = {
        (k, a.name): a.startup_timeout_seconds for k, s in enumerate(steps) for a in s.alternatives
    }
    own = spec.start_timeout_seconds

    def of(job: ObservedJob) -> int:
        if job.kind is JobKind.STEP and job.step is not None and 0 <= job.step < len(per_step):
            return per_alternative.get((job.step, job.alternative or ""), per_step[job.step])
        return own

    return Bounds(of, min([own, *per_step, *per_alternative.values()]))


def analysis_bounds(app: App) -> Bounds:
    """An AnalysisJob's Jobs: its app's `startupTimeoutSeconds`."""
    limit = app.startup_timeout_seconds
    return Bounds(lambda _job: limit, limit)
