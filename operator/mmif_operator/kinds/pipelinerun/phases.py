"""The stages of a run and the moves between them, as one declarative table per template.

A template lists its states and its transitions. Each state names the stage function of the
planner that plans a run in it (`State.plans`, looked up in kinds/pipelinerun/planning.py's `STAGES`) and the
`status.phase` it shows (several stages share phase `Running`). Each transition says which event
moves a run from one state to another, which status and reason it gives the run's `Succeeded`
condition, and what else it does (`actions`: `Announce` posts a Kubernetes Event, `Notify` asks
for a notification). `transition()` looks an event up; anything not in the table is an error.

New stages are added by deriving a template with `insert_state()` (e.g. `with_review`), not by
editing `RUN_WORKFLOW`: a new stage is one stage function and its rows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from mmif_operator.core.model import ConditionStatus
from mmif_operator.kinds.pipelinerun.model import RunPhase, RunStage
from mmif_operator.notifications.model import NotificationEvent

UNKNOWN, TRUE, FALSE = ConditionStatus.UNKNOWN, ConditionStatus.TRUE, ConditionStatus.FALSE
PENDING, PREPARING, RUNNING_ITEMS, WRITING_MANIFEST, CANCELLING, TIMING_OUT = (
    RunStage.PENDING,
    RunStage.PREPARING,
    RunStage.RUNNING_ITEMS,
    RunStage.WRITING_MANIFEST,
    RunStage.CANCELLING,
    RunStage.TIMING_OUT,
)
AWAITING_REVIEW, PUBLISHING = RunStage.AWAITING_REVIEW, RunStage.PUBLISHING
SUCCEEDED, FAILED, CANCELLED = RunStage.SUCCEEDED, RunStage.FAILED, RunStage.CANCELLED


class Event(enum.StrEnum):
    """What the operator observed; the events of `run-workflow` and `run-with-review`."""

    CREATED = "Created"
    PIPELINE_NOT_FOUND = "PipelineNotFound"
    WORKSPACE_NOT_FOUND = "WorkspaceNotFound"
    PIPELINE_NOT_READY = "PipelineNotReady"
    PIPELINE_NOT_FOUND_TOO_LONG = "PipelineNotFoundTooLong"
    WORKSPACE_NOT_FOUND_TOO_LONG = "WorkspaceNotFoundTooLong"
    PIPELINE_NOT_READY_TOO_LONG = "PipelineNotReadyTooLong"
    APP_POOL_NOT_MADE = "AppPoolNotMade"  # a warm step's pool cannot be made (kinds/pipelinerun/pools.py)
    APP_POOL_NOT_MADE_TOO_LONG = "AppPoolNotMadeTooLong"
    INVALID_SPEC = "InvalidSpec"
    STARTED = "Started"
    PREPARED = "Prepared"  # the prepare Job listed the batch
    PREPARE_FAILED = "PrepareFailed"
    OUTPUT_CONFLICT = "OutputConflict"
    ITEMS_DONE = "ItemsDone"  # every item is terminal: the manifest is written next
    CANCEL_REQUESTED = "CancelRequested"  # spec.status Cancelled while items run: they are stopped
    DEADLINE_REACHED = "DeadlineReached"  # spec.timeoutSeconds passed while items run: stopped
    ALL_ITEMS_SUCCEEDED = "AllItemsSucceeded"
    ITEMS_FAILED = "ItemsFailed"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"
    MANIFEST_FAILED = "ManifestFailed"
    NAME_CONFLICT = "NameConflict"  # a Job's name is held by another's object
    CREATE_FAILED = "CreateFailed"  # the API server refused a Job (422)
    SNAPSHOT_LOST = "SnapshotLost"  # status.pipelineSpec is gone: the run cannot go on
    # run-with-review
    REVIEW_PASSED = "ReviewPassed"
    REVIEW_FAILED = "ReviewFailed"
    REVIEW_TIMED_OUT = "ReviewTimedOut"
    SUPERSEDED = "Superseded"  # another run of the same request passed its review
    CONFLICTS_FOUND = "ConflictsFound"  # a Pass with onConflict Block met conflicts: nothing published
    PUBLISHED = "Published"
    PUBLISH_FAILED = "PublishFailed"


@dataclass(frozen=True)
class Notify:
    """An action of a transition: send the notification `event` to the Pipeline's targets that
    asked for it."""

    event: NotificationEvent

    def __str__(self) -> str:
        return f"{{SendNotification {self.event}}}"


@dataclass(frozen=True)
class Announce:
    """An action of a transition: post a Kubernetes Event on the run, of `type` (Normal or
    Warning), with the transition's message, and `reason` (default: the condition's reason)."""

    type: str = "Normal"
    reason: str | None = None

    def __str__(self) -> str:
        detail = " ".join(x for x in (self.type if self.type != "Normal" else "", self.reason or "") if x)
        return f"{{Announce{' ' + detail if detail else ''}}}"


Action = Notify | Announce
"""What a transition does besides moving the run."""


@dataclass(frozen=True)
class State:
    """One state of a template: its name (`status.stage`), the phase it shows (`status.phase`)
    and the stage function of the planner that plans a run in it (kinds/pipelinerun/planning.py, `STAGES`)."""

    name: str
    phase: str
    plans: str
    description: str = ""


@dataclass(frozen=True)
class Transition:
    """One row of a template: on `event` in state `source`, go to `target`.

    `source` None is the start, before the run has a state. `status` and `reason` are what the
    run's `Succeeded` condition says afterwards; `terminal` is true when the run ends there.
    """

    source: str | None
    event: str
    target: str
    status: ConditionStatus
    reason: str
    terminal: bool
    actions: tuple[Action, ...] = ()

    @property
    def changes_state(self) -> bool:
        return self.source != self.target


class TransitionError(ValueError):
    """An event that the template does not allow in the current state."""


@dataclass(frozen=True)
class Template:
    """A state machine: its states and the table of transitions between them."""

    name: str
    description: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]

    def __post_init__(self) -> None:
        names = [s.name for s in self.states]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: two states of one name")
        seen: set[tuple[str | None, str]] = set()
        for t in self.transitions:
            for state in (t.source, t.target):
                if state is not None and state not in names:
                    raise ValueError(f"{self.name}: {state!r} is not one of its states")
            if (t.source, t.event) in seen:
                raise ValueError(f"{self.name}: two transitions from {t.source} on {t.event}")
            seen.add((t.source, t.event))
            if t.terminal != (t.target in self.terminal_states):
                raise ValueError(
                    f"{self.name}: {t.source} -> {t.target} on {t.event}: terminal must be "
                    f"{not t.terminal}, since {t.target} has "
                    f"{'no' if t.target in self.terminal_states else 'some'} way out"
                )
            if t.terminal and not any(isinstance(a, Announce) for a in t.actions):
                raise ValueError(f"{self.name}: {t.source} -> {t.target} on {t.event} ends the run silently")

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise TransitionError(f"{self.name}: no state {name!r} (states: {', '.join(self.state_names)})")

    @property
    def terminal_states(self) -> frozenset[str]:
        """The states without a way out."""
        sources = {t.source for t in self.transitions}
        return frozenset(s.name for s in self.states if s.name not in sources)

    def events_from(self, state: str | None) -> tuple[str, ...]:
        """The events the table allows in `state`."""
        return tuple(t.event for t in self.transitions if t.source == state)


def transition(template: Template, current: str | None, event: str) -> Transition:
    """The row of `template` for `event` in state `current` (None before the first state).

    Raises TransitionError when the table has no such row.
    """
    for t in template.transitions:
        if t.source == current and t.event == event:
            return t
    allowed = ", ".join(template.events_from(current)) or "none (terminal)"
    raise TransitionError(
        f"{template.name}: event {event!r} is not allowed in state {current!r} (allowed: {allowed})"
    )


def insert_state(
    template: Template,
    *,
    name: str,
    description: str,
    state: State,
    after: str,
    before: str,
    reason: str,
    leave_event: str,
    enter_actions: Iterable[Action] = (),
    shared_events: Iterable[str] = (),
    extra: Iterable[Transition] = (),
) -> Template:
    """Derive a template where `state` sits between `after` and `before`.

    The transitions `after -> before` now lead to `state` (condition Unknown, `reason`, doing
    `enter_actions`); `leave_event` takes the run from `state` to `before` as they did (with
    their actions). Transitions from `after` on `shared_events` (e.g. cancellation) are also
    allowed from `state`; `extra` adds the state's own transitions (e.g. its failure). The new
    state is planned by its own stage function (`state.plans`), so the stages before it are not
    planned again.
    """
    shared = set(shared_events)
    enter = tuple(enter_actions)
    transitions: list[Transition] = []
    leaving: list[Transition] = []
    for t in template.transitions:
        if t.source == after and t.target == before:
            transitions.append(
                replace(t, target=state.name, status=UNKNOWN, reason=reason, terminal=False, actions=enter)
            )
            leave = replace(t, source=state.name, event=leave_event)
            if all(x.event != leave_event for x in leaving):
                leaving.append(leave)
        else:
            transitions.append(t)
        if t.source == after and t.event in shared:
            leaving.append(replace(t, source=state.name))
    states = list(template.states)
    states.insert(template.state_names.index(after) + 1, state)
    return Template(name, description, tuple(states), (*transitions, *leaving, *extra))


NOTIFY_SUCCEEDED = Notify(NotificationEvent.RUN_SUCCEEDED)
NOTIFY_FAILED = Notify(NotificationEvent.RUN_FAILED)
NORMAL = Announce()
WARNING = Announce("Warning")
# fmt: off
_STATES = (
    State(PENDING,          RunPhase.PENDING,   "pending",        "waits for its Pipeline (Ready) and its volume"),
    State(PREPARING,        RunPhase.RUNNING,   "preparing",      "the prepare Job lists the batch and claims the output folder"),
    State(RUNNING_ITEMS,    RunPhase.RUNNING,   "running_items",  "a Job per item and step, `parallelism` items at a time"),
    State(WRITING_MANIFEST, RunPhase.RUNNING,   "write_manifest", "every item is done; the manifest Job writes manifest.json"),
    State(CANCELLING,       RunPhase.RUNNING,   "write_manifest", "spec.status Cancelled: items stopped; the manifest Job runs"),
    State(TIMING_OUT,       RunPhase.RUNNING,   "write_manifest", "spec.timeoutSeconds passed: items stopped; the manifest Job runs"),
    State(SUCCEEDED,        RunPhase.SUCCEEDED, "terminal",       "over"),
    State(FAILED,           RunPhase.FAILED,    "terminal",       "over"),
    State(CANCELLED,        RunPhase.CANCELLED, "terminal",       "over"),
)
_FAIL = (WARNING, NOTIFY_FAILED)
_RUN_WORKFLOW_ROWS = (
    #          from              event                              to                status   reason              terminal actions
    Transition(None,             Event.CREATED,                     PENDING,          UNKNOWN, "Pending",           False),
    Transition(PENDING,          Event.PIPELINE_NOT_FOUND,          PENDING,          UNKNOWN, "PipelineNotFound",  False, (WARNING,)),
    Transition(PENDING,          Event.WORKSPACE_NOT_FOUND,         PENDING,          UNKNOWN, "WorkspaceNotFound", False, (WARNING,)),
    Transition(PENDING,          Event.PIPELINE_NOT_READY,          PENDING,          UNKNOWN, "PipelineNotReady",  False, (WARNING,)),
    Transition(PENDING,          Event.APP_POOL_NOT_MADE,           PENDING,          UNKNOWN, "AppPoolNotMade",    False, (WARNING,)),
    # Waiting is bounded (spec.startTimeoutSeconds): then the run fails with what it waited for.
    Transition(PENDING,          Event.PIPELINE_NOT_FOUND_TOO_LONG, FAILED,           FALSE,   "PipelineNotFound",  True, _FAIL),
    Transition(PENDING,          Event.WORKSPACE_NOT_FOUND_TOO_LONG, FAILED,          FALSE,   "WorkspaceNotFound", True, _FAIL),
    Transition(PENDING,          Event.PIPELINE_NOT_READY_TOO_LONG, FAILED,           FALSE,   "PipelineNotReady",  True, _FAIL),
    Transition(PENDING,          Event.APP_POOL_NOT_MADE_TOO_LONG,  FAILED,           FALSE,   "AppPoolNotMade",    True, _FAIL),
    Transition(PENDING,          Event.INVALID_SPEC,                FAILED,           FALSE,   "InvalidSpec",       True, _FAIL),
    Transition(PENDING,          Event.STARTED,                     PREPARING,        UNKNOWN, "Running",           False, (Announce("Normal", "Started"),)),
    Transition(PENDING,          Event.CANCELLED,                   CANCELLED,        FALSE,   "Cancelled",         True, (NORMAL,)),
    Transition(PREPARING,        Event.PREPARED,                    RUNNING_ITEMS,    UNKNOWN, "Running",           False, (Announce("Normal", "Prepared"),)),
    Transition(PREPARING,        Event.PREPARE_FAILED,              FAILED,           FALSE,   "PrepareFailed",     True, _FAIL),
    Transition(PREPARING,        Event.OUTPUT_CONFLICT,             FAILED,           FALSE,   "OutputConflict",    True, _FAIL),
    Transition(PREPARING,        Event.CANCELLED,                   CANCELLED,        FALSE,   "Cancelled",         True, (NORMAL,)),
    Transition(PREPARING,        Event.TIMED_OUT,                   FAILED,           FALSE,   "Timeout",           True, _FAIL),
    Transition(PREPARING,        Event.NAME_CONFLICT,               FAILED,           FALSE,   "NameConflict",      True, _FAIL),
    Transition(PREPARING,        Event.CREATE_FAILED,               FAILED,           FALSE,   "CreateFailed",      True, _FAIL),
    Transition(RUNNING_ITEMS,    Event.ITEMS_DONE,                  WRITING_MANIFEST, UNKNOWN, "Finalizing",        False),
    Transition(RUNNING_ITEMS,    Event.CANCEL_REQUESTED,            CANCELLING,       UNKNOWN, "Cancelling",        False, (NORMAL,)),
    Transition(RUNNING_ITEMS,    Event.DEADLINE_REACHED,            TIMING_OUT,       UNKNOWN, "TimingOut",         False, (Announce("Warning", "TimedOut"),)),
    Transition(WRITING_MANIFEST, Event.ALL_ITEMS_SUCCEEDED,         SUCCEEDED,        TRUE,    "Succeeded",         True, (NORMAL, NOTIFY_SUCCEEDED)),
    Transition(WRITING_MANIFEST, Event.ITEMS_FAILED,                FAILED,           FALSE,   "ItemsFailed",       True, _FAIL),
    # Items found cancelled without the run being in Cancelling/TimingOut (a status written by
    # an operator older than status.stage): the same outcomes as from those stages.
    Transition(WRITING_MANIFEST, Event.CANCELLED,                   CANCELLED,        FALSE,   "Cancelled",         True, (NORMAL,)),
    Transition(WRITING_MANIFEST, Event.TIMED_OUT,                   FAILED,           FALSE,   "Timeout",           True, _FAIL),
    Transition(CANCELLING,       Event.CANCELLED,                   CANCELLED,        FALSE,   "Cancelled",         True, (NORMAL,)),
    Transition(TIMING_OUT,       Event.TIMED_OUT,                   FAILED,           FALSE,   "Timeout",           True, _FAIL),
    *(
        Transition(stage, event, FAILED, FALSE, reason, True, _FAIL)
        for stage in (WRITING_MANIFEST, CANCELLING, TIMING_OUT)
        for event, reason in (
            (Event.MANIFEST_FAILED, "ManifestFailed"),
            (Event.NAME_CONFLICT, "NameConflict"),
            (Event.CREATE_FAILED, "CreateFailed"),
        )
    ),
    # The pipeline snapshot (status.pipelineSpec) vanished (edited away by hand): nothing to follow.
    *(
        Transition(stage, Event.SNAPSHOT_LOST, FAILED, FALSE, "InvalidSpec", True, _FAIL)
        for stage in (PREPARING, RUNNING_ITEMS, WRITING_MANIFEST, CANCELLING, TIMING_OUT)
    ),
)
# fmt: on

RUN_WORKFLOW = Template(
    name="run-workflow",
    description="The life of a PipelineRun: it waits for its Pipeline and volume, prepares the "
    "batch, runs every item through the steps, writes the manifest and ends.",
    states=_STATES,
    transitions=_RUN_WORKFLOW_ROWS,
)


def with_review(template: Template) -> Template:
    """The review decorator: `template` with a person's review between the manifest and the end
    (`AwaitingReview`), then the publishing of the outputs (`Publishing`, the publish Job).

    Only a run that would have succeeded is reviewed; a run with failed, cancelled or timed-out
    items ends as in `template`.
    """
    reviewed = insert_state(
        template,
        name=f"{template.name}-with-review",
        description="",
        state=State(
            AWAITING_REVIEW,
            RunPhase.AWAITING_REVIEW,
            "awaiting_review",
            "waits for spec.review.decision (bounded by pipelineSpec.review.timeoutSeconds); no Jobs",
        ),
        after=WRITING_MANIFEST,
        before=SUCCEEDED,
        reason="AwaitingReview",
        leave_event=Event.REVIEW_PASSED,
        enter_actions=(NORMAL, Notify(NotificationEvent.AWAITING_REVIEW)),
        extra=(
            Transition(
                AWAITING_REVIEW,
                Event.REVIEW_FAILED,
                FAILED,
                FALSE,
                "ReviewFailed",
                True,
                (WARNING, Notify(NotificationEvent.REVIEW_FAILED)),
            ),
            Transition(AWAITING_REVIEW, Event.REVIEW_TIMED_OUT, FAILED, FALSE, "ReviewTimeout", True, _FAIL),
            Transition(AWAITING_REVIEW, Event.SUPERSEDED, FAILED, FALSE, "Superseded", True, _FAIL),
            # Publishing would conflict (kinds/pipelinerun/conflicts.py) and the decision said
            # Block: the run stays, for a reviewer to pass it again with Supersede (or fail it).
            Transition(
                AWAITING_REVIEW,
                Event.CONFLICTS_FOUND,
                AWAITING_REVIEW,
                UNKNOWN,
                "PublishBlocked",
                False,
                (Announce("Warning", "ConflictsFound"), Notify(NotificationEvent.CONFLICTS_FOUND)),
            ),
            Transition(AWAITING_REVIEW, Event.CANCELLED, CANCELLED, FALSE, "Cancelled", True, (NORMAL,)),
            Transition(AWAITING_REVIEW, Event.SNAPSHOT_LOST, FAILED, FALSE, "InvalidSpec", True, _FAIL),
        ),
    )
    return insert_state(
        reviewed,
        name=f"{template.name.removesuffix('-workflow')}-with-review",
        description=f"`{template.name}` with the review decorator: once every item succeeded and "
        "the manifest is written, the run waits for a person's decision on the whole run "
        "(`spec.review.decision`); a pass publishes the outputs (the publish Job writes "
        "`review.json` and marks the manifest published), a fail ends the run.",
        state=State(
            PUBLISHING,
            RunPhase.PUBLISHING,
            "publishing",
            "the publish Job writes review.json and marks the outputs published",
        ),
        after=AWAITING_REVIEW,
        before=SUCCEEDED,
        reason="Publishing",
        leave_event=Event.PUBLISHED,
        enter_actions=(NORMAL, Notify(NotificationEvent.REVIEW_PASSED)),
        extra=(
            Transition(
                PUBLISHING,
                Event.PUBLISH_FAILED,
                FAILED,
                FALSE,
                "PublishFailed",
                True,
                (WARNING, Notify(NotificationEvent.PUBLISH_FAILED)),
            ),
            Transition(
                PUBLISHING,
                Event.NAME_CONFLICT,
                FAILED,
                FALSE,
                "NameConflict",
                True,
                (WARNING, Notify(NotificationEvent.PUBLISH_FAILED)),
            ),
            Transition(
                PUBLISHING,
                Event.CREATE_FAILED,
                FAILED,
                FALSE,
                "CreateFailed",
                True,
                (WARNING, Notify(NotificationEvent.PUBLISH_FAILED)),
            ),
            Transition(PUBLISHING, Event.SNAPSHOT_LOST, FAILED, FALSE, "InvalidSpec", True, _FAIL),
        ),
    )


RUN_WITH_REVIEW = with_review(RUN_WORKFLOW)

TEMPLATES: dict[str, Template] = {t.name: t for t in (RUN_WORKFLOW, RUN_WITH_REVIEW)}
"""Every template, by name (the docs render them all)."""


def template_for(pipeline_spec: object) -> Template:
    """The template a run follows: `run-with-review` when its pipeline (snapshot) requires
    review (`review.required`), else `run-workflow`. The spec parsed (a `PipelineSpec`) or as
    stored (a dict: a snapshot that does not parse still names its template)."""
    review = getattr(pipeline_spec, "review", None)
    if review is not None and not isinstance(pipeline_spec, dict):
        return RUN_WITH_REVIEW if getattr(review, "required", False) else RUN_WORKFLOW
    review = pipeline_spec.get("review") if isinstance(pipeline_spec, dict) else None
    return RUN_WITH_REVIEW if isinstance(review, dict) and review.get("required") else RUN_WORKFLOW
