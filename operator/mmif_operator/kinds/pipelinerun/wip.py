"""A finished run's work in progress: `spec.workInProgress: Keep | Delete | Archive` (pure).

The run's folder `<mountPath>/<outputDir>/<run>/` (items, manifest, logs) is work in progress
until published. `Delete` removes it, `Archive` moves it to `<outputDir>/.archive/<run>/` (same
volume), both through one runner Job (`mmif-runner dispose`, runner/dispose.py) once the run is
finished and nothing depends on the folder. The outcome is the run's `WorkInProgress` condition:

    reason           status   when
    NotFinished      False    the run is not in a terminal phase yet (acted on once it is)
    HasDescendants   False    an AnalysisJob of the run, or another run whose items come from
                              the folder, exists (named in the message); acted on once gone
    Published        False    the folder is the run's published output (a passed run in a
                              namespace without a record store): never deleted nor archived
    Deleting/Archiving Unknown the Job runs
    Deleted/Archived True     done (final: a second pass does nothing)
    DisposeFailed    False    the Job failed (its message); tried again at the next spec change
    JobConflict      False    a Job of that name exists and is not the run's

Records in a project's record store are never touched: the Job mounts the workspace only.
Decisions here; the kopf timer that applies them is kinds/pipelinerun/wip_handler.py.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mmif_operator.core import names
from mmif_operator.core.observed import JobState, job_state
from mmif_operator.core.status import FALSE, TRUE, UNKNOWN, find_condition, set_condition
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec, RunWorkspace, WorkInProgress
from mmif_operator.kinds.pipelinerun.planning import TERMINAL_PHASES
from mmif_operator.runner.paths import ARCHIVE_DIR, archive_dir

CONDITION = "WorkInProgress"
R_NOT_FINISHED = "NotFinished"
R_HAS_DESCENDANTS = "HasDescendants"
R_PUBLISHED = "Published"
R_DELETING = "Deleting"
R_ARCHIVING = "Archiving"
R_DELETED = "Deleted"
R_ARCHIVED = "Archived"
R_FAILED = "DisposeFailed"
R_JOB_CONFLICT = "JobConflict"
MAX_NAMED = 10  # descendants named in the condition's message (the rest counted)

_DONE = {WorkInProgress.DELETE: R_DELETED, WorkInProgress.ARCHIVE: R_ARCHIVED}
_DOING = {WorkInProgress.DELETE: R_DELETING, WorkInProgress.ARCHIVE: R_ARCHIVING}
# Refusals that only a spec change can lift (looked at again at the next generation).
_FOR_THIS_GENERATION = (R_FAILED, R_PUBLISHED, R_JOB_CONFLICT)


DEFAULT = WorkInProgress.KEEP  # what an unset field means (the model's default is None: unset)


def wanted(spec: Mapping[str, Any] | None) -> WorkInProgress:
    """The action the run asks for (the model's default when unset or unreadable)."""
    value = (spec or {}).get("workInProgress")
    try:
        return WorkInProgress(value) if value else DEFAULT
    except ValueError:
        return DEFAULT


def wants_pass(
    spec: Mapping[str, Any] | None, status: Mapping[str, Any] | None, meta: Mapping[str, Any]
) -> bool:
    """Whether the run needs a pass (the timer's filter): an action asked for and not done, or a
    refusal to clear after the user went back to `Keep`."""
    want = wanted(spec)
    cond = find_condition((status or {}).get("conditions"), CONDITION)
    reason = (cond or {}).get("reason")
    if want is WorkInProgress.KEEP:
        return cond is not None and reason not in (R_DELETED, R_ARCHIVED)
    if reason == R_DELETED or reason == _DONE[want]:
        return False
    same_generation = (cond or {}).get("observedGeneration") == meta.get("generation")
    return not (reason in _FOR_THIS_GENERATION and same_generation)


def _under(path: str | None, folder: str) -> bool:
    if not path:
        return False
    norm = posixpath.normpath(path.lstrip("/"))
    return norm == folder or norm.startswith(folder + "/")


def _workspace(spec: Mapping[str, Any]) -> RunWorkspace | None:
    try:
        return RunWorkspace.from_obj(spec.get("workspace"))
    except ValueError:
        return None


def run_folders(name: str, workspace: RunWorkspace) -> tuple[str, str]:
    """The run's folder and its archive, relative to the workspace's mount path."""
    base = posixpath.normpath(workspace.output_dir)
    return posixpath.join(base, name), posixpath.join(base, ARCHIVE_DIR, name)


def descendants(
    run: Mapping[str, Any], analysis_jobs: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]]
) -> list[str]:
    """What used the run's outputs, as `Kind/name`: the namespace's AnalysisJobs of the run
    (`spec.runRef`), and its other runs on the same claim with an item's `mmif` or their
    `itemsFrom.path` inside the run's folder (or its archive), unless their own work in progress
    is deleted. (Lines of another run's `itemsFrom` file are on the volume, not looked at.)"""
    meta = run.get("metadata") or {}
    name = meta.get("name") or ""
    spec = run.get("spec") or {}
    workspace = _workspace(spec)
    found = [
        f"AnalysisJob/{(a.get('metadata') or {}).get('name')}"
        for a in analysis_jobs
        if ((a.get("spec") or {}).get("runRef") or {}).get("name") == name
    ]
    if workspace is None:
        return sorted(found)
    folders = run_folders(name, workspace)
    for other in runs:
        other_meta = other.get("metadata") or {}
        if other_meta.get("name") == name:
            continue
        other_spec = other.get("spec") or {}
        if ((other_spec.get("workspace") or {}).get("claimName")) != workspace.claim_name:
            continue
        cond = find_condition((other.get("status") or {}).get("conditions"), CONDITION)
        if cond and cond.get("reason") == R_DELETED:
            continue
        paths = [(other_spec.get("itemsFrom") or {}).get("path")]
        paths += [i.get("mmif") for i in other_spec.get("items") or () if isinstance(i, Mapping)]
        if any(_under(p, f) for p in paths for f in folders):
            found.append(f"PipelineRun/{other_meta.get('name')}")
    return sorted(found)


def published_here(status: Mapping[str, Any], has_record_store: bool) -> bool:
    """The run's folder is its published output: it passed its review and was published
    (`review.recordPath`) where no record store took a copy."""
    review = status.get("review") or {}
    return not has_record_store and status.get("phase") == "Succeeded" and bool(review.get("recordPath"))


@dataclass
class WipPlan:
    """What a pass does: create the Job, write the conditions, then delete a Job (in that order)."""

    conditions: list[dict[str, Any]] | None = None  # the new conditions list (None: unchanged)
    create: dict[str, Any] | None = None
    delete_job: str | None = None
    needs_listing: bool = False  # call again with the namespace's AnalysisJobs and runs
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def _is_ours(job: Mapping[str, Any], uid: str) -> bool:
    refs = (job.get("metadata") or {}).get("ownerReferences") or ()
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


def _list(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    return shown + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def plan_wip(
    run: Mapping[str, Any],
    *,
    job: Mapping[str, Any] | None,
    has_record_store: bool,
    operator_image: str,
    now: datetime,
    listed: tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]] | None = None,
) -> WipPlan:
    """One pass. `job`: the Job of the wanted action's name, if any; `listed`: the namespace's
    (AnalysisJobs, PipelineRuns), when the plan asked for them (`needs_listing`)."""
    meta = run.get("metadata") or {}
    spec = run.get("spec") or {}
    status = run.get("status") or {}
    generation = meta.get("generation")
    conditions = status.get("conditions")
    cond = find_condition(conditions, CONDITION)
    want = wanted(spec)
    plan = WipPlan()

    def say(st: str, reason: str, message: str) -> WipPlan:
        same = cond is not None and (cond.get("status"), cond.get("reason"), cond.get("message")) == (
            st,
            reason,
            message,
        )
        if not same or (cond or {}).get("observedGeneration") != generation:
            plan.conditions = set_condition(conditions, CONDITION, st, reason, message, now, generation)
            if not same and st != UNKNOWN:
                plan.events.append(("Normal" if st == TRUE else "Warning", reason, message))
        return plan

    if want is WorkInProgress.KEEP:
        if cond is not None and cond.get("reason") not in (R_DELETED, R_ARCHIVED):
            plan.conditions = [dict(c) for c in conditions or () if c.get("type") != CONDITION]
        return plan
    if cond is not None and (cond.get("reason") == R_DELETED or cond.get("reason") == _DONE[want]):
        return plan  # done: nothing more
    verb = "deleted" if want is WorkInProgress.DELETE else "archived"
    if status.get("phase") not in TERMINAL_PHASES:
        return say(
            FALSE,
            R_NOT_FINISHED,
            f"the run is {status.get('phase') or 'Pending'}: its work in progress is {verb} once it is finished",
        )
    if published_here(status, has_record_store):
        return say(
            FALSE,
            R_PUBLISHED,
            f"the run's folder is its published output (no record store took a copy): it is not {verb}",
        )
    try:
        parsed = PipelineRunSpec.from_obj(spec)
    except ValueError as e:
        return say(FALSE, R_FAILED, f"the run's spec does not parse: {e}")
    job_name = names.wip_job_name(meta.get("name") or "", want.value)
    folder, archive = run_folders(meta.get("name") or "", parsed.workspace)
    target = (
        folder
        if want is WorkInProgress.ARCHIVE or cond is None or cond.get("reason") != R_ARCHIVED
        else archive
    )
    if job is not None and not _is_ours(job, meta.get("uid") or ""):
        return say(FALSE, R_JOB_CONFLICT, f"a Job {job_name} exists and is not this run's: nothing is {verb}")
    if job is not None:
        state, _, message = job_state(job)
        if state is JobState.SUCCEEDED:
            plan.delete_job = job_name  # after the condition records the outcome
            done = f"{target} {verb}" if want is WorkInProgress.DELETE else f"{folder} {verb} in {archive}"
            return say(TRUE, _DONE[want], f"{done}; records, if any, are kept")
        if state is JobState.FAILED:
            if (
                cond is not None
                and cond.get("reason") == R_FAILED
                and cond.get("observedGeneration") != generation
            ):
                plan.delete_job = job_name  # asked again (a new generation): the next pass retries
                return plan
            return say(FALSE, R_FAILED, f"the Job {job_name} failed: {message or 'see its pod log'}")
        return say(UNKNOWN, _DOING[want], f"the Job {job_name}: {target} is being {verb}")
    if listed is None:
        plan.needs_listing = True
        return plan
    found = descendants(run, *listed)
    if found:
        return say(
            FALSE,
            R_HAS_DESCENDANTS,
            f"not {verb} while {len(found)} descendant(s) used the run's outputs: {_list(found)}",
        )
    ctx = J.RunContext.from_run(meta, parsed)
    mount = parsed.workspace.mount_path
    plan.create = J.wip_job(
        ctx, operator_image, want.value, archive_dir(ctx.name, mount, parsed.workspace.output_dir)
    )
    return say(UNKNOWN, _DOING[want], f"the Job {job_name}: {target} is being {verb}")
