"""The webhook's decision on a run's review (admission/review.py, pure), its thin handler, and the
reviewer's ClusterRole shipped in manifests/."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from mmif_operator.admission import handler as handler
from mmif_operator.admission import review
from mmif_operator.admission.requester import Denied
from mmif_operator.core.runtime import state as runtime

ALICE = {
    "username": "alice",
    "uid": "u-1",
    "groups": [f"team-{i:03d}" for i in range(100)] + ["system:authenticated"],
    "extra": {"scopes": ["read"]},
}
NOW = datetime.datetime(2026, 12, 1, 14, 30, 5, 123456, tzinfo=datetime.UTC)
ALLOWED = {"status": {"allowed": True}}
REFUSED = {"status": {"allowed": False, "reason": ""}}
BASE = {"pipelineRef": {"name": "p"}, "workspace": {"claimName": "media"}}
REPO = Path(__file__).resolve().parents[2]


def awaiting(phase: str | None = "AwaitingReview", **spec: Any) -> dict[str, Any]:
    """An old object: the run as stored, in `phase`."""
    return {"spec": {**BASE, **spec}, "status": {"phase": phase} if phase else {}}


def update(decision: dict[str, Any], old: dict[str, Any], user=ALICE, answer=ALLOWED):
    spec = {**old["spec"], "review": decision}
    return review.decide("UPDATE", user, "a1", spec, old, answer, NOW)


def test_a_reviewer_passing_a_run_awaiting_review_is_recorded_by_name_and_time():
    assert update({"decision": "Pass", "comment": "looks right"}, awaiting()) == {
        "reviewer": "alice",
        "decidedAt": "2026-12-01T14:30:05Z",
    }
    assert update({"decision": "Fail"}, awaiting())["reviewer"] == "alice"


def test_the_access_review_asks_for_the_verb_review_on_pipelineruns_as_the_user_with_every_group():
    body = review.access_review(ALICE, "a1")
    assert body["kind"] == "SubjectAccessReview"
    assert body["spec"] == {
        "user": "alice",
        "uid": "u-1",
        "groups": ALICE["groups"],  # all 101: nothing is stored, so nothing is split off
        "extra": {"scopes": ["read"]},
        "resourceAttributes": {
            "namespace": "a1",
            "verb": "review",
            "group": "mmif.dev",
            "resource": "pipelineruns",
        },
    }


def test_a_user_without_the_review_verb_is_refused_saying_which_verb_and_resource():
    with pytest.raises(Denied) as e:
        update({"decision": "Pass"}, awaiting(), answer=REFUSED)
    assert str(e.value) == (
        'alice may not review pipelineruns in namespace a1: a reviewer needs the verb "review" on '
        "pipelineruns.mmif.dev (see docs/howto.md)"
    )
    with pytest.raises(Denied, match="may not review"):  # an explicit deny wins over an allow
        update({"decision": "Pass"}, awaiting(), answer={"status": {"allowed": True, "denied": True}})


def test_authorisation_comes_first_whatever_else_is_wrong():
    for old in (awaiting("Running"), awaiting(review={"decision": "Pass", "reviewer": "bob"})):
        with pytest.raises(Denied, match="^alice may not review pipelineruns"):
            update({"decision": "Fail", "reviewer": "mallory"}, old, answer=REFUSED)
    with pytest.raises(Denied, match="^alice may not review pipelineruns"):
        review.decide("CREATE", ALICE, "a1", {**BASE, "review": {"decision": "Pass"}}, None, REFUSED, NOW)


@pytest.mark.parametrize(
    ("forged", "fields"),
    [
        ({"reviewer": "bob"}, "spec.review.reviewer"),
        ({"decidedAt": "2026-01-01T00:00:00Z"}, "spec.review.decidedAt"),
        (
            {"reviewer": "alice", "decidedAt": "2026-01-01T00:00:00Z"},
            "spec.review.reviewer and spec.review.decidedAt",
        ),
    ],
)
def test_a_forged_reviewer_or_time_is_refused_naming_the_field(forged, fields):
    with pytest.raises(Denied) as e:
        update({"decision": "Pass", **forged}, awaiting())
    assert str(e.value).startswith(
        f"{fields}: set by the API server from the user who decides (here 'alice')"
    )


@pytest.mark.parametrize("phase", ["Pending", "Running", "Succeeded", "Failed", "Cancelled", None])
def test_a_decision_on_a_run_not_awaiting_review_is_refused_naming_its_phase(phase):
    with pytest.raises(Denied) as e:
        update({"decision": "Pass"}, awaiting(phase))
    where = f"it is in phase {phase}" if phase else "it has no phase yet"
    assert str(e.value) == (
        f"spec.review: the run is not awaiting review ({where}): a decision is taken only in phase AwaitingReview"
    )


def test_a_new_run_carrying_a_decision_is_refused():
    with pytest.raises(Denied, match=r"not awaiting review \(a new run has no phase yet\)"):
        review.decide("CREATE", ALICE, "a1", {**BASE, "review": {"decision": "Pass"}}, None, ALLOWED, NOW)
    with pytest.raises(Denied, match="spec.review.reviewer: set by the API server"):
        spec = {**BASE, "review": {"decision": "Pass", "reviewer": "alice"}}
        review.decide("CREATE", ALICE, "a1", spec, None, ALLOWED, NOW)


DECIDED = {"decision": "Pass", "comment": "ok", "reviewer": "bob", "decidedAt": "2026-12-01T10:00:00Z"}


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ({**DECIDED, "reviewer": "alice"}, "spec.review.reviewer cannot be changed"),
        ({**DECIDED, "decidedAt": "2026-12-01T11:00:00Z"}, "spec.review.decidedAt cannot be changed"),
        ({k: v for k, v in DECIDED.items() if k != "reviewer"}, "spec.review.reviewer cannot be changed"),
        (
            {**DECIDED, "decision": "Fail", "comment": "no"},
            "spec.review.comment, spec.review.decision cannot be changed",
        ),
    ],
)
def test_a_decision_made_cannot_change_the_message_names_the_field_and_who_decided(new, message):
    with pytest.raises(Denied) as e:
        update(new, awaiting("Publishing", review=DECIDED))
    assert str(e.value).startswith(message)
    assert (
        "a review decision is final once made (the decision was made by bob at 2026-12-01T10:00:00Z)"
        in str(e.value)
    )


def test_a_decision_made_cannot_be_removed():
    old = awaiting("Succeeded", review=DECIDED)
    with pytest.raises(Denied, match="^spec.review cannot be removed: the decision was made by bob"):
        review.decide("UPDATE", ALICE, "a1", dict(BASE), old, ALLOWED, NOW)


def test_requests_that_do_not_touch_the_review_are_left_alone():
    old = awaiting("Running")
    assert not review.touches_review("UPDATE", {**BASE, "status": "Cancelled"}, old["spec"])
    assert not review.touches_review("CREATE", BASE, None)
    decided = awaiting("Succeeded", review=DECIDED)
    assert not review.touches_review(
        "UPDATE", {**decided["spec"], "ttlSecondsAfterFinished": 60}, decided["spec"]
    )
    # nothing to decide, whatever the access review said (it is not even asked by the handler)
    assert review.decide("UPDATE", ALICE, "a1", {**BASE, "status": "Cancelled"}, old, REFUSED, NOW) is None
    assert review.decide("UPDATE", ALICE, "a1", decided["spec"], decided, REFUSED, NOW) is None


# --- the handler: asks the API server, patches spec.review ---------------------------------------


class FakeKube:
    def __init__(self, answer: dict[str, Any]):
        self.answer, self.asked = answer, []

    async def subject_access_review(self, body):
        self.asked.append(body)
        return self.answer


def call_handler(kube: FakeKube, spec: dict, old: dict | None, operation: str = "UPDATE") -> kopf.Patch:
    patch = kopf.Patch()
    runtime.set_kube(kube)  # type: ignore[arg-type]
    try:
        asyncio.run(
            handler.review_pipelineruns(
                operation=operation, userinfo=ALICE, spec=spec, old=old, namespace="a1", patch=patch
            )
        )
    finally:
        runtime.set_kube(None)
    return patch


def test_the_handler_asks_the_api_server_then_patches_reviewer_and_time():
    kube = FakeKube(ALLOWED)
    old = awaiting()
    patch = call_handler(kube, {**old["spec"], "review": {"decision": "Pass"}}, old)
    assert [b["spec"]["resourceAttributes"]["verb"] for b in kube.asked] == ["review"]
    assert patch["spec"]["review"]["reviewer"] == "alice"
    decided = datetime.datetime.fromisoformat(patch["spec"]["review"]["decidedAt"].replace("Z", "+00:00"))
    assert abs((decided - datetime.datetime.now(datetime.UTC)).total_seconds()) < 60


def test_the_handler_refuses_with_403_and_asks_nothing_for_other_requests():
    old = awaiting()
    with pytest.raises(kopf.AdmissionError) as e:
        call_handler(FakeKube(REFUSED), {**old["spec"], "review": {"decision": "Pass"}}, old)
    assert e.value.code == 403 and "may not review pipelineruns" in str(e.value)
    kube = FakeKube(REFUSED)
    assert not call_handler(kube, {**old["spec"], "status": "Cancelled"}, old)
    assert kube.asked == []


# --- RBAC ---------------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    return [
        d for f in sorted((REPO / "manifests").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d
    ]


def test_the_reviewer_role_grants_reviewing_runs_and_nothing_more_nor_aggregates():
    [role] = [
        d for d in manifests() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "mmif-reviewer"
    ]
    assert role["rules"] == [
        {
            "apiGroups": ["mmif.dev"],
            "resources": ["pipelineruns"],
            "verbs": ["get", "list", "watch", "patch", "review"],
        }
    ]
    assert not any(k.startswith("rbac.authorization.k8s.io/aggregate-to") for k in role["metadata"]["labels"])
    assert "aggregationRule" not in role
    assert not [
        d
        for d in manifests()
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding") and d["roleRef"]["name"] == "mmif-reviewer"
    ]


def test_the_operator_may_create_subject_access_reviews():
    [role] = [
        d for d in manifests() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "mmif-operator"
    ]
    assert {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    } in (role["rules"])
