"""A small, hashable summary of an observed child Job: what a kopf index stores.

A Job is its owner's only when its controller ownerReference has the owner's uid (`owned_by`):
the planners count no other (core/ownership.py). A create the API server refused for good
(the name is held by an object that is not ours, or the Job is invalid: 422) is handed to the
planner as a `refused` summary: a failed Job of that name that does not exist, so its item
(or run) fails with the reason, and nothing is deleted or read for it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmif_operator.core import labels as L

MAX_MESSAGE = 256


class JobKind(enum.StrEnum):
    PREPARE = "prepare"
    STEP = "step"
    MANIFEST = "manifest"
    PUBLISH = "publish"  # a reviewed run's publish Job
    ANALYZE = "analyze"  # an AnalysisJob's item
    ANALYSIS_MANIFEST = "analysis-manifest"  # an AnalysisJob's manifest


class JobState(enum.StrEnum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self is not JobState.ACTIVE


def _true(cond: Mapping[str, Any]) -> bool:
    return str(cond.get("status")) == "True"


def job_state(job: Mapping[str, Any]) -> tuple[JobState, str | None, str | None]:
    """(state, reason, message) from the Job's conditions.

    `SuccessCriteriaMet` / `FailureTarget` come first (Kubernetes >= 1.31) while the last pods
    terminate; `Complete` / `Failed` follow. Either means the outcome is decided.
    """
    conditions = ((job.get("status") or {}).get("conditions")) or []
    for cond in conditions:
        if cond.get("type") in ("Failed", "FailureTarget") and _true(cond):
            return JobState.FAILED, cond.get("reason") or "Failed", _cut(cond.get("message"))
    for cond in conditions:
        if cond.get("type") in ("Complete", "SuccessCriteriaMet") and _true(cond):
            return JobState.SUCCEEDED, None, None
    return JobState.ACTIVE, None, None


def _cut(text: Any) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _controller_uid(meta: Mapping[str, Any]) -> str | None:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return ref.get("uid")
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ObservedJob:
    """One child Job of a run, as the reconciler needs it."""

    name: str
    kind: JobKind
    state: JobState = JobState.ACTIVE
    item: int | None = None  # step Jobs only
    step: int | None = None  # step Jobs only
    reason: str | None = None  # Job condition reason when failed (BackoffLimitExceeded, ...)
    message: str | None = None  # Job condition message when failed (cut)
    run: str | None = None  # the `mmif.dev/run` label (for the index key)
    namespace: str | None = None
    owner_uid: str | None = None  # the controlling PipelineRun's uid (a same-named older run
    # may leave Jobs behind for a moment: they are not ours)
    analysis: str | None = None  # the `mmif.dev/analysis` label (an AnalysisJob's Jobs)
    uid: str | None = None  # the Job's own uid (deletes and pod reads are bound to it)
    exists: bool = True  # False: a refused create (`refused`), no such Job of ours
    created: str | None = None  # metadata.creationTimestamp (RFC 3339)
    alternative: str | None = None  # step Jobs of a step with alternatives: the app serving it
    last_step: int | None = None  # step Jobs only: the last step its pod runs (steps sharing
    # the item's pod: kinds/pipelinerun/shared_pods.py); `step` itself without the label
    pods: int = field(default=0, compare=False)
    # pods the Job controller made so far (active, succeeded,
    # failed): 0 long after `created` means it cannot make one.
    # Not compared: pod counts change no plan (`changes_plan`)

    @property
    def finished(self) -> bool:
        return self.state.finished

    def owned_by(self, owner_uid: str) -> bool:
        """Whether this Job is the owner's: its controller has that uid (a refused create stands
        for the owner's Job that could not be made). No uid to compare (a plan without one):
        taken as the owner's."""
        return not owner_uid or self.owner_uid == owner_uid

    @classmethod
    def from_job(cls, job: Mapping[str, Any]) -> ObservedJob | None:
        """Summarise a Job dict; None when it is not one of ours (unknown component label)."""
        meta = job.get("metadata") or {}
        labels = meta.get("labels") or {}
        try:
            kind = JobKind(labels.get(L.COMPONENT) or "")
        except ValueError:
            return None
        state, reason, message = job_state(job)
        counts = job.get("status") or {}
        uncounted = counts.get("uncountedTerminatedPods") or {}
        pods = sum(_int(counts.get(k)) or 0 for k in ("active", "succeeded", "failed", "terminating")) + sum(
            len(uncounted.get(k) or ()) for k in ("succeeded", "failed")
        )
        item = _int(labels.get(L.ITEM_INDEX))
        step = _int(labels.get(L.STEP_INDEX))
        if kind is JobKind.STEP and (item is None or step is None):
            return None
        if kind is JobKind.ANALYZE and item is None:
            return None
        return cls(
            name=meta.get("name", ""),
            kind=kind,
            state=state,
            item=item if kind in (JobKind.STEP, JobKind.ANALYZE) else None,
            step=step if kind is JobKind.STEP else None,
            reason=reason,
            message=message,
            run=labels.get(L.RUN),
            namespace=meta.get("namespace"),
            owner_uid=_controller_uid(meta),
            analysis=labels.get(L.ANALYSIS),
            uid=meta.get("uid"),
            created=meta.get("creationTimestamp"),
            alternative=labels.get(L.ALTERNATIVE) if kind is JobKind.STEP else None,
            last_step=(_int(labels.get(L.LAST_STEP_INDEX)) or step) if kind is JobKind.STEP else None,
            pods=pods,
        )


# Reasons of a refused create.
R_NAME_CONFLICT = "NameConflict"  # the name is held by an object that is not ours
R_CREATE_FAILED = "CreateFailed"  # the API server refused the Job as invalid (422)
REFUSED_REASONS = (R_NAME_CONFLICT, R_CREATE_FAILED)


def refused(body: Mapping[str, Any], reason: str, message: str) -> ObservedJob | None:
    """The summary of a Job we built (`body`) that the API server will not create: failed, with
    `reason` and `message`, marked as not existing."""
    summary = ObservedJob.from_job(body)
    if summary is None:
        return None
    return dataclasses.replace(
        summary, state=JobState.FAILED, reason=reason, message=_cut(message), uid=None, exists=False
    )


def needs_termination_message(job: ObservedJob) -> bool:
    """Whether the handler should read the Job's pod termination message for `plan_run`:
    a failed Job (why it failed) or a finished prepare Job (the item count)."""
    if not job.exists:
        return False
    return job.state is JobState.FAILED or (job.kind is JobKind.PREPARE and job.finished)


def changes_plan(previous: ObservedJob | None, current: ObservedJob | None) -> bool:
    """Whether a Job going from `previous` to `current` (None: not known before / gone now) can
    change its owner's plan: it finished, it appeared already finished, or it vanished before
    finishing (deleted by someone). A Job appearing active (the owner just created it) or changing
    while active (pod counts) changes nothing the planner reads, and neither does the delete of a
    finished Job (the owner deletes it once its status accounts for it)."""
    if current is None:
        return previous is None or not previous.finished
    if previous is None:
        return current.finished
    return current.finished and (not previous.finished or current != previous)
