"""The PipelineRun reconciler, as a pure function: `plan_run(...) -> RunPlan`.

Everything is recomputed from the run (spec + status) and the child Jobs that exist; the plan
says which Jobs to create and delete, the new status, the Events to emit and the phase event.
The handler applies it in this order:

1. create `plan.create_config_maps`, then `plan.create` (409 AlreadyExists counts as success:
   names are deterministic);
2. merge-patch `.status` with `plan.status_patch`;
3. only then delete `plan.delete` and `plan.delete_config_maps` (propagationPolicy Background;
   404 counts as success):
   a finished Job is deleted only once its outcome is in the status, so no outcome is lost,
   and a Job the status already accounts for is simply deleted again (no double counting);
4. emit `plan.events`; requeue after `plan.requeue_after` seconds when set; delete the run when
   `plan.delete_run` (ttlSecondsAfterFinished).

`plan_run` must be given a status at least as new as the last one patched, and the Jobs as
observed after that (a kopf index is fine: a Job created but not yet observed is created again,
which is a harmless 409).

Per-item progress lives in `status.itemStates` (mmif_operator.core.itemstates). An item whose step
failed under `onItemFailure: Continue` goes on RUNNING at the next step, and its failed steps
are remembered in `status.itemFailedSteps`: one 32-bit mask per item (bit k = step k failed),
little-endian, zlib-compressed, base64 (see `encode_failed_steps`). When such an item ends it is
FAILED at its first failing step in `itemStates`, as a Stop-mode failure would be, so readers of
`itemStates` alone (the manifest) see the same meaning in both modes.
"""

from __future__ import annotations

import base64
import copy
import json
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mmif_operator.core import failurereasons, itemstates, names, runner_input
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.core.labels import REQUEST
from mmif_operator.core.observed import R_NAME_CONFLICT, JobKind, JobState, ObservedJob
from mmif_operator.core.specs import InvalidSpec, ParseCache, generation_key, parse_spec
from mmif_operator.core.status import (
    FALSE,
    TRUE,
    UNKNOWN,
    capped,
    cut,
    find_condition,
    parse_time,
    rfc3339,
    set_condition,
)
from mmif_operator.kinds.pipeline.app import is_service_without_url
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import alternatives as A
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun import conflicts as C
from mmif_operator.kinds.pipelinerun.images import image_digests
from mmif_operator.kinds.pipelinerun.model import (
    MAX_FAILURE_MESSAGE,
    MAX_FAILURES,
    MAX_HISTORY,
    OnItemFailure,
    PipelineRunSpec,
    RunPhase,
    RunSpecStatus,
    RunStage,
)
from mmif_operator.kinds.pipelinerun.phases import Announce, Notify, Template, template_for, transition
from mmif_operator.kinds.pipelinerun.phases import Event as PhaseEvent
from mmif_operator.kinds.pipelinerun.review import DEFAULT_REVIEW_TIMEOUT_SECONDS, OnConflict, ReviewDecision
from mmif_operator.kinds.pipelinerun.shared_pods import failed_step, pod_spans
from mmif_operator.kinds.project.planning import RecordTarget
from mmif_operator.notifications.model import NotificationEvent
from mmif_operator.runner.paths import MANIFEST_FILE, REVIEW_FILE

# Run phases and stages, as plain strings (statuses are plain dicts here); declared in the model.
PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    RunPhase.PENDING.value,
    RunPhase.RUNNING.value,
    RunPhase.SUCCEEDED.value,
    RunPhase.FAILED.value,
    RunPhase.CANCELLED.value,
)
AWAITING_REVIEW, PUBLISHING = RunPhase.AWAITING_REVIEW.value, RunPhase.PUBLISHING.value
TERMINAL_PHASES = (SUCCEEDED, FAILED, CANCELLED)
# Run stages (status.stage) besides those named like a phase: the phase is Running in them.
PREPARING, RUNNING_ITEMS, WRITING_MANIFEST = (
    RunStage.PREPARING.value,
    RunStage.RUNNING_ITEMS.value,
    RunStage.WRITING_MANIFEST.value,
)
STAGE_CANCELLING, STAGE_TIMING_OUT = RunStage.CANCELLING.value, RunStage.TIMING_OUT.value

# Phase events: the events of the state machine (kinds/pipelinerun/phases.py, `run-workflow`).
EV_CREATED = PhaseEvent.CREATED.value
EV_PIPELINE_NOT_FOUND = PhaseEvent.PIPELINE_NOT_FOUND.value
EV_WORKSPACE_NOT_FOUND = PhaseEvent.WORKSPACE_NOT_FOUND.value
EV_PIPELINE_NOT_READY = PhaseEvent.PIPELINE_NOT_READY.value
EV_PIPELINE_NOT_FOUND_TOO_LONG = PhaseEvent.PIPELINE_NOT_FOUND_TOO_LONG.value
EV_WORKSPACE_NOT_FOUND_TOO_LONG = PhaseEvent.WORKSPACE_NOT_FOUND_TOO_LONG.value
EV_PIPELINE_NOT_READY_TOO_LONG = PhaseEvent.PIPELINE_NOT_READY_TOO_LONG.value
EV_APP_POOL_NOT_MADE = PhaseEvent.APP_POOL_NOT_MADE.value
EV_APP_POOL_NOT_MADE_TOO_LONG = PhaseEvent.APP_POOL_NOT_MADE_TOO_LONG.value
EV_INVALID_SPEC = PhaseEvent.INVALID_SPEC.value
EV_STARTED = PhaseEvent.STARTED.value
EV_PREPARE_FAILED = PhaseEvent.PREPARE_FAILED.value
EV_OUTPUT_CONFLICT = PhaseEvent.OUTPUT_CONFLICT.value
EV_ALL_ITEMS_SUCCEEDED = PhaseEvent.ALL_ITEMS_SUCCEEDED.value
EV_ITEMS_FAILED = PhaseEvent.ITEMS_FAILED.value
EV_TIMED_OUT = PhaseEvent.TIMED_OUT.value
EV_CANCELLED = PhaseEvent.CANCELLED.value
EV_MANIFEST_FAILED = PhaseEvent.MANIFEST_FAILED.value
EV_NAME_CONFLICT = PhaseEvent.NAME_CONFLICT.value
EV_CREATE_FAILED = PhaseEvent.CREATE_FAILED.value
EV_SNAPSHOT_LOST = PhaseEvent.SNAPSHOT_LOST.value
EV_PREPARED = PhaseEvent.PREPARED.value
EV_ITEMS_DONE = PhaseEvent.ITEMS_DONE.value
EV_CANCEL_REQUESTED = PhaseEvent.CANCEL_REQUESTED.value
EV_DEADLINE_REACHED = PhaseEvent.DEADLINE_REACHED.value
EV_REVIEW_PASSED = PhaseEvent.REVIEW_PASSED.value
EV_REVIEW_FAILED = PhaseEvent.REVIEW_FAILED.value
EV_REVIEW_TIMED_OUT = PhaseEvent.REVIEW_TIMED_OUT.value
EV_SUPERSEDED = PhaseEvent.SUPERSEDED.value
EV_CONFLICTS_FOUND = PhaseEvent.CONFLICTS_FOUND.value
EV_PUBLISHED = PhaseEvent.PUBLISHED.value
EV_PUBLISH_FAILED = PhaseEvent.PUBLISH_FAILED.value

CONDITION_SUCCEEDED = "Succeeded"

# Condition reasons (CamelCase).
R_RUNNING = "Running"
R_FINALIZING = "Finalizing"  # every item is terminal; the manifest Job runs
R_CANCELLING = "Cancelling"  # items were cancelled by spec.status; the manifest Job runs
R_TIMING_OUT = "TimingOut"  # items were cancelled by the run's timeout; the manifest Job runs
R_SUCCEEDED = "Succeeded"
R_ITEMS_FAILED = "ItemsFailed"
R_OUTPUT_CONFLICT = "OutputConflict"
R_MANIFEST_FAILED = "ManifestFailed"
R_AWAITING_REVIEW = "AwaitingReview"

MAX_EVENT_MESSAGE = 1024
PENDING_REQUEUE_SECONDS = 30.0
# A run whose publishing conflicts blocked looks again this often: the other run may have ended
# (the runs index changes wake no run), and a Pass with Block publishes once nothing conflicts.
CONFLICT_RECHECK_SECONDS = 30.0
R_PUBLISH_BLOCKED = "PublishBlocked"

# Job condition reasons → failure reasons, when the runner left no termination message.
_JOB_REASONS = {
    "DeadlineExceeded": "Timeout",
    "BackoffLimitExceeded": "BackoffLimitExceeded",
    "PodFailurePolicy": "PodFailurePolicy",
}


@dataclass(frozen=True)
class Sibling:
    """Another run of the same request (label `mmif.dev/request`), as the review stage needs it."""

    name: str
    phase: str | None
    passed: bool  # it passed its review and entered Publishing (status.review.decision Pass)

    @classmethod
    def from_run(cls, run: Mapping[str, Any]) -> Sibling:
        status = run.get("status") or {}
        review = status.get("review") or {}
        return cls(
            name=(run.get("metadata") or {}).get("name", ""),
            phase=status.get("phase"),
            passed=review.get("decision") == ReviewDecision.PASS.value,
        )


def superseded_by(name: str, siblings: Iterable[Sibling]) -> str | None:
    """The run of the same request that passed its review first, when it is not `name`: then
    the run `name`, still awaiting its review, is superseded. None: no other run passed.

    The handler lists the siblings and plans the run under one lock per request, so of two runs
    passed at once the first to enter Publishing wins and the other sees it here."""
    winners = sorted(s.name for s in siblings if s.passed and s.name != name)
    return winners[0] if winners else None


def review_timeout(pipeline_spec: PipelineSpec | None) -> int:
    """`review.timeoutSeconds` of the snapshot (its default from kinds/pipelinerun/review.py)."""
    review = pipeline_spec.review if pipeline_spec is not None else None
    return review.timeout_seconds if review is not None else DEFAULT_REVIEW_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Run:
    """A PipelineRun as the planner reads it: its spec and its pipeline snapshot
    (`status.pipelineSpec`) parsed into their models, defaults applied; metadata and status as
    stored (the status is the operator's own bookkeeping: plain dicts, see docs/design.md)."""

    meta: Mapping[str, Any]
    spec: PipelineRunSpec
    status: Mapping[str, Any]
    snapshot: PipelineSpec | None = None

    @property
    def body(self) -> dict[str, Any]:
        """metadata and status as a dict (what the helpers of the raw object read)."""
        return {"metadata": self.meta, "status": self.status}


def parse_run(body: Mapping[str, Any], cache: ParseCache | None = None) -> Run:
    """The PipelineRun object kopf or the API server hands over, parsed where it enters:
    `core.specs.InvalidSpec`, naming the field, when its spec or its snapshot does not parse.
    With `cache`, the spec is parsed once per (uid, generation) (1,000 inline items take ~4 ms)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    key = generation_key(meta) if cache is not None else None
    spec = (cache if cache is not None else ParseCache(0)).parse(key, PipelineRunSpec, body.get("spec"))
    raw = status.get("pipelineSpec")
    snapshot = parse_spec(PipelineSpec, raw, "status.pipelineSpec") if raw else None
    return Run(meta=meta, spec=spec, status=status, snapshot=snapshot)


def snapshot_of(pipeline_spec: PipelineSpec) -> dict[str, Any]:
    """The Pipeline's spec as the run keeps it (`status.pipelineSpec`): as stored, without the
    defaults the model fills in (they are the model's again when the snapshot is read)."""
    return pipeline_spec.model_dump(by_alias=True, exclude_unset=True, exclude_none=True, mode="json")


def request_of(run: Mapping[str, Any]) -> str | None:
    """The request the run was made for (label `mmif.dev/request`), if any."""
    return ((run.get("metadata") or {}).get("labels") or {}).get(REQUEST) or None


def stage_of(status: Mapping[str, Any], template: Template | None = None) -> str | None:
    """The run's state in its template: `status.stage` when it is one of the template's states
    and shows the run's phase; else (a status written before that field existed, or a phase set
    without it) derived from the phase, the item count and the condition's reason."""
    phase = status.get("phase")
    stage = status.get("stage")
    if stage and (
        template is None or (stage in template.state_names and _value(template.state(stage).phase) == phase)
    ):
        return str(stage)
    if phase != RUNNING:
        return phase
    if status.get("itemCount") is None:
        return PREPARING
    cond = find_condition(status.get("conditions"), CONDITION_SUCCEEDED) or {}
    return {
        R_FINALIZING: WRITING_MANIFEST,
        R_CANCELLING: STAGE_CANCELLING,
        R_TIMING_OUT: STAGE_TIMING_OUT,
    }.get(cond.get("reason") or "", RUNNING_ITEMS)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit on the PipelineRun."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Notification:
    """A notification the plan's transitions ask for (their `Notify` actions); the handler
    queues it for the Pipeline's targets that want `event`."""

    event: NotificationEvent
    reason: str  # the run's Succeeded reason after the transition
    message: str


@dataclass
class RunPlan:
    phase: str  # the phase after this plan
    phase_events: list[str] = field(default_factory=list)  # state-machine events fired, in order
    create: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # Job names, after the status patch
    # ConfigMaps the runner reads (core/runner_input.py): created before `create`, deleted
    # (after the status patch) once the Job that reads them is over
    create_config_maps: list[dict[str, Any]] = field(default_factory=list)
    delete_config_maps: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)  # the whole new status
    status_patch: dict[str, Any] = field(default_factory=dict)  # the top-level keys that changed
    item_states: list[ItemState] | None = None
    events: list[Event] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    requeue_after: float | None = None
    delete_run: bool = False
    # Events for the other parties of conflicts just found (kinds/pipelinerun/conflicts.py):
    # posted by the handler on their runs and Projects after the status patch.
    conflict_notices: list[C.Notice] = field(default_factory=list)

    @property
    def phase_event(self) -> str | None:
        """The last state-machine event of this plan (e.g. `Started`, `ItemsFailed`), or None."""
        return self.phase_events[-1] if self.phase_events else None


# -- Continue-mode failures ------------------------------------------------------------------


def encode_failed_steps(masks: list[int]) -> str:
    """Per-item masks of failed steps (bit k = step k failed) → compact text."""
    raw = b"".join(int(m).to_bytes(4, "little") for m in masks)
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def decode_failed_steps(text: str | None, count: int) -> list[int]:
    if not text:
        return [0] * count
    raw = zlib.decompress(base64.b64decode(text))
    masks = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]
    if len(masks) != count:
        raise ValueError(f"itemFailedSteps holds {len(masks)} items, expected {count}")
    return masks


def first_failed_step(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


# -- helpers ---------------------------------------------------------------------------------


def _value(x: Any) -> str:
    return getattr(x, "value", x)


def parse_termination_message(value: Any) -> dict[str, Any]:
    """A termination message as a dict: the runner's one-line JSON summary; with
    `FallbackToLogsOnError` it may be the log tail instead, whose last JSON line is used."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value).strip()
    if not text:
        return {}
    for candidate in (text, *reversed(text.splitlines())):
        candidate = candidate.strip()
        if not candidate.startswith("{"):
            continue
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return {"message": text[-MAX_FAILURE_MESSAGE:]}


def _prepared_count(msg: Mapping[str, Any]) -> int | None:
    for key in ("itemCount", "items", "count"):
        value = msg.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def validate_run(spec: PipelineRunSpec, pipeline_spec: PipelineSpec) -> str | None:
    """Why the run cannot start with this pipeline (an InvalidSpec message), or None."""
    steps = pipeline_spec.steps
    if not steps:
        return "the pipeline has no steps"
    if len(steps) > itemstates.MAX_STEPS:
        return f"the pipeline has {len(steps)} steps; at most {itemstates.MAX_STEPS} are supported"
    unknown = sorted(set(spec.params) - {s.name for s in steps})
    if unknown:
        return f"spec.params names steps the pipeline does not have: {', '.join(unknown)}"
    run_ws, pipe_ws = spec.workspace, pipeline_spec.workspace
    pipe_claim = pipe_ws.claim_name if pipe_ws else None
    pipe_mount = pipe_ws.mount_path if pipe_ws else None
    for step in steps:
        if is_service_without_url(step) and (
            pipe_claim != run_ws.claim_name or pipe_mount != run_ws.mount_path
        ):
            return (
                f"step {step.name} runs as a Service that mounts claim "
                f"{pipe_claim!r} at {pipe_mount}, but the run "
                f"uses claim {run_ws.claim_name!r} at {run_ws.mount_path}: "
                "they must be the same"
            )
    return None


def record_items_problem(spec: PipelineRunSpec, records: RecordTarget | None) -> str | None:
    """Why inline items naming a record cannot start (an InvalidSpec message), or None: a record
    is read from the record store of the run's project, which a namespace outside a Project with
    `spec.records` does not have. (Items of `itemsFrom` are read by prepare, which fails each
    such item for the same reason.)"""
    if records is not None or not spec.items:
        return None
    with_record = [n for n, item in enumerate(spec.items) if item.record is not None]
    if not with_record:
        return None
    first = with_record[0]
    more = f" (and {len(with_record) - 1} more item(s))" if len(with_record) > 1 else ""
    return (
        f"spec.items[{first}].record{more}: records are read from the record store of the run's "
        "project, and this namespace is not a Ready Project's with spec.records"
    )


def pipeline_not_ready(pipeline: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(reason, message) when the Pipeline object is not Ready for its current generation (its
    `Ready` condition, written by the Pipeline's loop: Service-mode apps available); None when it
    is, or when no object is given (nothing to check)."""
    if pipeline is None:
        return None
    meta = pipeline.get("metadata") or {}
    status = pipeline.get("status") or {}
    cond = find_condition(status.get("conditions"), "Ready")
    if cond is None:
        return "Pending", "the operator has not looked at the Pipeline yet"
    seen = cond.get("observedGeneration", status.get("observedGeneration"))
    generation = meta.get("generation")
    if generation is not None and seen is not None and int(seen) < int(generation):
        return "Outdated", f"its status describes generation {seen}, not {generation} yet"
    if cond.get("status") != "True":
        reason = cond.get("reason") or "NotReady"
        return reason, cond.get("message") or reason
    return None


@dataclass(frozen=True)
class Counts:
    total: int
    succeeded: int
    failed: int
    cancelled: int
    running: int
    pending: int

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled


def count_items(states: list[ItemState]) -> Counts:
    by = [0] * 8
    for s in states:
        by[s.phase] += 1
    return Counts(
        total=len(states),
        succeeded=by[ItemPhase.SUCCEEDED],
        failed=by[ItemPhase.FAILED],
        cancelled=by[ItemPhase.CANCELLED],
        running=by[ItemPhase.RUNNING],
        pending=by[ItemPhase.PENDING],
    )


def step_counts(states: list[ItemState], masks: list[int], step_names: list[str]) -> list[dict[str, Any]]:
    """`status.steps`: per step, items pending (still to reach it), running, succeeded, failed."""
    n = len(step_names)
    pending, running, succeeded, failed = ([0] * n for _ in range(4))
    for st, mask in zip(states, masks, strict=True):
        k, ph = st.step, st.phase
        if ph is ItemPhase.PENDING:
            for s in range(n):
                pending[s] += 1
            continue
        if ph is ItemPhase.SUCCEEDED or (ph is ItemPhase.FAILED and mask):
            # Went through every step (a Continue-mode failure is FAILED at its first failed step).
            for s in range(n):
                if mask >> s & 1:
                    failed[s] += 1
                else:
                    succeeded[s] += 1
            continue
        for s in range(min(k, n)):
            if mask >> s & 1:
                failed[s] += 1
            else:
                succeeded[s] += 1
        if k < n:
            if ph is ItemPhase.RUNNING:
                running[k] += 1
                for s in range(k + 1, n):
                    pending[s] += 1
            elif ph is ItemPhase.FAILED:
                failed[k] += 1
            # CANCELLED: stopped before finishing step k; nothing counted from k on.
    return [
        {
            "name": name,
            "pending": pending[s],
            "running": running[s],
            "succeeded": succeeded[s],
            "failed": failed[s],
        }
        for s, name in enumerate(step_names)
    ]


def failed_at_summary(states: list[ItemState], step_names: list[str]) -> str:
    """e.g. "3 of 5 items failed: 2 at step asr, 1 at step ner"."""
    per_step: dict[int, int] = defaultdict(int)
    for s in states:
        if s.phase is ItemPhase.FAILED:
            per_step[s.step] += 1
    total = sum(per_step.values())
    parts = [
        f"{c} at step {step_names[k] if k < len(step_names) else k}" for k, c in sorted(per_step.items())
    ]
    text = f"{total} of {len(states)} items failed"
    return f"{text}: {', '.join(parts)}" if parts else text


# -- the planner -----------------------------------------------------------------------------


class _Planner:
    def __init__(
        self,
        meta: Mapping[str, Any],
        spec: PipelineRunSpec | None,
        status: Mapping[str, Any],
        snapshot: PipelineSpec | None,
        pipeline_spec: PipelineSpec | None,
        observed: Iterable[ObservedJob],
        now: datetime,
        operator_image: str,
        termination_messages: Mapping[str, Any],
        item_count: int | None,
        workspace_found: bool,
        template: Template | None,
        pipeline: Mapping[str, Any] | None = None,
        siblings: Iterable[Sibling] | None = None,
        pipeline_invalid: str | None = None,
        records: RecordTarget | None = None,
        monitors: Sequence[A.MonitorView] = (),
        record_runs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        pool_problem: str | None = None,
        hold_starts: bool = False,
    ):
        self.meta = dict(meta)
        self.pool_problem = pool_problem
        self.hold_starts = hold_starts
        self.records = records
        self.monitors = monitors
        self.record_runs = record_runs
        self.choices: dict[int, A.Choice] = {}  # step index -> this pass's choice (alternatives)
        self._spec = spec  # None: it does not parse (plan_invalid_run)
        self.old = copy.deepcopy(dict(status))
        self.status = copy.deepcopy(self.old)
        self.snapshot = snapshot
        self.pipeline_invalid = pipeline_invalid
        self.name = self.meta["name"]
        self.uid = self.meta.get("uid") or ""
        self.now = now
        self.image = operator_image
        self.tms = termination_messages or {}
        self.item_count_arg = item_count
        self.workspace_found = workspace_found
        self.pipeline_arg = pipeline_spec
        self.pipeline_obj = pipeline
        # Only the run's own Jobs (controlled by its uid): a Job of the same name and labels
        # that someone else made, or an earlier same-named run left behind, is not counted.
        self.observed = [j for j in observed if j.owned_by(self.uid)]
        self.phase = self.old.get("phase") or PENDING
        # The template: the pipeline snapshot's once the run started (a pending run follows
        # rows that every template shares).
        self.template = template or template_for(self._pipeline())
        self.stage = stage_of(self.old, self.template)
        self.siblings = list(siblings) if siblings is not None else None
        self.plan = RunPlan(phase=self.phase)
        self.new_failures: list[dict[str, Any]] = []
        self.reason_codes: list[int] | None = None  # itemFailureReasons, decoded when needed

    @property
    def spec(self) -> PipelineRunSpec:
        assert self._spec is not None  # (the stages run only on a spec that parsed)
        return self._spec

    # -- small pieces ---------------------------------------------------------------------
    def _event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(type_, reason, cut(message, MAX_EVENT_MESSAGE)))

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

    def _cond_reason(self) -> str | None:
        cond = find_condition(self.old.get("conditions"), CONDITION_SUCCEEDED)
        return cond.get("reason") if cond else None

    def _fire(self, event: str, message: str) -> str:
        """Apply a state-machine event from the run's current state: the row's actions (Events,
        notifications), the stage and phase (and history, when the phase changes), the Succeeded
        condition, and on a terminal state completionTime and the TTL. Returns the new stage."""
        row = transition(self.template, self.stage, event)
        target = _value(row.target)
        phase = _value(self.template.state(row.target).phase)
        reason = row.reason
        self.plan.phase_events.append(event)
        for action in row.actions:
            if isinstance(action, Notify):
                self.plan.notifications.append(
                    Notification(action.event, reason, cut(message, MAX_EVENT_MESSAGE))
                )
            elif isinstance(action, Announce):
                self._event(action.type, action.reason or reason, message)
        current = self.status.get("phase")
        if phase != current:
            entry: dict[str, Any] = {"to": phase, "reason": reason, "time": rfc3339(self.now)}
            if current:
                entry["from"] = current
            self.status["history"] = capped([*(self.status.get("history") or []), entry], MAX_HISTORY)
            self.status["phase"] = phase
            self.phase = phase
        self.status["stage"] = target
        self.stage = target
        self._condition(_value(row.status), reason, message)
        if row.terminal:
            self.status["completionTime"] = rfc3339(self.now)
            self._ttl()
        return target

    def _ttl(self) -> None:
        ttl = self._spec.ttl_seconds_after_finished if self._spec is not None else None
        done = parse_time(self.status.get("completionTime"))
        if ttl is None or done is None:
            return
        remaining = (done + timedelta(seconds=int(ttl)) - self.now).total_seconds()
        if remaining <= 0:
            self.plan.delete_run = True
        else:
            self.plan.requeue_after = remaining

    def _tm(self, job: ObservedJob) -> dict[str, Any]:
        return parse_termination_message(self.tms.get(job.name))

    def _delete(self, job: ObservedJob) -> None:
        if not job.exists:
            return  # a refused create: the object of that name is not ours to delete
        if job.name not in self.plan.delete:
            self.plan.delete.append(job.name)

    def _pipeline(self) -> PipelineSpec | None:
        return self.snapshot or self.pipeline_arg

    # -- stages ---------------------------------------------------------------------------
    def run_plan(self) -> RunPlan:
        """Plan the run's current state with the stage function the template names for it
        (`STAGES`). When that moves the run to another state that does not end it, that state's
        stage is planned too in the same pass (a prepared batch starts its first items, all
        items done creates the manifest Job), as many times as the template has states."""
        if not self.old.get("phase"):
            self._fire(EV_CREATED, "waiting for the Pipeline and the workspace")
        for _ in range(len(self.template.states)):
            stage = self.stage
            assert stage is not None  # (Created fired above)
            STAGES[self.template.state(stage).plans](self)
            if self.stage == stage or self.stage in self.template.terminal_states:
                break
        return self._finish_plan()

    def _finish_plan(self) -> RunPlan:
        if self.meta.get("generation") is not None:
            self.status["observedGeneration"] = self.meta["generation"]
        self.plan.phase = self.phase
        self.plan.status = self.status
        self.plan.status_patch = {k: v for k, v in self.status.items() if self.old.get(k) != v}
        return self.plan

    def invalid(self, message: str) -> RunPlan:
        """`plan_invalid_run`: fail the run from its stage (InvalidSpec or SnapshotLost, both
        reason `InvalidSpec`), or, ended already, delete its Jobs."""
        if not self.old.get("phase"):
            self._fire(EV_CREATED, "waiting for the Pipeline and the workspace")
        assert self.stage is not None
        if self.stage in self.template.terminal_states:
            self._terminal()
        else:
            event = EV_INVALID_SPEC if self.stage == PENDING else EV_SNAPSHOT_LOST
            self._fire(event, cut(f"the run cannot be read: {message}", MAX_FAILURE_MESSAGE))
        return self._finish_plan()

    def _terminal(self) -> None:
        """A run that ended: its Jobs go (a failed prepare, manifest or publish Job stays for
        its logs), and the TTL is enforced."""
        for job in self.observed:
            keep = job.kind is not JobKind.STEP and job.state is JobState.FAILED
            if not keep:
                self._delete(job)
        self._ttl()

    def _pending(self) -> None:
        """Wait (bounded) for the Pipeline, its readiness and the volume; then start."""
        if self.spec.status is RunSpecStatus.CANCELLED:
            self._fire(EV_CANCELLED, "the run was cancelled before it started")
            return
        pipeline = self._pipeline()
        ref = self.spec.pipeline_ref.name
        ns = self.meta.get("namespace")
        if self.pipeline_invalid is not None and pipeline is None:
            self._waiting(
                EV_PIPELINE_NOT_READY,
                EV_PIPELINE_NOT_READY_TOO_LONG,
                f"Pipeline {ref!r} is not Ready: InvalidSpec: its spec does not parse: {self.pipeline_invalid}",
            )
            return
        if not pipeline:
            self._waiting(
                EV_PIPELINE_NOT_FOUND,
                EV_PIPELINE_NOT_FOUND_TOO_LONG,
                f"Pipeline {ref!r} not found in namespace {ns!r}",
            )
            return
        if not self.workspace_found:
            claim = self.spec.workspace.claim_name
            self._waiting(
                EV_WORKSPACE_NOT_FOUND,
                EV_WORKSPACE_NOT_FOUND_TOO_LONG,
                f"PersistentVolumeClaim {claim!r} not found in namespace {ns!r}",
            )
            return
        problem = validate_run(self.spec, pipeline) or record_items_problem(self.spec, self.records)
        if problem:
            self._fire(EV_INVALID_SPEC, problem)
            return
        not_ready = pipeline_not_ready(self.pipeline_obj)
        if not_ready is not None:
            self._waiting(
                EV_PIPELINE_NOT_READY,
                EV_PIPELINE_NOT_READY_TOO_LONG,
                f"Pipeline {ref!r} is not Ready: {not_ready[0]}: {not_ready[1]}",
            )
            return
        if self.pool_problem is not None:
            self._waiting(EV_APP_POOL_NOT_MADE, EV_APP_POOL_NOT_MADE_TOO_LONG, self.pool_problem)
            return
        self.status["pipelineSpec"] = snapshot_of(pipeline)
        self.status["startTime"] = rfc3339(self.now)
        self.status["steps"] = [
            {"name": s.name, "pending": 0, "running": 0, "succeeded": 0, "failed": 0} for s in pipeline.steps
        ]
        self.template = template_for(pipeline)  # the snapshot's: the same from now on
        self._fire(EV_STARTED, f"following Pipeline {ref!r}; preparing the batch")

    def _create_prepare(self, ctx: J.RunContext) -> bool:
        """The prepare Job, after the ConfigMap holding its inline items; PrepareFailed (False)
        when they do not fit in one."""
        try:
            self.plan.create_config_maps.extend(J.prepare_inputs(ctx, self.spec))
        except runner_input.TooLarge as e:
            self._fire(
                EV_PREPARE_FAILED,
                f"spec.items cannot reach the prepare Job: {e}; list the batch "
                "in a file on the workspace (spec.itemsFrom) instead",
            )
            return False
        self.plan.create.append(J.prepare_job(ctx, self.spec, self.image, self.records))
        return True

    def _items_read(self) -> None:
        """The prepare Job is over: its ConfigMap of inline items is read (or never will be)."""
        if self.spec.items is not None:
            self.plan.delete_config_maps.append(names.items_config_map_name(self.name, self.uid))

    def start_deadline(self) -> datetime:
        """Until when the run may wait to start: its creation plus `startTimeoutSeconds`."""
        created = parse_time(self.meta.get("creationTimestamp"))
        if created is None:  # (an object made by hand) the first history entry, else now
            history = self.status.get("history") or []
            created = parse_time(history[0].get("time")) if history else None
        return (created or self.now) + timedelta(seconds=self.spec.start_timeout_seconds)

    def _waiting(self, event: str, too_long: str, message: str) -> None:
        """Stay Pending until the start deadline, then fail with the same reason. The condition
        says what the run waits for and until when; the event (and an Event) fire only when the
        reason changes."""
        deadline = self.start_deadline()
        limit = self.spec.start_timeout_seconds
        if self.now >= deadline:
            self._fire(too_long, f"{message}, for {limit} s (spec.startTimeoutSeconds): the run gave up")
            return
        message = f"{message}; waiting until {rfc3339(deadline)} (spec.startTimeoutSeconds {limit} s), then the run fails"
        row = transition(self.template, self.stage, event)
        if self._cond_reason() != row.reason:
            self._fire(event, message)  # (its row posts the Event)
        else:
            self._condition(_value(row.status), row.reason, message)
        self.plan.requeue_after = max(
            0.5, min(PENDING_REQUEUE_SECONDS, (deadline - self.now).total_seconds())
        )

    def _deadline(self) -> datetime | None:
        timeout = self.spec.timeout_seconds
        start = parse_time(self.status.get("startTime"))
        if not timeout or start is None:
            return None
        return start + timedelta(seconds=timeout)

    def _deadline_requeue(self) -> None:
        """Come back at the run's deadline (nothing else would wake the operator then)."""
        deadline = self._deadline()
        if deadline is None:
            return
        self.plan.requeue_after = max(1.0, (deadline - self.now).total_seconds())

    def _snapshot(self) -> bool:
        """The pipeline snapshot every started stage follows (False: it is gone, the run failed)."""
        pipeline = self._pipeline()
        if not pipeline or not pipeline.steps:
            self._fire(EV_SNAPSHOT_LOST, "the run has no pipeline snapshot (status.pipelineSpec)")
            return False
        self.pipeline = pipeline
        self.step_names = [s.name for s in pipeline.steps]
        self.spans = pod_spans(pipeline.steps)  # step k's pod runs steps k..spans[k]
        self.ctx = J.RunContext.from_run(self.meta, self.spec)
        return True

    def _stops(self) -> tuple[bool, bool]:
        """(cancel, timed_out): spec.status Cancelled; the run's deadline passed."""
        deadline = self._deadline()
        return self.spec.status is RunSpecStatus.CANCELLED, deadline is not None and self.now >= deadline

    def _preparing(self) -> None:
        """The prepare Job: created, then its item count recorded (`Prepared`)."""
        if not self._snapshot():
            return
        cancel, timed_out = self._stops()
        if self._prepare(cancel, timed_out):
            self._fire(EV_PREPARED, f"{self.status['itemCount']} items")

    def _running_items(self) -> None:
        """Every item's Jobs, step after step; `ItemsDone` once every item is terminal, or the
        items stopped by a cancel (`CancelRequested`) or the deadline (`DeadlineReached`)."""
        if not self._snapshot():
            return
        cancel, timed_out = self._stops()
        self._items(cancel, timed_out)

    # -- prepare --------------------------------------------------------------------------
    def _prepare(self, cancel: bool, timed_out: bool) -> bool:
        job = next((j for j in self.observed if j.kind is JobKind.PREPARE), None)
        if job is not None and job.state is JobState.SUCCEEDED:
            msg = self._tm(job)
            count = self.item_count_arg
            if count is None:
                count = _prepared_count(msg)
            if count is None and self.spec.items is not None:
                count = len(self.spec.items)
            if count is None:
                self._fire(EV_PREPARE_FAILED, "the prepare Job reported no item count")
                return False
            self.status["itemCount"] = int(count)
            self.status["itemStates"] = itemstates.encode([ItemState()] * int(count))
            # Reported once it exists: the prepare Job claimed it (a failed prepare did not).
            self.status["outputPath"] = self.ctx.run_dir
            self._delete(job)
            self._items_read()
            return True
        if job is not None and not job.exists:
            self._refused(job, "prepare")
            return False
        if job is not None and job.state is JobState.FAILED:
            msg = self._tm(job)
            event = EV_OUTPUT_CONFLICT if msg.get("reason") == R_OUTPUT_CONFLICT else EV_PREPARE_FAILED
            detail = msg.get("message") or job.message or job.reason or "the prepare Job failed"
            self._fire(event, cut(detail, MAX_FAILURE_MESSAGE))
            self._items_read()
            return False
        if cancel:
            if job is not None:
                self._delete(job)
            self._fire(EV_CANCELLED, "the run was cancelled while preparing the batch")
            return False
        if timed_out:
            if job is not None:
                self._delete(job)
            self._fire(
                EV_TIMED_OUT,
                f"the run exceeded its timeout of {self.spec.timeout_seconds}s while preparing the batch",
            )
            return False
        if job is None and not self._create_prepare(self.ctx):
            return False
        self._condition(UNKNOWN, R_RUNNING, "preparing the batch")
        self._deadline_requeue()
        return False

    def _refused(self, job: ObservedJob, what: str) -> None:
        """The run's own prepare or manifest Job cannot be created: the run fails with why."""
        event = EV_NAME_CONFLICT if job.reason == R_NAME_CONFLICT else EV_CREATE_FAILED
        self._fire(
            event,
            cut(f"the {what} Job could not be created: {job.message or job.reason}", MAX_FAILURE_MESSAGE),
        )

    # -- review (run-with-review) -----------------------------------------------------------
    def _review_status(self) -> dict[str, Any]:
        review = dict(self.status.get("review") or {})
        if not review.get("requestedAt"):
            timeout = review_timeout(self.pipeline)
            review["requestedAt"] = rfc3339(self.now)
            review["deadline"] = rfc3339(self.now + timedelta(seconds=timeout))
            self.status["review"] = review
        return review

    def _awaiting_review(self) -> None:
        """Wait for a person's decision on the whole run (spec.review), bounded by the
        snapshot's `review.timeoutSeconds`; no Jobs. Cancel, a Fail, another version of the
        request that passed first, and the deadline end the wait; a Pass publishes."""
        if not self._snapshot():
            return
        for job in self.observed:
            self._delete(job)  # (the manifest Job's leftovers, if any)
        review = self._review_status()
        decision = self.spec.review.to_dict() if self.spec.review is not None else {}
        comment = decision.get("comment") or ""
        if self.spec.status is RunSpecStatus.CANCELLED:
            self._fire(EV_CANCELLED, "the run was cancelled while awaiting its review")
            return
        if decision.get("decision") == ReviewDecision.FAIL.value:
            self._record_decision(review, decision)
            who = f" by {decision['reviewer']}" if decision.get("reviewer") else ""
            self._fire(EV_REVIEW_FAILED, f"the review{who} failed the run: {comment or 'no comment'}")
            return
        request = request_of({"metadata": self.meta})
        winner = superseded_by(self.name, self.siblings or ()) if request else None
        if winner is not None:
            self._fire(
                EV_SUPERSEDED,
                f"run {winner} of request {request!r} passed its review first: this version is not published",
            )
            return
        unknown_siblings = bool(request) and self.siblings is None
        deadline = parse_time(review.get("deadline")) or self.now
        if decision.get("decision") == ReviewDecision.PASS.value and not unknown_siblings:
            if self._conflicts_block(decision, deadline):
                return
            self._record_decision(review, decision)
            self._fire(EV_REVIEW_PASSED, f"the review passed the run: {comment or 'no comment'}; publishing")
            return
        if self.now >= deadline:
            self._fire(
                EV_REVIEW_TIMED_OUT,
                f"no review decision within {review_timeout(self.pipeline)} s "
                "(pipelineSpec.review.timeoutSeconds): the run gave up",
            )
            return
        manifest = self.status.get("manifestPath") or f"{self.ctx.run_dir}/{MANIFEST_FILE}"
        self._condition(
            UNKNOWN,
            R_AWAITING_REVIEW,
            f"awaiting a review of the outputs ({manifest}): set spec.review.decision to Pass or "
            f"Fail; the run fails at {rfc3339(deadline)} (pipelineSpec.review.timeoutSeconds)",
        )
        self.plan.requeue_after = max(1.0, (deadline - self.now).total_seconds())
        if unknown_siblings:
            # A version of a request passes only once its siblings were looked at (the handler
            # lists them, under the request's lock, when the run is AwaitingReview at the start
            # of a pass): come back at once for that.
            self.plan.requeue_after = 1.0

    def _conflicts_block(self, decision: Mapping[str, Any], deadline: datetime) -> bool:
        """A Pass, before anything is published: look for conflicts (kinds/pipelinerun/conflicts.py)
        and record them (status.conflicts, the `Conflict` condition). With `onConflict` Block (the
        default; also an Ignore the project does not allow) and conflicts found, the run stays
        AwaitingReview (`ConflictsFound`, announced when the list changes) and True is returned;
        otherwise the Pass goes on to publish."""
        if self.record_runs is None:
            return False
        policy = str(decision.get("onConflict") or OnConflict.BLOCK.value)
        items = [(item.name or f"#{n}", item.record) for n, item in enumerate(self.spec.items or ())]
        found = C.find_conflicts(
            self.meta.get("namespace") or "",
            self.name,
            self.meta.get("creationTimestamp"),
            request_of({"metadata": self.meta}),
            items,
            self.record_runs,
        )
        not_allowed = policy == OnConflict.IGNORE.value and not (self.records and self.records.allow_ignore)
        blocked = bool(found) and (policy == OnConflict.BLOCK.value or not_allowed)
        old = find_condition(self.status.get("conditions"), C.CONDITION_CONFLICT) or {}
        text = C.message(found)
        if not found and not old:
            return False  # nothing to say (a run with no conflicts carries no Conflict condition)
        if blocked:
            reason = C.R_CONFLICTS_FOUND
        elif found:
            reason = C.R_SUPERSEDED if policy == OnConflict.SUPERSEDE.value else C.R_IGNORED
        else:
            reason = C.R_NO_CONFLICTS
        applied = OnConflict.BLOCK.value if blocked else policy
        keep_time = old.get("reason") == reason and old.get("message") == text
        if not keep_time or "conflicts" not in self.status:
            self.status["conflicts"] = C.conflicts_status(found, applied, rfc3339(self.now))
        self.status["conditions"] = set_condition(
            self.status.get("conditions"),
            C.CONDITION_CONFLICT,
            TRUE if found else FALSE,
            reason,
            text,
            self.now,
            self.meta.get("generation"),
        )
        if found and not keep_time:
            self.plan.conflict_notices = C.notices(
                self.meta.get("namespace") or "", self.name, found, applied
            )
        if not blocked:
            return False
        if self.now >= deadline:
            self._fire(
                EV_REVIEW_TIMED_OUT,
                f"publishing stayed blocked by {len(found)} conflict(s) until the review's deadline "
                f"({review_timeout(self.pipeline)} s, pipelineSpec.review.timeoutSeconds): the run gave up",
            )
            return True
        why = " (Ignore is not allowed by the project: spec.conflicts.allowIgnore)" if not_allowed else ""
        message = (
            f"publishing blocked by {len(found)} conflict(s){why} (condition Conflict, "
            f"status.conflicts): pass it again with onConflict Supersede (kubectl mmif review pass "
            f"{self.name} --on-conflict Supersede --comment ...), or fail it; the run fails at "
            f"{rfc3339(deadline)} (pipelineSpec.review.timeoutSeconds). {text}"
        )
        if self._cond_reason() != R_PUBLISH_BLOCKED or not keep_time:
            self._fire(EV_CONFLICTS_FOUND, message)  # (its row posts the Event and the notification)
        else:
            self._condition(UNKNOWN, R_PUBLISH_BLOCKED, message)
        self.plan.requeue_after = max(
            1.0, min(CONFLICT_RECHECK_SECONDS, (deadline - self.now).total_seconds())
        )
        return True

    def _supersedes(self, review: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """What the records of a Pass with `onConflict: Supersede` supersede, per parent record
        (from status.conflicts, recorded when the review passed: the same after a restart)."""
        if review.get("onConflict") != OnConflict.SUPERSEDE.value:
            return {}
        return C.supersedes((self.status.get("conflicts") or {}).get("conflicts") or ())

    def _record_decision(self, review: dict[str, Any], decision: Mapping[str, Any]) -> None:
        for key in ("decision", "comment", "reviewer", "decidedAt", "onConflict"):
            if decision.get(key) is not None:
                review[key] = decision[key]
        self.status["review"] = review

    def _publishing(self) -> None:
        """The publish Job writes `<outputPath>/review.json` and marks the manifest published."""
        if not self._snapshot():
            return
        job = next((j for j in self.observed if j.kind is JobKind.PUBLISH), None)
        for other in self.observed:
            if other is not job:
                self._delete(other)
        review = dict(self.status.get("review") or {})
        if job is None:
            self.plan.create.append(
                J.publish_job(
                    self.ctx,
                    self.image,
                    review,
                    self.status.get("manifestPath") or f"{self.ctx.run_dir}/{MANIFEST_FILE}",
                    records=self.records,
                    run_spec=self.spec,
                    pipeline_spec=self.pipeline,
                    image_digests=image_digests(self.status.get("appImages")),
                    supersedes=self._supersedes(review),
                )
            )
            self._condition(UNKNOWN, PUBLISHING, f"the publish Job writes {self.ctx.run_dir}/{REVIEW_FILE}")
        elif not job.exists:
            self._refused(job, "publish")
        elif job.state is JobState.SUCCEEDED:
            self._delete(job)
            review["recordPath"] = f"{self.ctx.run_dir}/{REVIEW_FILE}"
            self.status["review"] = review
            self._fire(EV_PUBLISHED, f"published: {review['recordPath']}")
        elif job.state is JobState.FAILED:
            msg = self._tm(job)
            detail = msg.get("message") or job.message or job.reason or "the publish Job failed"
            self._fire(EV_PUBLISH_FAILED, cut(f"the publish Job failed: {detail}", MAX_FAILURE_MESSAGE))
        else:
            self._condition(UNKNOWN, PUBLISHING, f"the publish Job writes {self.ctx.run_dir}/{REVIEW_FILE}")

    # -- items ----------------------------------------------------------------------------
    def _item_name(self, index: int, msg: Mapping[str, Any]) -> str | None:
        items = self.spec.items
        if items and index < len(items) and items[index].name:
            return items[index].name
        name = msg.get("name")  # the runner's summary: {"item": <index>, "name": <item name>, ...}
        return name[:63] if isinstance(name, str) and name else None

    def _outcome(self, index: int, first: int, job: ObservedJob, masks: list[int]) -> ItemState:
        """Where item `index` goes when `job`, its pod for steps `first`..`job.last_step` (as
        its label says: the Job may be older than the pipeline snapshot's spans), finished:
        past the last of them, or failed at the step its runner named."""
        nsteps = len(self.step_names)
        last = min(max(first, job.last_step if job.last_step is not None else first), nsteps - 1)
        if job.state is JobState.SUCCEEDED:
            if last + 1 < nsteps:
                return ItemState(last + 1, ItemPhase.RUNNING)
            if masks[index]:
                return ItemState(first_failed_step(masks[index]), ItemPhase.FAILED)
            return ItemState(last, ItemPhase.SUCCEEDED)
        msg = self._tm(job)
        k = failed_step(first, last, self.step_names, msg)
        reason = msg.get("reason") if isinstance(msg.get("reason"), str) and msg.get("reason") else None
        reason = reason or _JOB_REASONS.get(job.reason or "", job.reason or "Failed")
        message = msg.get("message") or job.message or ""
        failure: dict[str, Any] = {
            "index": index,
            "step": self.step_names[k],
            "reason": cut(reason, 128),
            "message": cut(message, MAX_FAILURE_MESSAGE),
            "time": rfc3339(self.now),
        }
        if not msg:
            # No pod wrote why (it could not start, the Job could not be created): the manifest
            # learns it from the status (failurereasons).
            self._unwritten(index, failure)
        item_name = self._item_name(index, msg)
        if item_name:
            failure = {"item": item_name, **failure}
        self.new_failures.append(failure)
        label = f"item {index}" + (f" ({item_name})" if item_name else "")
        self._event(
            "Warning", "StepFailed", f"{label} failed at step {self.step_names[k]}: {reason}: {message}"
        )
        if self.spec.on_item_failure is OnItemFailure.CONTINUE:
            masks[index] |= 1 << k
            if k + 1 < nsteps:
                return ItemState(k + 1, ItemPhase.RUNNING)
            return ItemState(first_failed_step(masks[index]), ItemPhase.FAILED)
        return ItemState(k, ItemPhase.FAILED)

    def _unwritten(self, index: int, failure: Mapping[str, Any]) -> None:
        n = int(self.status["itemCount"])
        if self.reason_codes is None:
            self.reason_codes = failurereasons.decode(self.status.get("itemFailureReasons"), n)
            self.status["failureReasons"] = [dict(r) for r in self.status.get("failureReasons") or []]
        failurereasons.record(
            self.status["failureReasons"],
            self.reason_codes,
            index,
            failure["step"],
            failure["reason"],
            failure["message"],
        )
        self.status["itemFailureReasons"] = failurereasons.encode(self.reason_codes)

    # -- alternatives (kinds/pipelinerun/alternatives.py) ----------------------------------
    def _alternatives_entry(self, step_index: int) -> dict[str, Any]:
        """The step's `status.alternatives` entry (made when missing), in the steps' order."""
        name = self.step_names[step_index]
        entries = [dict(e) for e in self.status.get("alternatives") or ()]
        entry = next((e for e in entries if e.get("step") == name), None)
        if entry is None:
            entry = {"step": name, "served": []}
            entries.append(entry)
            order = {n: k for k, n in enumerate(self.step_names)}
            entries.sort(key=lambda e: order.get(str(e.get("step")), len(order)))
        self.status["alternatives"] = entries
        return entry

    def _choose(self, step_index: int) -> A.Candidate | None:
        """The app the step's item launched now goes to (None: the step has no alternatives).
        Chosen once per step and pass; a change of choice is recorded and announced."""
        step = self.pipeline.steps[step_index]
        if not step.alternatives:
            return None
        choice = self.choices.get(step_index)
        if choice is None:
            choice = self.choices[step_index] = A.choose(step, self.monitors)
            entry = self._alternatives_entry(step_index)
            message = cut(choice.message, MAX_FAILURE_MESSAGE)
            if (entry.get("chosen"), entry.get("reason")) != (choice.candidate.name, choice.reason):
                self._event(
                    "Warning" if choice.warning else "Normal",
                    choice.event_reason,
                    f"items of step {step.name} now go to {choice.candidate.name} ({choice.reason}): "
                    f"{choice.message}",
                )
            entry.update(chosen=choice.candidate.name, reason=choice.reason, message=message)
        return choice.candidate

    def _served(self, step_index: int, job: ObservedJob) -> None:
        """Count the finished item-step `job` for the app that served it (label
        `mmif.dev/alternative`): once, in the status patch that records its outcome."""
        if job.alternative is None:
            return
        entry = self._alternatives_entry(step_index)
        served = [dict(s) for s in entry.get("served") or ()]
        count = next((s for s in served if s.get("name") == job.alternative), None)
        if count is None:
            if len(served) >= A.MAX_CANDIDATES:
                return  # (cannot happen: one entry per candidate; the bound holds anyway)
            count = {"name": job.alternative, "items": 0, "failed": 0}
            served.append(count)
        count["items"] = int(count.get("items") or 0) + 1
        if job.state is JobState.FAILED:
            count["failed"] = int(count.get("failed") or 0) + 1
        entry["served"] = served

    def _items(self, cancel: bool, timed_out: bool) -> None:
        n = int(self.status["itemCount"])
        nsteps = len(self.step_names)
        states = itemstates.decode(self.status.get("itemStates"), n)
        masks = decode_failed_steps(self.status.get("itemFailedSteps"), n)
        jobs_by_item: dict[int, dict[int, ObservedJob]] = defaultdict(dict)
        manifest: ObservedJob | None = None
        for job in self.observed:
            if job.kind is JobKind.STEP:
                if (
                    job.item is not None
                    and job.step is not None
                    and 0 <= job.item < n
                    and 0 <= job.step < nsteps
                ):
                    jobs_by_item[job.item][job.step] = job
                elif job.finished:
                    self._delete(job)
            elif job.kind is JobKind.MANIFEST:
                manifest = job
            elif job.kind is JobKind.PREPARE:
                self._delete(job)  # its outcome (itemCount) is recorded

        # 1. Record the outcome of every finished Job at an item's current step.
        for i, by_step in jobs_by_item.items():
            st = states[i]
            while True:
                if st.phase is ItemPhase.PENDING and 0 in by_step:
                    st = ItemState(0, ItemPhase.RUNNING)  # created, status patch lost: in flight
                current = by_step.get(st.step)
                if st.phase is ItemPhase.RUNNING and current is not None and current.finished:
                    self._served(st.step, current)
                    st = self._outcome(i, st.step, current, masks)
                    self._delete(current)
                    continue
                break
            states[i] = st
            for step, job in by_step.items():
                if st.phase.terminal or step < st.step:
                    self._delete(job)  # accounted for (or the Job of a cancelled item)

        # 2. Cancel or time out: items not terminal become Cancelled, their Jobs go.
        stop: tuple[str, str] | None = None  # (event, message)
        all_terminal = all(s.phase.terminal for s in states)
        if not all_terminal and manifest is None and (cancel or timed_out):
            stopped = 0
            for i, st in enumerate(states):
                if not st.phase.terminal:
                    if st.phase is ItemPhase.RUNNING:
                        stopped += 1
                    states[i] = ItemState(st.step, ItemPhase.CANCELLED)
                    for job in jobs_by_item.get(i, {}).values():
                        self._delete(job)
            if cancel:
                stop = (EV_CANCEL_REQUESTED, f"cancelled: {stopped} items in flight stopped")
            else:
                stop = (
                    EV_DEADLINE_REACHED,
                    f"the run exceeded its timeout of "
                    f"{self.spec.timeout_seconds}s: {stopped} items in flight stopped",
                )
            all_terminal = True

        # 3. Start pending items up to `parallelism`, and create the Job of every item in flight.
        if not all_terminal:
            limit = self.spec.parallelism
            in_flight = sum(1 for s in states if s.phase is ItemPhase.RUNNING)
            if in_flight < limit and not self.hold_starts:
                for i, st in enumerate(states):
                    if in_flight >= limit:
                        break
                    if st.phase is ItemPhase.PENDING:
                        states[i] = ItemState(0, ItemPhase.RUNNING)
                        in_flight += 1
            # Items further along first: their Jobs free a slot soonest, and an item that just
            # finished a step should not wait behind items that only start (the handler creates
            # at most a bounded number of Jobs per pass, in this order).
            missing = [
                (i, st.step)
                for i, st in enumerate(states)
                if st.phase is ItemPhase.RUNNING and st.step not in jobs_by_item.get(i, {})
            ]
            for i, step in sorted(missing, key=lambda m: -m[1]):
                self.plan.create.append(
                    J.step_job(
                        self.ctx,
                        self.spec.params,
                        self.pipeline,
                        i,
                        step,
                        self.image,
                        self._choose(step),
                        last=self.spans[step],
                    )
                )

        # 4. The status.
        counts = count_items(states)
        encoded = itemstates.encode(states)
        self.status["itemStates"] = encoded
        if any(masks) or self.old.get("itemFailedSteps"):
            self.status["itemFailedSteps"] = encode_failed_steps(masks)
        self.status["itemCount"] = n
        self.status["progress"] = f"{counts.done}/{n}"
        self.status["itemsSucceeded"] = counts.succeeded
        self.status["itemsFailed"] = counts.failed
        self.status["itemsCancelled"] = counts.cancelled
        self.status["steps"] = step_counts(states, masks, self.step_names)
        if self.new_failures:
            self.status["failures"] = capped(
                [*(self.status.get("failures") or []), *self.new_failures], MAX_FAILURES
            )
        self.plan.item_states = states

        # 5. Every item terminal: on to the manifest (the next stage, planned in this pass too).
        if stop is not None:
            self._fire(*stop)
        elif all_terminal:
            self._fire(EV_ITEMS_DONE, f"{counts.done}/{n} items done; writing the manifest")
        else:
            message = f"{counts.done}/{n} items done, {counts.running} in flight"
            if self.hold_starts and counts.pending:
                message += f"; {counts.pending} wait until the pods waiting for room on the nodes are placed"
            self._condition(UNKNOWN, R_RUNNING, message)
            self._deadline_requeue()

    # -- the manifest ---------------------------------------------------------------------
    def _write_manifest(self) -> None:
        """WritingManifest, Cancelling, TimingOut: every item is terminal; the manifest Job
        writes manifest.json, then the run goes where the outcome's row leads (it ends, or e.g.
        awaits a review)."""
        if not self._snapshot():
            return
        n = int(self.status["itemCount"])
        states = itemstates.decode(self.status.get("itemStates"), n)
        manifest: ObservedJob | None = None
        for job in self.observed:
            if job.kind is JobKind.MANIFEST:
                manifest = job
            elif job.kind in (JobKind.STEP, JobKind.PREPARE):
                self._delete(job)  # every item is terminal: accounted for
        self.plan.item_states = states
        counts = count_items(states)
        stop = self.stage if self.stage in (STAGE_CANCELLING, STAGE_TIMING_OUT) else None
        message, event = self._final_outcome(
            states, stop, self.spec.status is RunSpecStatus.CANCELLED, counts
        )
        row = transition(self.template, self.stage, event)
        writing = {
            STAGE_CANCELLING: R_CANCELLING,
            STAGE_TIMING_OUT: R_TIMING_OUT,
        }.get(self.stage or "", R_FINALIZING)
        states_config_map = names.states_config_map_name(self.name, self.uid)
        if manifest is None:
            try:
                self.plan.create_config_maps.extend(
                    J.manifest_inputs(
                        self.ctx, self.status["itemStates"], failurereasons.payload(self.status)
                    )
                )
            except runner_input.TooLarge as e:
                self._fire(EV_MANIFEST_FAILED, f"{message}; the manifest Job cannot be given {e}")
                return
            phase = _value(self.template.state(row.target).phase)
            self.plan.create.append(J.manifest_job(self.ctx, self.pipeline, self.image, phase))
            self._condition(UNKNOWN, writing, f"{message}; writing the manifest")
        elif manifest.state is JobState.SUCCEEDED:
            self._delete(manifest)
            self.plan.delete_config_maps.append(states_config_map)
            path = f"{self.ctx.run_dir}/{MANIFEST_FILE}"
            self.status["manifestPath"] = path  # written now
            if not row.terminal:  # the run goes on (e.g. to its review): say where the results are
                message = f"run {self.meta.get('namespace')}/{self.name}: {message}; the manifest is {path}"
            self._fire(event, message)
        elif not manifest.exists:
            self._refused(manifest, "manifest")
        elif manifest.state is JobState.FAILED:
            self.plan.delete_config_maps.append(states_config_map)
            msg = self._tm(manifest)
            detail = msg.get("message") or manifest.message or manifest.reason or "the manifest Job failed"
            self._fire(EV_MANIFEST_FAILED, f"{message}; the manifest Job failed: {detail}")
        else:
            self._condition(UNKNOWN, writing, f"{message}; writing the manifest")

    def _final_outcome(
        self, states: list[ItemState], stop: str | None, cancel: bool, counts: Counts
    ) -> tuple[str, str]:
        """(message, event) of the run's outcome once the manifest is written."""
        summary = (
            f"{counts.succeeded} succeeded, {counts.failed} failed, {counts.cancelled} cancelled"
            f" of {counts.total} items"
        )
        if stop == STAGE_CANCELLING or (stop is None and counts.cancelled and cancel):
            return f"cancelled: {summary}", EV_CANCELLED
        if stop == STAGE_TIMING_OUT or (stop is None and counts.cancelled):
            return (
                f"the run exceeded its timeout of {self.spec.timeout_seconds}s: {summary}",
                EV_TIMED_OUT,
            )
        if counts.failed:
            return failed_at_summary(states, self.step_names), EV_ITEMS_FAILED
        return f"{counts.succeeded} of {counts.total} items succeeded", EV_ALL_ITEMS_SUCCEEDED


STAGES: dict[str, Callable[[_Planner], None]] = {
    "pending": _Planner._pending,
    "preparing": _Planner._preparing,
    "running_items": _Planner._running_items,
    "write_manifest": _Planner._write_manifest,
    "awaiting_review": _Planner._awaiting_review,
    "publishing": _Planner._publishing,
    "terminal": _Planner._terminal,
}
"""The stage functions, by the name a template's state gives (`State.plans`)."""


def progress_only(plan: RunPlan, old_status: Mapping[str, Any]) -> bool:
    """Whether the plan's status patch only moves progress forward (item states, counts, the
    condition's message): no phase change or state-machine event, no Event to post, no new
    failure, no new spec generation, snapshot or app image (handler: read once per step). Such a patch may wait a little and be merged
    with the next ones; the Jobs it would account for are deleted after the patch that does."""
    return (
        plan.phase == old_status.get("phase")
        and plan.phase not in TERMINAL_PHASES
        and not plan.phase_events
        and not plan.events
        and not plan.delete_run
        and not {"failures", "observedGeneration", "pipelineSpec", "appImages"} & plan.status_patch.keys()
    )


def plan_run(
    run: Run,
    pipeline_spec: PipelineSpec | None,
    observed: Iterable[ObservedJob],
    now: datetime,
    *,
    operator_image: str,
    termination_messages: Mapping[str, Any] | None = None,
    item_count: int | None = None,
    workspace_found: bool = True,
    template: Template | None = None,
    pipeline: Mapping[str, Any] | None = None,
    siblings: Iterable[Sibling] | None = None,
    pipeline_invalid: str | None = None,
    records: RecordTarget | None = None,
    monitors: Sequence[A.MonitorView] = (),
    record_runs: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    pool_problem: str | None = None,
    hold_starts: bool = False,
) -> RunPlan:
    """Decide what to do for one PipelineRun.

    run: the PipelineRun (`parse_run`: `metadata` with name/namespace/uid/generation, the spec
        and the snapshot parsed, `status`).
    pipeline_spec: the referenced Pipeline's spec, parsed, when it exists (None when not found);
        once the run started, its snapshot `status.pipelineSpec` is used instead.
    pipeline_invalid: why the referenced Pipeline's spec does not parse (the run waits for it
        as for a Pipeline that is not Ready).
    observed: the run's child Jobs (`ObservedJob.from_job`); Jobs of another run uid are ignored.
    now: the current time (timezone-aware).
    termination_messages: Job name → the runner's termination message (dict or JSON text) of the
        Jobs `termination_messages_needed` names; missing ones fall back to the Job's condition.
    item_count: the batch size, if the handler already knows it; otherwise the prepare Job's
        termination message (`itemCount`) or the inline items give it.
    workspace_found: False when `spec.workspace.claimName` does not exist (the run waits).
    template: the state machine the run follows (kinds/pipelinerun/phases.py); by default the one
        its pipeline snapshot asks for (`template_for`: `run-with-review` when review is required).
    pipeline: the referenced Pipeline object (metadata and status), while the run is pending: it
        starts only once the Pipeline is Ready for its generation (`pipeline_not_ready`). Not
        given: not checked.
    records: the record store of the run's project (None: not in a project, or no store); the
        publish Job makes a record of each item that succeeded there.
    monitors: the Monitors of the run's namespace, for the steps with `alternatives`
        (kinds/pipelinerun/alternatives.py: which app each launched item-step goes to).
    record_runs: the runs index `run_records_by_namespace` (namespace -> entries), for the
        conflicts a passed run meets before it publishes (kinds/pipelinerun/conflicts.py);
        None: not looked for.
    pool_problem: why the app pools of the warm steps cannot be made (kinds/pipelinerun/pools.py,
        `ensure`), while the run is pending: it starts only once they are. None: made, or none.
    hold_starts: a pod of the run waits for room on the nodes (core/podstart.py,
        `waiting_for_room`): no pending item starts until it is placed (the items in flight go
        on), so the scheduler gives the room that comes back to the oldest pods first.
    A pending run waits for each of these until `metadata.creationTimestamp` +
    `spec.startTimeoutSeconds`, then fails with the reason it waited for.
    """
    return _Planner(
        run.meta,
        run.spec,
        run.status,
        run.snapshot,
        pipeline_spec,
        observed,
        now,
        operator_image,
        termination_messages or {},
        item_count,
        workspace_found,
        template,
        pipeline,
        siblings,
        pipeline_invalid,
        records,
        monitors,
        record_runs,
        pool_problem,
        hold_starts,
    ).run_plan()


def plan_invalid_run(
    run: Mapping[str, Any], problem: InvalidSpec, observed: Iterable[ObservedJob], now: datetime
) -> RunPlan:
    """The plan for a run whose spec or snapshot does not parse (an object stored before a
    schema change): it cannot go on, so it fails (`Succeeded=False InvalidSpec`, the message
    naming the field) from whatever stage it is in; an ended run only loses its Jobs. Never an
    exception, so never a crash loop."""
    status = run.get("status") or {}
    template = template_for(status.get("pipelineSpec"))  # (its state names the template's)
    planner = _Planner(
        run.get("metadata") or {}, None, status, None, None, observed, now, "", {}, None, True, template
    )
    return planner.invalid(problem.message)


def termination_messages_needed(run: Mapping[str, Any], observed: Iterable[ObservedJob]) -> list[str]:
    """Names of the Jobs whose pod termination message `plan_run` will read: the finished
    prepare Job while the item count is unknown, the failed step Jobs whose outcome is not yet
    recorded, and a failed manifest Job. Jobs already accounted for are skipped (no reads)."""
    status = run.get("status") or {}
    if status.get("phase") in TERMINAL_PHASES:
        return []
    out: list[str] = []
    count = status.get("itemCount")
    states = itemstates.decode(status.get("itemStates"), count) if count is not None else None
    uid = (run.get("metadata") or {}).get("uid") or ""
    for job in observed:
        if not job.exists or not job.owned_by(uid):
            continue
        if (job.kind is JobKind.PREPARE and job.finished and count is None) or (
            job.kind in (JobKind.MANIFEST, JobKind.PUBLISH) and job.state is JobState.FAILED
        ):
            out.append(job.name)
        elif (
            job.kind is JobKind.STEP
            and job.state is JobState.FAILED
            and states is not None
            and job.item is not None
            and job.step is not None
            and 0 <= job.item < len(states)
        ):
            st = states[job.item]
            if not st.phase.terminal and job.step >= st.step:
                out.append(job.name)
    return out
