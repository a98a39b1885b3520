"""The run-workflow table allows exactly its transitions; templates can be extended."""

from __future__ import annotations

import pytest

from mmif_operator.core.model import ConditionStatus
from mmif_operator.kinds.pipelinerun.model import RunPhase, RunStage
from mmif_operator.kinds.pipelinerun.phases import (
    RUN_WITH_REVIEW,
    RUN_WORKFLOW,
    TEMPLATES,
    Announce,
    Event,
    Notify,
    State,
    Template,
    Transition,
    TransitionError,
    insert_state,
    template_for,
    transition,
    with_review,
)
from mmif_operator.notifications.model import NotificationEvent

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
        ("Pending", "Started", "Preparing", "Unknown", "Running"),
        ("Preparing", "Prepared", "RunningItems", "Unknown", "Running"),
        ("RunningItems", "ItemsDone", "WritingManifest", "Unknown", "Finalizing"),
        ("RunningItems", "CancelRequested", "Cancelling", "Unknown", "Cancelling"),
        ("RunningItems", "DeadlineReached", "TimingOut", "Unknown", "TimingOut"),
        ("WritingManifest", "AllItemsSucceeded", "Succeeded", "True", "Succeeded"),
        ("WritingManifest", "ItemsFailed", "Failed", "False", "ItemsFailed"),
        ("TimingOut", "TimedOut", "Failed", "False", "Timeout"),
        ("Cancelling", "Cancelled", "Cancelled", "False", "Cancelled"),
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
        ("RunningItems", "Started"),
        ("RunningItems", "NoSuchEvent"),
        ("WritingManifest", "CancelRequested"),  # the manifest is written whatever comes
        (None, "Started"),
    ],
)
def test_transition_outside_table_is_refused(phase, event):
    with pytest.raises(TransitionError, match=f"event '{event}' is not allowed in state"):
        transition(RUN_WORKFLOW, phase, event)


def test_refusal_lists_the_allowed_events():
    with pytest.raises(TransitionError, match=r"allowed: none \(terminal\)"):
        transition(RUN_WORKFLOW, "Cancelled", "Cancelled")


def test_terminal_states_are_the_ends():
    assert RUN_WORKFLOW.terminal_states == {"Succeeded", "Failed", "Cancelled"}


def test_every_state_is_a_run_stage_and_shows_a_run_phase_of_the_crd():
    for template in TEMPLATES.values():
        assert set(template.state_names) <= set(RunStage)
        assert {s.phase for s in template.states} <= set(RunPhase)
    # The fine stages of processing all show phase Running, as before status.stage existed.
    running = {s.name for s in RUN_WORKFLOW.states if s.phase == RunPhase.RUNNING}
    assert running == {"Preparing", "RunningItems", "WritingManifest", "Cancelling", "TimingOut"}


def test_every_run_that_ends_posts_an_event():
    for template in TEMPLATES.values():
        for t in template.transitions:
            if t.terminal:
                assert any(isinstance(a, Announce) for a in t.actions), t


def test_table_sets_every_documented_reason():
    assert {t.reason for t in RUN_WORKFLOW.transitions} >= DOCUMENTED_REASONS


@pytest.mark.parametrize(
    ("transitions", "message"),
    [
        (
            (Transition("A", "go", "Z", ConditionStatus.TRUE, "Done", True, (Announce(),)),),
            "'Z' is not one of",
        ),
        (
            (
                Transition("A", "go", "B", ConditionStatus.TRUE, "Done", True, (Announce(),)),
                Transition("A", "go", "B", ConditionStatus.TRUE, "Done", True, (Announce(),)),
            ),
            "two transitions",
        ),
        ((Transition("A", "go", "B", ConditionStatus.TRUE, "Done", False),), "terminal must be"),
        ((Transition("A", "go", "B", ConditionStatus.TRUE, "Done", True),), "ends the run silently"),
    ],
)
def test_inconsistent_table_is_refused(transitions, message):
    with pytest.raises(ValueError, match=message):
        Template("broken", "", (State("A", "Running", "x"), State("B", "Succeeded", "y")), transitions)


def test_insert_state_adds_a_stage_between_writing_the_manifest_and_succeeded():
    qa = insert_state(
        RUN_WORKFLOW,
        name="run-with-qa",
        description="With a QA stage.",
        state=State("Reviewing", "Running", "reviewing"),
        after="WritingManifest",
        before="Succeeded",
        reason="Reviewing",
        leave_event="ReviewPassed",
        enter_actions=[Announce()],
        shared_events=[Event.MANIFEST_FAILED],
        extra=[
            Transition(
                "Reviewing",
                "ReviewFailed",
                "Failed",
                ConditionStatus.FALSE,
                "ReviewFailed",
                True,
                (Announce(),),
            )
        ],
    )
    assert qa.state_names.index("Reviewing") == qa.state_names.index("WritingManifest") + 1
    into = transition(qa, "WritingManifest", Event.ALL_ITEMS_SUCCEEDED)
    assert (into.target, into.status, into.terminal) == ("Reviewing", "Unknown", False)
    assert into.actions == (Announce(),), "entering does what the new state asks, not the old end"
    out = transition(qa, "Reviewing", "ReviewPassed")
    assert (out.target, out.status, out.reason) == ("Succeeded", "True", "Succeeded")
    assert out.terminal and Notify(NotificationEvent.RUN_SUCCEEDED) in out.actions
    assert transition(qa, "Reviewing", Event.MANIFEST_FAILED).target == "Failed"
    assert transition(qa, "Reviewing", "ReviewFailed").target == "Failed"
    assert qa.state("Reviewing").plans == "reviewing"
    with pytest.raises(TransitionError):
        transition(qa, "Reviewing", Event.ITEMS_FAILED)
    assert transition(RUN_WORKFLOW, "WritingManifest", Event.ALL_ITEMS_SUCCEEDED).target == "Succeeded"


def test_run_with_review_is_run_workflow_with_the_review_decorator():
    assert with_review(RUN_WORKFLOW) == RUN_WITH_REVIEW
    assert RUN_WITH_REVIEW.name == "run-with-review"
    # Every row of run-workflow but the success is in run-with-review unchanged.
    success = transition(RUN_WORKFLOW, "WritingManifest", Event.ALL_ITEMS_SUCCEEDED)
    assert set(RUN_WORKFLOW.transitions) - set(RUN_WITH_REVIEW.transitions) == {success}
    into = transition(RUN_WITH_REVIEW, "WritingManifest", Event.ALL_ITEMS_SUCCEEDED)
    assert (into.target, into.status, into.reason) == ("AwaitingReview", "Unknown", "AwaitingReview")
    assert Notify(NotificationEvent.AWAITING_REVIEW) in into.actions
    passed = transition(RUN_WITH_REVIEW, "AwaitingReview", Event.REVIEW_PASSED)
    assert passed.target == "Publishing" and Notify(NotificationEvent.REVIEW_PASSED) in passed.actions
    done = transition(RUN_WITH_REVIEW, "Publishing", Event.PUBLISHED)
    assert done.target == "Succeeded" and done.actions == success.actions
    failed = transition(RUN_WITH_REVIEW, "Publishing", Event.PUBLISH_FAILED)
    assert failed.reason == "PublishFailed" and Notify(NotificationEvent.PUBLISH_FAILED) in failed.actions
    for event, reason in [
        (Event.REVIEW_FAILED, "ReviewFailed"),
        (Event.REVIEW_TIMED_OUT, "ReviewTimeout"),
        (Event.SUPERSEDED, "Superseded"),
    ]:
        row = transition(RUN_WITH_REVIEW, "AwaitingReview", event)
        assert (row.target, row.reason) == ("Failed", reason)
    assert transition(RUN_WITH_REVIEW, "AwaitingReview", Event.CANCELLED).target == "Cancelled"
    assert RUN_WITH_REVIEW.state("AwaitingReview").phase == "AwaitingReview"
    assert RUN_WITH_REVIEW.state("Publishing").phase == "Publishing"


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        (None, "run-workflow"),
        ({"steps": []}, "run-workflow"),
        ({"review": {"required": False}}, "run-workflow"),
        ({"review": {"required": True}}, "run-with-review"),
    ],
)
def test_template_for_follows_the_review_policy(spec, name):
    assert template_for(spec).name == name
