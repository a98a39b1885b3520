"""The phases of a run and the moves between them, as one declarative table per template.

A template lists its states and its transitions; each transition says which event moves a run
from one phase to another and which status and reason it gives the run's `Succeeded` condition.
`transition()` looks an event up; anything not in the table is an error. New stages (a QA step
between Running and Succeeded, say) are added by deriving a template with `insert_state()`,
not by editing `RUN_WORKFLOW`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ..api.common import ConditionStatus
from ..api.notifications import NotificationEvent
from ..api.pipelinerun import RunPhase

UNKNOWN, TRUE, FALSE = ConditionStatus.UNKNOWN, ConditionStatus.TRUE, ConditionStatus.FALSE
PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    RunPhase.PENDING,
    RunPhase.RUNNING,
    RunPhase.SUCCEEDED,
    RunPhase.FAILED,
    RunPhase.CANCELLED,
)


class Event(enum.StrEnum):
    """What the operator observed; the events of `run-workflow`."""

    CREATED = "Created"
    PIPELINE_NOT_FOUND = "PipelineNotFound"
    WORKSPACE_NOT_FOUND = "WorkspaceNotFound"
    PIPELINE_NOT_READY = "PipelineNotReady"
    PIPELINE_NOT_FOUND_TOO_LONG = "PipelineNotFoundTooLong"
    WORKSPACE_NOT_FOUND_TOO_LONG = "WorkspaceNotFoundTooLong"
    PIPELINE_NOT_READY_TOO_LONG = "PipelineNotReadyTooLong"
    INVALID_SPEC = "InvalidSpec"
    STARTED = "Started"
    PREPARE_FAILED = "PrepareFailed"
    OUTPUT_CONFLICT = "OutputConflict"
    ALL_ITEMS_SUCCEEDED = "AllItemsSucceeded"
    ITEMS_FAILED = "ItemsFailed"
    TIMED_OUT = "TimedOut"
    CANCELLED = "Cancelled"
    MANIFEST_FAILED = "ManifestFailed"
    NAME_CONFLICT = "NameConflict"  # the prepare or manifest Job's name is held by another's object
    CREATE_FAILED = "CreateFailed"  # the API server refused the prepare or manifest Job (422)


@dataclass(frozen=True)
class Notify:
    """An action of a transition: send the notification `event` to the Pipeline's targets that
    asked for it."""

    event: NotificationEvent

    def __str__(self) -> str:
        return f"{{SendNotification {self.event}}}"


Action = Notify
"""What a transition does besides moving the run (more kinds of action join this union)."""


@dataclass(frozen=True)
class Transition:
    """One row of a template: on `event` in phase `source`, go to `target`.

    `source` None is the start, before the run has a phase. `status` and `reason` are what the
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
    def changes_phase(self) -> bool:
        return self.source != self.target


class TransitionError(ValueError):
    """An event that the template does not allow in the current phase."""


@dataclass(frozen=True)
class Template:
    """A state machine: its states and the table of transitions between them."""

    name: str
    description: str
    states: tuple[str, ...]
    transitions: tuple[Transition, ...]

    def __post_init__(self) -> None:
        seen: set[tuple[str | None, str]] = set()
        for t in self.transitions:
            for state in (t.source, t.target):
                if state is not None and state not in self.states:
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

    @property
    def terminal_states(self) -> frozenset[str]:
        """The states without a way out."""
        sources = {t.source for t in self.transitions}
        return frozenset(s for s in self.states if s not in sources)

    def events_from(self, phase: str | None) -> tuple[str, ...]:
        """The events the table allows in `phase`."""
        return tuple(t.event for t in self.transitions if t.source == phase)


def transition(template: Template, current_phase: str | None, event: str) -> Transition:
    """The row of `template` for `event` in `current_phase` (None before the first phase).

    Raises TransitionError when the table has no such row.
    """
    for t in template.transitions:
        if t.source == current_phase and t.event == event:
            return t
    allowed = ", ".join(template.events_from(current_phase)) or "none (terminal)"
    raise TransitionError(
        f"{template.name}: event {event!r} is not allowed in phase {current_phase!r} (allowed: {allowed})"
    )


def insert_state(
    template: Template,
    *,
    name: str,
    description: str,
    state: str,
    after: str,
    before: str,
    reason: str,
    leave_event: str,
    shared_events: Iterable[str] = (),
    extra: Iterable[Transition] = (),
) -> Template:
    """Derive a template where `state` sits between `after` and `before`.

    The transitions `after -> before` now lead to `state` (condition Unknown, `reason`);
    `leave_event` takes the run from `state` to `before` as they did. Transitions from `after`
    on `shared_events` (e.g. cancellation) are also allowed from `state`; `extra` adds the
    state's own transitions (e.g. its failure).
    """
    shared = set(shared_events)
    transitions: list[Transition] = []
    for t in template.transitions:
        if t.source == after and t.target == before:
            transitions.append(replace(t, target=state, status=UNKNOWN, reason=reason, terminal=False))
            transitions.append(replace(t, source=state, event=leave_event))
        else:
            transitions.append(t)
        if t.source == after and t.event in shared:
            transitions.append(replace(t, source=state))
    states = list(template.states)
    states.insert(states.index(after) + 1, state)
    return Template(name, description, tuple(states), (*transitions, *extra))


NOTIFY_SUCCEEDED = Notify(NotificationEvent.RUN_SUCCEEDED)
NOTIFY_FAILED = Notify(NotificationEvent.RUN_FAILED)

# fmt: off
RUN_WORKFLOW = Template(
    name="run-workflow",
    description="The life of a PipelineRun: it waits for its Pipeline and volume, prepares the "
    "batch, runs every item through the steps, writes the manifest and ends.",
    states=(PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED),
    transitions=(
        #          from     event                      to         status   reason              terminal
        Transition(None,    Event.CREATED,             PENDING,   UNKNOWN, "Pending",           False),
        Transition(PENDING, Event.PIPELINE_NOT_FOUND,  PENDING,   UNKNOWN, "PipelineNotFound",  False),
        Transition(PENDING, Event.WORKSPACE_NOT_FOUND, PENDING,   UNKNOWN, "WorkspaceNotFound", False),
        Transition(PENDING, Event.PIPELINE_NOT_READY,  PENDING,   UNKNOWN, "PipelineNotReady",  False),
        # Waiting is bounded (spec.startTimeoutSeconds): then the run fails with what it waited for.
        Transition(PENDING, Event.PIPELINE_NOT_FOUND_TOO_LONG,  FAILED, FALSE, "PipelineNotFound",  True, (NOTIFY_FAILED,)),
        Transition(PENDING, Event.WORKSPACE_NOT_FOUND_TOO_LONG, FAILED, FALSE, "WorkspaceNotFound", True, (NOTIFY_FAILED,)),
        Transition(PENDING, Event.PIPELINE_NOT_READY_TOO_LONG,  FAILED, FALSE, "PipelineNotReady",  True, (NOTIFY_FAILED,)),
        Transition(PENDING, Event.INVALID_SPEC,        FAILED,    FALSE,   "InvalidSpec",       True, (NOTIFY_FAILED,)),
        Transition(PENDING, Event.STARTED,             RUNNING,   UNKNOWN, "Running",           False),
        Transition(PENDING, Event.CANCELLED,           CANCELLED, FALSE,   "Cancelled",         True),
        Transition(RUNNING, Event.PREPARE_FAILED,      FAILED,    FALSE,   "PrepareFailed",     True, (NOTIFY_FAILED,)),
        Transition(RUNNING, Event.OUTPUT_CONFLICT,     FAILED,    FALSE,   "OutputConflict",    True, (NOTIFY_FAILED,)),
        Transition(RUNNING, Event.ALL_ITEMS_SUCCEEDED, SUCCEEDED, TRUE,    "Succeeded",         True, (NOTIFY_SUCCEEDED,)),
        Transition(RUNNING, Event.ITEMS_FAILED,        FAILED,    FALSE,   "ItemsFailed",       True, (NOTIFY_FAILED,)),
        Transition(RUNNING, Event.TIMED_OUT,           FAILED,    FALSE,   "Timeout",           True, (NOTIFY_FAILED,)),
        Transition(RUNNING, Event.CANCELLED,           CANCELLED, FALSE,   "Cancelled",         True),
        Transition(RUNNING, Event.MANIFEST_FAILED,     FAILED,    FALSE,   "ManifestFailed",    True, (NOTIFY_FAILED,)),
        Transition(RUNNING, Event.NAME_CONFLICT,       FAILED,    FALSE,   "NameConflict",      True, (NOTIFY_FAILED,)),
        Transition(RUNNING, Event.CREATE_FAILED,       FAILED,    FALSE,   "CreateFailed",      True, (NOTIFY_FAILED,)),
    ),
)
# fmt: on

TEMPLATES: dict[str, Template] = {t.name: t for t in (RUN_WORKFLOW,)}
"""Every template, by name (the docs render them all)."""
