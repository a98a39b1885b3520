"""The run-workflow table allows exactly its transitions; templates can be extended."""

from __future__ import annotations

import pytest

from mmif_operator.api.common import ConditionStatus
from mmif_operator.api.pipelinerun import RunPhase
from mmif_operator.statemachine.table import (
    RUN_WORKFLOW,
    TEMPLATES,
    Event,
    Template,
    Transition,
    TransitionError,
    insert_state,
    transition,
)

DOCUMENTED_REASONS = {
    "Running",
    "PipelineNotFound",
    "WorkspaceNotFound",
    "Succeeded",
    "ItemsFailed",
    "Cancelled",
    "Timeout",
    "InvalidSpec",
    "PrepareFailed",
    "OutputConflict",
}


def test_created_run_starts_pending_and_undecided():
    t = transition(RUN_WORKFLOW, None, Event.CREATED)
    assert t.target == RunPhase.PENDING and t.status is ConditionStatus.UNKNOWN


@pytest.mark.parametrize(
    ("phase", "event", "target", "status", "reason"),
    [
        ("Pending", "PipelineNotFound", "Pending", "Unknown", "PipelineNotFound"),
        ("Pending", "Started", "Running", "Unknown", "Running"),
        ("Running", "AllItemsSucceeded", "Succeeded", "True", "Succeeded"),
        ("Running", "ItemsFailed", "Failed", "False", "ItemsFailed"),
        ("Running", "TimedOut", "Failed", "False", "Timeout"),
        ("Pending", "Cancelled", "Cancelled", "False", "Cancelled"),
    ],
)
def test_transition_gives_target_and_condition(phase, event, target, status, reason):
    t = transition(RUN_WORKFLOW, phase, event)
    assert (t.target, t.status, t.reason) == (target, status, reason)
    assert t.terminal == (target in {"Succeeded", "Failed", "Cancelled"})


@pytest.mark.parametrize(
    ("phase", "event"),
    [
        ("Succeeded", "Cancelled"),  # a finished run stays finished
        ("Failed", "Started"),
        ("Pending", "AllItemsSucceeded"),
        ("Running", "Started"),
        ("Running", "NoSuchEvent"),
        (None, "Started"),
    ],
)
def test_transition_outside_table_is_refused(phase, event):
    with pytest.raises(TransitionError, match=f"event '{event}' is not allowed in phase"):
        transition(RUN_WORKFLOW, phase, event)


def test_refusal_lists_the_allowed_events():
    with pytest.raises(TransitionError, match=r"allowed: none \(terminal\)"):
        transition(RUN_WORKFLOW, "Cancelled", "Cancelled")


def test_terminal_states_are_the_ends():
    assert RUN_WORKFLOW.terminal_states == {"Succeeded", "Failed", "Cancelled"}


def test_every_state_is_a_run_phase_of_the_crd():
    for template in TEMPLATES.values():
        assert set(template.states) <= set(RunPhase)


def test_table_sets_every_documented_reason():
    assert {t.reason for t in RUN_WORKFLOW.transitions} >= DOCUMENTED_REASONS


@pytest.mark.parametrize(
    ("transitions", "message"),
    [
        ((Transition("A", "go", "Z", ConditionStatus.TRUE, "Done", True),), "'Z' is not one of"),
        (
            (
                Transition("A", "go", "B", ConditionStatus.TRUE, "Done", True),
                Transition("A", "go", "B", ConditionStatus.TRUE, "Done", True),
            ),
            "two transitions",
        ),
        ((Transition("A", "go", "B", ConditionStatus.TRUE, "Done", False),), "terminal must be"),
    ],
)
def test_inconsistent_table_is_refused(transitions, message):
    with pytest.raises(ValueError, match=message):
        Template("broken", "", ("A", "B"), transitions)


def test_insert_state_adds_a_stage_between_running_and_succeeded():
    qa = insert_state(
        RUN_WORKFLOW,
        name="run-with-qa",
        description="With a QA stage.",
        state="Reviewing",
        after="Running",
        before="Succeeded",
        reason="Reviewing",
        leave_event="ReviewPassed",
        shared_events=[Event.CANCELLED, Event.TIMED_OUT],
        extra=[
            Transition("Reviewing", "ReviewFailed", "Failed", ConditionStatus.FALSE, "ReviewFailed", True)
        ],
    )
    assert qa.states.index("Reviewing") == qa.states.index("Running") + 1
    into = transition(qa, "Running", Event.ALL_ITEMS_SUCCEEDED)
    assert (into.target, into.status, into.terminal) == ("Reviewing", "Unknown", False)
    out = transition(qa, "Reviewing", "ReviewPassed")
    assert (out.target, out.status, out.reason) == ("Succeeded", "True", "Succeeded")
    assert out.terminal
    assert transition(qa, "Reviewing", Event.CANCELLED).target == "Cancelled"
    assert transition(qa, "Reviewing", "ReviewFailed").target == "Failed"
    with pytest.raises(TransitionError):
        transition(qa, "Reviewing", Event.ITEMS_FAILED)
    assert transition(RUN_WORKFLOW, "Running", Event.ALL_ITEMS_SUCCEEDED).target == "Succeeded"
