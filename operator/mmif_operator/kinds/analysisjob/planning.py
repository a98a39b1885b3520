"""The AnalysisJob reconciler, as a pure function: `plan_analysis(...) -> AnalysisPlan`.

Inputs: the AnalysisJob, its source PipelineRun (None when missing) and the AnalysisJob's Jobs as
observed. The handler applies the plan as for runs: create Jobs (409 = fine), merge-patch the
status conditional on the resourceVersion read, then delete the Jobs the status now accounts for,
then post the Events.

Which items: those the run has SUCCEEDED (its `status.itemStates`). `Live` takes each as soon as
the run records it; `AfterRun` waits until the run has ended. The analysis ends when the run has
ended and every item the run succeeded is processed (then its manifest Job runs). Per-item state
is the run's encoding (`itemstates`, step always 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mmif_operator.core import failurereasons, itemstates, names, runner_input
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.core.observed import REFUSED_REASONS, JobKind, JobState, ObservedJob
from mmif_operator.core.specs import InvalidSpec, parse_spec
from mmif_operator.core.status import FALSE, TRUE, UNKNOWN, capped, cut, rfc3339, set_condition
from mmif_operator.kinds.analysisjob import children as AJ
from mmif_operator.kinds.analysisjob.model import MAX_FAILURE_MESSAGE, MAX_FAILURES, AnalysisJobSpec, Trigger
from mmif_operator.kinds.pipelinerun.model import RunWorkspace
from mmif_operator.kinds.pipelinerun.planning import TERMINAL_PHASES as RUN_TERMINAL_PHASES
from mmif_operator.kinds.pipelinerun.planning import Event, parse_termination_message
from mmif_operator.runner.paths import MANIFEST_FILE

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)
LIVE, AFTER_RUN = "Live", "AfterRun"
CONDITION_SUCCEEDED = "Succeeded"

R_RUN_NOT_FOUND = "RunNotFound"
R_WAITING_FOR_RUN = "WaitingForRun"
R_RUNNING = "Running"
R_FINALIZING = "Finalizing"
R_SUCCEEDED = "Succeeded"
R_NOTHING_TO_PROCESS = "NothingToProcess"
R_ITEMS_FAILED = "ItemsFailed"
R_MANIFEST_FAILED = "ManifestFailed"
R_INVALID_STATUS = "InvalidStatus"
R_INVALID_SPEC = "InvalidSpec"

WAIT_REQUEUE_SECONDS = 30.0
_JOB_REASONS = {
    "DeadlineExceeded": "Timeout",
    "BackoffLimitExceeded": "BackoffLimitExceeded",
    "PodFailurePolicy": "PodFailurePolicy",
}


@dataclass(frozen=True)
class Analysis:
    """An AnalysisJob as the planner reads it: its spec parsed into the model (defaults
    applied); metadata and status as stored (the operator's own bookkeeping)."""

    meta: Mapping[str, Any]
    spec: AnalysisJobSpec
    status: Mapping[str, Any]


@dataclass(frozen=True)
class SourceRun:
    """What an analysis reads of its source PipelineRun: its metadata, its workspace (parsed:
    only this part of the run's spec, not its items) and its status as stored."""

    meta: Mapping[str, Any]
    workspace: RunWorkspace
    status: Mapping[str, Any]


def parse_analysis(body: Mapping[str, Any]) -> Analysis:
    """The AnalysisJob object, parsed where it enters (`InvalidSpec` naming the field)."""
    return Analysis(
        meta=body.get("metadata") or {},
        spec=parse_spec(AnalysisJobSpec, body.get("spec")),
        status=body.get("status") or {},
    )


def parse_source_run(body: Mapping[str, Any]) -> SourceRun:
    """The source PipelineRun, as far as an analysis reads it (`InvalidSpec` when its
    `spec.workspace` does not parse)."""
    return SourceRun(
        meta=body.get("metadata") or {},
        workspace=parse_spec(
            RunWorkspace, (body.get("spec") or {}).get("workspace"), "the run's spec.workspace"
        ),
        status=body.get("status") or {},
    )


@dataclass
class AnalysisPlan:
    phase: str
    create: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    create_config_maps: list[dict[str, Any]] = field(default_factory=list)  # before `create`
    delete_config_maps: list[str] = field(default_factory=list)  # runner inputs read already
    status: dict[str, Any] = field(default_factory=dict)
    status_patch: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL_PHASES


def needs_termination_messages(observed: Iterable[ObservedJob]) -> list[str]:
    """The Jobs whose termination message the planner reads: the failed ones."""
    return [
        j.name
        for j in observed
        if j.state is JobState.FAILED and j.exists and j.kind in (JobKind.ANALYZE, JobKind.ANALYSIS_MANIFEST)
    ]


class _Planner:
    def __init__(
        self,
        analysis: Analysis,
        run: SourceRun | None,
        observed: Iterable[ObservedJob],
        now: datetime,
        operator_image: str,
        termination_messages: Mapping[str, Any],
    ):
        self.meta = analysis.meta
        self.spec = analysis.spec
        self.old = dict(analysis.status)
        self.status: dict[str, Any] = dict(self.old)
        self.run = run
        self.uid = self.meta.get("uid") or ""
        # Only Jobs controlled by this AnalysisJob's uid (core/ownership.py).
        self.observed = [j for j in observed if j.owned_by(self.uid)]
        self.now = now
        self.image = operator_image
        self.tms = termination_messages
        self.plan = AnalysisPlan(phase=self.old.get("phase") or PENDING)

    # -- small pieces -------------------------------------------------------------------------
    def _condition(self, status: str, reason: str, message: str) -> None:
        self.status["conditions"] = set_condition(
            self.status.get("conditions"),
            CONDITION_SUCCEEDED,
            status,
            reason,
            message,
            self.now,
            self.meta.get("generation"),
        )

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(type_, reason, cut(message, 1024)))

    def _delete(self, job: ObservedJob) -> None:
        if job.exists and job.name not in self.plan.delete:  # never a refused create's name
            self.plan.delete.append(job.name)

    def _phase(self, phase: str) -> None:
        if phase != self.plan.phase:
            if phase == RUNNING and not self.status.get("startTime"):
                self.status["startTime"] = rfc3339(self.now)
            if phase in TERMINAL_PHASES:
                self.status["completionTime"] = rfc3339(self.now)
        self.plan.phase = phase

    def _wait(self, reason: str, message: str) -> AnalysisPlan:
        self._condition(UNKNOWN, reason, message)
        self.plan.requeue_after = WAIT_REQUEUE_SECONDS
        return self._finish()

    def _finish(self) -> AnalysisPlan:
        self.status["phase"] = self.plan.phase
        if self.meta.get("generation") is not None:
            self.status["observedGeneration"] = self.meta["generation"]
        self.plan.status = self.status
        self.plan.status_patch = {k: v for k, v in self.status.items() if self.old.get(k) != v}
        if self.plan.phase != (self.old.get("phase") or None):
            self._phase_event()
        return self.plan

    def _phase_event(self) -> None:
        cond: dict[str, Any] = next(
            (c for c in self.status.get("conditions") or () if c.get("type") == CONDITION_SUCCEEDED), {}
        )
        if self.plan.phase == RUNNING:
            self._event("Normal", "Started", cond.get("message", ""))
        elif self.plan.phase == SUCCEEDED:
            self._event("Normal", cond.get("reason", R_SUCCEEDED), cond.get("message", ""))
        elif self.plan.phase == FAILED:
            self._event("Warning", cond.get("reason", FAILED), cond.get("message", ""))

    # -- the plan -----------------------------------------------------------------------------
    def make(self) -> AnalysisPlan:
        if self.plan.phase in TERMINAL_PHASES:
            # Over: only sweep finished Jobs left behind (e.g. created by a pass that lost a race).
            self.plan.delete = [j.name for j in self.observed if j.finished and j.exists]
            self.plan.status = self.status
            return self.plan
        run_name = self.spec.run_ref.name
        if self.run is None:
            return self._wait(
                R_RUN_NOT_FOUND, f"PipelineRun {run_name} not found in namespace {self.meta.get('namespace')}"
            )
        run_status = self.run.status
        run_phase = run_status.get("phase") or PENDING
        run_over = run_phase in RUN_TERMINAL_PHASES
        count = run_status.get("itemCount")
        if count is None:
            if run_over:
                self._phase(SUCCEEDED)
                self._condition(
                    TRUE,
                    R_NOTHING_TO_PROCESS,
                    f"run {run_name} ended {run_phase} before its items were prepared",
                )
                self.status.update(progress="0/0", itemsTotal=0)
                return self._finish()
            return self._wait(R_WAITING_FOR_RUN, f"waiting for run {run_name} to prepare its items")
        if self.spec.trigger is Trigger.AFTER_RUN and not run_over:
            return self._wait(
                R_WAITING_FOR_RUN,
                f"starts when run {run_name} ends (now {run_phase}, "
                f"{run_status.get('progress') or '0/' + str(count)})",
            )
        try:
            source = itemstates.decode(run_status.get("itemStates"), count)
            states = itemstates.decode(self.old.get("itemStates"), count)
        except ValueError as e:
            return self._wait(R_INVALID_STATUS, f"item states unreadable: {e}")
        ctx = AJ.AnalysisContext.from_objects(self.meta, self.run.meta, self.run.workspace, self.run.status)
        self._record(states)
        if any(s.phase is ItemPhase.SUCCEEDED for s in states):
            # Reported once it exists: an item that succeeded claimed it and wrote into it.
            self.status["outputPath"] = ctx.analysis_dir
        self._start(ctx, states, source)
        eligible = [i for i, s in enumerate(source) if s.phase is ItemPhase.SUCCEEDED]
        total = sum(
            1 for s in source if s.phase in (ItemPhase.SUCCEEDED, ItemPhase.PENDING, ItemPhase.RUNNING)
        )
        succeeded = sum(1 for s in states if s.phase is ItemPhase.SUCCEEDED)
        failed = sum(1 for s in states if s.phase is ItemPhase.FAILED)
        running = sum(1 for s in states if s.phase is ItemPhase.RUNNING)
        self.status.update(
            itemStates=itemstates.encode(states),
            itemsTotal=total,
            itemsRunning=running,
            itemsSucceeded=succeeded,
            itemsFailed=failed,
            progress=f"{succeeded + failed}/{total}",
        )
        if run_over and all(states[i].phase.terminal for i in eligible):
            return self._finalize(ctx, states, succeeded, failed)
        if self.plan.create or running or self.plan.phase == RUNNING:
            self._phase(RUNNING)
            more = "" if run_over else f"; run {run_name} is {run_phase}"
            self._condition(UNKNOWN, R_RUNNING, f"{succeeded + failed}/{total} items processed{more}")
        else:
            self._condition(UNKNOWN, R_WAITING_FOR_RUN, f"no item of run {run_name} has succeeded yet")
        return self._finish()

    def _record(self, states: list[ItemState]) -> None:
        """Finished analyze Jobs -> item states (once), and delete them."""
        new_failures: list[dict[str, Any]] = []
        codes: list[int] | None = None
        for job in self.observed:
            if job.kind is not JobKind.ANALYZE or job.item is None:
                continue
            if not 0 <= job.item < len(states):
                self._delete(job)
                continue
            if not job.finished:
                continue
            self._delete(job)
            if states[job.item].phase.terminal:
                continue  # already recorded by an earlier pass
            if job.state is JobState.SUCCEEDED:
                states[job.item] = ItemState(0, ItemPhase.SUCCEEDED)
                continue
            states[job.item] = ItemState(0, ItemPhase.FAILED)
            msg = parse_termination_message(self.tms.get(job.name))
            reason = msg.get("reason") if isinstance(msg.get("reason"), str) and msg.get("reason") else None
            reason = reason or _JOB_REASONS.get(job.reason or "", job.reason or "Failed")
            message = msg.get("message") or job.message or ""
            failure: dict[str, Any] = {
                "index": job.item,
                "reason": cut(reason, 128),
                "message": cut(message, MAX_FAILURE_MESSAGE),
                "time": rfc3339(self.now),
            }
            if isinstance(msg.get("name"), str) and msg["name"]:
                failure = {"item": msg["name"][:63], **failure}
            if not msg:  # no pod wrote why (it could not start): kept for the manifest
                if codes is None:
                    codes = failurereasons.decode(self.status.get("itemFailureReasons"), len(states))
                    self.status["failureReasons"] = [dict(r) for r in self.status.get("failureReasons") or []]
                failurereasons.record(
                    self.status["failureReasons"],
                    codes,
                    job.item,
                    None,
                    failure["reason"],
                    failure["message"],
                )
                self.status["itemFailureReasons"] = failurereasons.encode(codes)
            new_failures.append(failure)
            self._event("Warning", "ItemFailed", f"item {job.item}: {reason}: {message}")
        if new_failures:
            self.status["failures"] = capped(
                [*(self.status.get("failures") or []), *new_failures], MAX_FAILURES
            )

    def _start(self, ctx: AJ.AnalysisContext, states: list[ItemState], source: list[ItemState]) -> None:
        """(Re)create the Job of every item in flight, then start eligible items up to parallelism."""
        has_job = {j.item for j in self.observed if j.kind is JobKind.ANALYZE}
        running = [i for i, s in enumerate(states) if s.phase is ItemPhase.RUNNING]
        for i in running:
            if i not in has_job:
                self.plan.create.append(AJ.analyze_job(ctx, self.spec.app, i, self.image))
        slots = self.spec.parallelism - len(running)
        for i, src in enumerate(source):
            if slots <= 0:
                break
            if src.phase is ItemPhase.SUCCEEDED and states[i].phase is ItemPhase.PENDING:
                states[i] = ItemState(0, ItemPhase.RUNNING)
                self.plan.create.append(AJ.analyze_job(ctx, self.spec.app, i, self.image))
                slots -= 1

    def _finalize(
        self, ctx: AJ.AnalysisContext, states: list[ItemState], succeeded: int, failed: int
    ) -> AnalysisPlan:
        """Every item the run succeeded is processed: write the manifest, then end."""
        self._phase(RUNNING)
        manifest = next((j for j in self.observed if j.kind is JobKind.ANALYSIS_MANIFEST), None)
        ending = FAILED if failed else SUCCEEDED
        summary = f"{succeeded} item(s) processed, {failed} failed"
        if manifest is None:
            try:
                self.plan.create_config_maps.extend(
                    AJ.analysis_manifest_inputs(
                        ctx, itemstates.encode(states), failurereasons.payload(self.status)
                    )
                )
            except runner_input.TooLarge as e:
                self._phase(FAILED)
                self._condition(FALSE, R_MANIFEST_FAILED, f"{summary}; the manifest Job cannot be given {e}")
                return self._finish()
            self.plan.create.append(AJ.analysis_manifest_job(ctx, self.image, ending))
            self._condition(UNKNOWN, R_FINALIZING, f"{summary}; writing the manifest")
            return self._finish()
        if not manifest.finished:
            self._condition(UNKNOWN, R_FINALIZING, f"{summary}; writing the manifest")
            return self._finish()
        self._delete(manifest)
        self.plan.delete_config_maps.append(names.analysis_states_config_map_name(ctx.name, ctx.uid))
        if not manifest.exists and manifest.reason in REFUSED_REASONS:
            self._phase(FAILED)
            self._condition(
                FALSE,
                manifest.reason,
                f"{summary}; the manifest Job could not be created: {manifest.message}",
            )
            return self._finish()
        if manifest.state is JobState.FAILED:
            msg = parse_termination_message(self.tms.get(manifest.name))
            self._phase(FAILED)
            self._condition(
                FALSE,
                R_MANIFEST_FAILED,
                f"{summary}; the manifest could not be written: "
                f"{msg.get('message') or manifest.message or manifest.reason}",
            )
            return self._finish()
        self._phase(ending)
        # The manifest Job claimed the folder (when no item did) and wrote the manifest.
        self.status.update(outputPath=ctx.analysis_dir, manifestPath=f"{ctx.analysis_dir}/{MANIFEST_FILE}")
        if failed:
            self._condition(FALSE, R_ITEMS_FAILED, summary)
        else:
            self._condition(TRUE, R_SUCCEEDED, summary)
        return self._finish()


def plan_analysis(
    analysis: Analysis,
    run: SourceRun | None,
    observed: Iterable[ObservedJob],
    now: datetime,
    *,
    operator_image: str,
    termination_messages: Mapping[str, Any] | None = None,
) -> AnalysisPlan:
    """The next step of an AnalysisJob (see the module docstring)."""
    return _Planner(analysis, run, observed, now, operator_image, termination_messages or {}).make()


def plan_invalid_analysis(analysis: Mapping[str, Any], problem: InvalidSpec, now: datetime) -> AnalysisPlan:
    """The plan for an AnalysisJob whose spec does not parse (stored before a schema change):
    its spec is immutable, so it can never go on; it fails with `Succeeded=False InvalidSpec`
    and the message naming the field. Never an exception, so never a crash loop."""
    meta = analysis.get("metadata") or {}
    old = dict(analysis.get("status") or {})
    plan = AnalysisPlan(phase=old.get("phase") or PENDING)
    status = dict(old)
    if plan.phase not in TERMINAL_PHASES:
        message = cut(f"the spec does not parse: {problem.message}", MAX_FAILURE_MESSAGE)
        status["conditions"] = set_condition(
            status.get("conditions"),
            CONDITION_SUCCEEDED,
            FALSE,
            R_INVALID_SPEC,
            message,
            now,
            meta.get("generation"),
        )
        status["completionTime"] = rfc3339(now)
        plan.phase = status["phase"] = FAILED
        plan.events.append(Event("Warning", R_INVALID_SPEC, message))
    if meta.get("generation") is not None:
        status["observedGeneration"] = meta["generation"]
    plan.status = status
    plan.status_patch = {k: v for k, v in status.items() if old.get(k) != v}
    return plan
