"""Review decisions at admission, on the real cluster with the real operator: the API server
itself (through the operator's mutating webhook) refuses a decision from a user who may patch runs
but not `review` them, a forged reviewer or time, and a decision on a run that is not awaiting
review; and records who decided and when. Users act by impersonation (`kubectl --as ...
--as-group ...`): reviewers through a RoleBinding to the shipped ClusterRole `mmif-reviewer`
(docs/howto.md), patchers through a Role the test creates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests import kube

pytestmark = pytest.mark.cluster

REVIEWER, REVIEWERS = "rev", "qa-team"
PATCHER, PATCHERS = "pat", "run-patchers"
RBAC = "rbac.authorization.k8s.io"
HOWTO = 'a reviewer needs the verb "review" on pipelineruns.mmif.dev (see docs/howto.md)'


def grant(namespace: str) -> None:
    """qa-team: the shipped mmif-reviewer, bound in this namespace as docs/howto.md says;
    run-patchers: a Role with every verb of a reviewer but `review`."""
    patcher_rules = [
        {"apiGroups": ["mmif.dev"], "resources": ["pipelineruns"], "verbs": ["get", "list", "watch", "patch"]}
    ]
    kube.apply(
        [
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reviewers"},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "mmif-reviewer"},
                "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": REVIEWERS}],
            },
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "Role",
                "metadata": {"name": "patcher"},
                "rules": patcher_rules,
            },
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "patchers"},
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "patcher"},
                "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": PATCHERS}],
            },
        ],
        namespace,
    )


def patch_as(user: str, group: str, namespace: str, name: str, spec: dict):
    """`kubectl patch` of the run's spec (merge), as `user` in `group`: what a reviewer types."""
    return kube.kubectl(
        "--as",
        user,
        f"--as-group={group}",
        "patch",
        "pipelinerun",
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": spec}),
        check=False,
    )


def phase_and_reason(namespace: str, name: str) -> tuple[str | None, str | None]:
    status = kube.get("pipelinerun", name, namespace).get("status") or {}
    cond = next((c for c in status.get("conditions") or () if c.get("type") == "Succeeded"), {})
    return status.get("phase"), cond.get("reason")


def waiting_run(namespace: str, build, name: str = "waiting") -> str:
    """A run that stays Pending (its volume does not exist: WorkspaceNotFound, for minutes)."""
    build.apply(build.pipeline("p", [build.step("t", "textgen")], claim_name="missing"), namespace)
    build.apply(build.run(name, "p", [build.item("media/a.mp4")], claim_name="missing"), namespace)
    kube.eventually(
        lambda: phase_and_reason(namespace, name) == ("Pending", "WorkspaceNotFound"),
        timeout=60,
        what=f"run {name} Pending with WorkspaceNotFound",
    )
    return name


def review_of(namespace: str, name: str) -> dict | None:
    return kube.get("pipelinerun", name, namespace)["spec"].get("review")


def test_a_user_with_patch_but_without_review_is_refused_saying_so(operator_deployed, namespace, build):
    grant(namespace)
    run = waiting_run(namespace, build)
    proc = patch_as(PATCHER, PATCHERS, namespace, run, {"review": {"decision": "Pass", "comment": "fine"}})
    assert proc.returncode != 0, proc.stdout
    assert f"{PATCHER} may not review pipelineruns in namespace {namespace}: {HOWTO}" in proc.stderr, (
        proc.stderr
    )
    assert review_of(namespace, run) is None
    # the same user may patch the run otherwise: what is refused is the decision, not the patch
    proc = patch_as(PATCHER, PATCHERS, namespace, run, {"ttlSecondsAfterFinished": 3600})
    assert proc.returncode == 0, proc.stderr
    assert kube.get("pipelinerun", run, namespace)["spec"]["ttlSecondsAfterFinished"] == 3600


def test_a_forged_reviewer_is_rejected_naming_the_field(operator_deployed, namespace, build):
    grant(namespace)
    run = waiting_run(namespace, build)
    proc = patch_as(REVIEWER, REVIEWERS, namespace, run, {"review": {"decision": "Pass", "reviewer": "boss"}})
    assert proc.returncode != 0, proc.stdout
    assert f"spec.review.reviewer: set by the API server from the user who decides (here '{REVIEWER}')" in (
        proc.stderr
    ), proc.stderr
    forged_time = {"decision": "Fail", "decidedAt": "2026-01-01T00:00:00Z"}
    proc = patch_as(REVIEWER, REVIEWERS, namespace, run, {"review": forged_time})
    assert proc.returncode != 0 and "spec.review.decidedAt: set by the API server" in proc.stderr, proc.stderr
    assert review_of(namespace, run) is None


def test_a_decision_on_a_run_not_awaiting_review_is_refused_naming_its_phase(
    operator_deployed, namespace, build
):
    grant(namespace)
    run = waiting_run(namespace, build)
    proc = patch_as(REVIEWER, REVIEWERS, namespace, run, {"review": {"decision": "Pass"}})
    assert proc.returncode != 0, proc.stdout
    assert (
        "spec.review: the run is not awaiting review (it is in phase Pending): a decision is taken "
        "only in phase AwaitingReview"
    ) in proc.stderr, proc.stderr
    assert review_of(namespace, run) is None
    # a new run cannot carry a decision either (an admin creates it: only the decision is refused)
    early = build.run("early", "p", [build.item("media/a.mp4")], claim_name="missing")
    early["spec"]["review"] = {"decision": "Pass"}
    proc = kube.create(early, namespace, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "spec.review: the run is not awaiting review (a new run has no phase yet)" in proc.stderr, (
        proc.stderr
    )
    assert not kube.kubectl(
        "get", "pipelinerun", "early", "-n", namespace, "--ignore-not-found", "-o", "name"
    ).stdout


def review_webhook_calls() -> float:
    """How often the API server has called the review webhook (its metric, summed over outcomes)."""
    total = 0.0
    for line in kube.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if line.startswith("apiserver_admission_webhook_request_total{") and (
            'name="review.pipelineruns.mmif.dev"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_requests_that_do_not_touch_the_review_never_reach_its_webhook(operator_deployed, namespace, build):
    grant(namespace)
    run = waiting_run(namespace, build)
    before = review_webhook_calls()
    for change in ({"ttlSecondsAfterFinished": 600}, {"status": "Cancelled"}):
        proc = patch_as(PATCHER, PATCHERS, namespace, run, change)
        assert proc.returncode == 0, proc.stderr
    kube.kubectl("label", "pipelinerun", run, "-n", namespace, "checked=no")
    build.apply(build.run("another", "p", [build.item("media/b.mp4")], claim_name="missing"), namespace)
    assert review_webhook_calls() == before
    # and a request that does touch it does reach it (so the count above can tell)
    proc = patch_as(PATCHER, PATCHERS, namespace, "another", {"review": {"decision": "Fail"}})
    assert proc.returncode != 0 and "may not review" in proc.stderr, proc.stderr
    assert review_webhook_calls() == before + 1


def test_reviewer_and_time_are_recorded(operator_deployed, namespace, workspace, build, runs):
    """Needs the review template (phase AwaitingReview; branch `spine`)."""
    grant(namespace)
    workspace.write_media({"media/a.mp4": "a\n"})
    pipeline = build.pipeline("checked", [build.step("t", "textgen")], claim_name=workspace.claim_name)
    pipeline["spec"]["review"] = {"required": True}
    build.apply(pipeline, namespace)
    build.apply(
        build.run("batch", "checked", [build.item("media/a.mp4")], claim_name=workspace.claim_name), namespace
    )
    settled = ("AwaitingReview", "Succeeded", "Failed", "Cancelled")  # not waited out when it ends
    try:
        kube.eventually(
            lambda: phase_and_reason(namespace, "batch")[0] in settled,
            timeout=180,
            interval=1,
            what="run batch AwaitingReview",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{runs.diagnostics(namespace, 'batch')}") from None
    assert phase_and_reason(namespace, "batch") == ("AwaitingReview", "AwaitingReview"), runs.diagnostics(
        namespace, "batch"
    )

    proc = patch_as(PATCHER, PATCHERS, namespace, "batch", {"review": {"decision": "Pass"}})
    assert proc.returncode != 0 and f"{PATCHER} may not review pipelineruns" in proc.stderr, proc.stderr

    before = datetime.now(UTC).replace(microsecond=0)
    proc = patch_as(
        REVIEWER, REVIEWERS, namespace, "batch", {"review": {"decision": "Pass", "comment": "checked 1 item"}}
    )
    after = datetime.now(UTC)
    assert proc.returncode == 0, proc.stderr
    decided = review_of(namespace, "batch")
    assert decided is not None
    assert (decided["decision"], decided["comment"], decided["reviewer"]) == (
        "Pass",
        "checked 1 item",
        REVIEWER,
    )
    at = datetime.fromisoformat(decided["decidedAt"].replace("Z", "+00:00"))
    assert before <= at <= after + timedelta(seconds=1), (before, decided["decidedAt"], after)

    # once made, the decision stays: a changed reviewer and a second decision are refused
    proc = patch_as(REVIEWER, REVIEWERS, namespace, "batch", {"review": {**decided, "reviewer": "boss"}})
    assert proc.returncode != 0 and "spec.review.reviewer cannot be changed" in proc.stderr, proc.stderr
    proc = patch_as(REVIEWER, REVIEWERS, namespace, "batch", {"review": {"decision": "Fail"}})
    assert proc.returncode != 0 and "spec.review.decision cannot be changed" in proc.stderr, proc.stderr
    assert review_of(namespace, "batch") == decided
