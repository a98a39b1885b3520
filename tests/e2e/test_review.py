"""The review gate end to end (template `run-with-review`), as a reviewer drives it: the reviewer
is impersonated (`kubectl --as rita`) with a Role granting `get, patch` on pipelineruns and the
custom verb `review`, and patches only `spec.review.decision` and `comment` (who and when are
the admission webhook's to record).

1. A run whose Pipeline requires review awaits it (no Jobs), a pass publishes it (the publish
   Job writes review.json and marks the manifest), the run succeeds.
2. A fail ends the run with ReviewFailed and the comment; nothing is published.
3. A publish that would overwrite a review.json that is not the run's fails with PublishFailed.
4. Two versions of a request: passing one supersedes the other at once.
5. The operator SIGKILLed while a run awaits review: it still awaits; a later pass completes it.
6. A review never made fails the run at `review.timeoutSeconds` (ReviewTimeout).
7. A run awaiting review is cancelled by `spec.status: Cancelled`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests import kube

pytestmark = pytest.mark.cluster

REVIEWER = "rita"
OPERATOR_LABEL = "app.kubernetes.io/name=mmif-operator"


def reviewer_role(namespace: str) -> None:
    kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "run-reviewer"},
                "rules": [
                    {
                        "apiGroups": ["mmif.dev"],
                        "resources": ["pipelineruns"],
                        "verbs": ["get", "list", "patch", "review"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "run-reviewer"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": REVIEWER}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "run-reviewer"},
            },
        ],
        namespace,
    )


def decide(namespace: str, run: str, decision: str, comment: str) -> None:
    """`kubectl patch` of the decision as the reviewer. Right after the operator pod is replaced,
    the API server may not reach the new pod's webhook for a moment (its Service endpoints are
    being updated: "failed calling webhook ... connection refused"); a person tries again, and
    so does this, for up to 30 s. Any other refusal fails at once."""
    patch = {"spec": {"review": {"decision": decision, "comment": comment}}}
    args = (
        "--as",
        REVIEWER,
        "patch",
        "pipelinerun",
        run,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(patch),
    )

    def attempt():
        proc = kube.kubectl(*args, check=False)
        if proc.returncode == 0:
            return True
        assert "failed calling webhook" in proc.stderr, proc.stderr
        return None

    kube.eventually(attempt, timeout=30, interval=1, what=f"the decision on {run} accepted")


def setup(namespace, workspace, build, *, timeout_seconds: int | None = None) -> None:
    reviewer_role(namespace)
    workspace.write_media({"media/clip.mp4": b"not really a video\n"})
    review = {"required": True}
    if timeout_seconds is not None:
        review["timeoutSeconds"] = timeout_seconds
    build.apply(
        build.pipeline(
            "reviewed", [build.step("transcript", "textgen")], claim_name=workspace.claim_name, review=review
        ),
        namespace,
    )


def start(namespace, workspace, build, name: str, request: str | None = None) -> None:
    run = build.run(
        "", "reviewed", [build.item("media/clip.mp4", name="clip")], claim_name=workspace.claim_name
    )
    run["metadata"] = {"name": name, **({"labels": {"mmif.dev/request": request}} if request else {})}
    build.apply(run, namespace)


def awaiting(runs, namespace: str, name: str, timeout: float = 240) -> dict:
    def probe():
        run = kube.get("pipelinerun", name, namespace)
        cond = runs.condition(run)
        if cond.get("status") == "False":
            raise AssertionError(f"run {name} failed: {cond}\n{runs.diagnostics(namespace, name)}")
        return run if run.get("status", {}).get("phase") == "AwaitingReview" else None

    try:
        return kube.eventually(probe, timeout=timeout, interval=1, what=f"pipelinerun/{name} AwaitingReview")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{runs.diagnostics(namespace, name)}") from None


def ended(runs, namespace: str, name: str, timeout: float = 120) -> dict:
    run = runs.wait_to_finish(namespace, name, timeout=timeout)
    return run


def active_jobs(namespace: str, name: str) -> list[str]:
    return [
        j["metadata"]["name"]
        for j in kube.get_list("jobs", namespace, f"mmif.dev/run={name}")
        if not any(c.get("status") == "True" for c in j.get("status", {}).get("conditions") or [])
    ]


def test_a_reviewer_passes_a_run_and_its_outputs_are_published(
    operator_deployed, namespace, workspace, build, runs
):
    setup(namespace, workspace, build)
    start(namespace, workspace, build, "rev")
    run = awaiting(runs, namespace, "rev")
    cond = runs.condition(run)
    status = run["status"]
    assert (cond["status"], cond["reason"]) == ("Unknown", "AwaitingReview")
    assert status["manifestPath"] in cond["message"]
    assert status["stage"] == "AwaitingReview" and status["review"]["deadline"]
    assert active_jobs(namespace, "rev") == [], "no Jobs while awaiting review"
    manifest = json.loads(workspace.read_file(status["manifestPath"]))
    assert manifest["counts"]["succeeded"] == 1 and "published" not in manifest
    events = kube.get_list("events", namespace, None)
    assert any(
        e.get("reason") == "AwaitingReview" and e["involvedObject"].get("name") == "rev" for e in events
    )

    before = datetime.now(UTC).replace(microsecond=0)
    decide(namespace, "rev", "Pass", "transcript checked against the tape")
    after = datetime.now(UTC)
    run = ended(runs, namespace, "rev")
    cond = runs.condition(run)
    assert (cond["status"], cond["reason"]) == ("True", "Succeeded"), runs.diagnostics(namespace, "rev")
    status = run["status"]
    assert [h["to"] for h in status["history"]][-3:] == ["AwaitingReview", "Publishing", "Succeeded"]
    assert status["review"]["decision"] == "Pass"
    assert status["review"]["comment"] == "transcript checked against the tape"
    # the admission webhook recorded who decided and when; they travel to status and review.json
    assert run["spec"]["review"]["reviewer"] == REVIEWER == status["review"]["reviewer"]
    decided = datetime.fromisoformat(run["spec"]["review"]["decidedAt"].replace("Z", "+00:00"))
    assert before <= decided <= after, (before, decided, after)
    assert status["review"]["decidedAt"] == run["spec"]["review"]["decidedAt"]
    review = json.loads(workspace.read_file(status["review"]["recordPath"]))
    assert (review["reviewer"], review["decidedAt"]) == (REVIEWER, run["spec"]["review"]["decidedAt"])
    assert status["review"]["recordPath"] == f"{status['outputPath']}/review.json"
    assert review["decision"] == "Pass" and review["comment"] == "transcript checked against the tape"
    assert review["run"] == {"name": "rev", "namespace": namespace, "uid": run["metadata"]["uid"]}
    assert review["manifest"] == status["manifestPath"]
    manifest = json.loads(workspace.read_file(status["manifestPath"]))
    assert manifest["published"]["review"] == "review.json" and manifest["published"]["decision"] == "Pass"


def test_a_reviewer_fails_a_run_with_a_comment(operator_deployed, namespace, workspace, build, runs):
    setup(namespace, workspace, build)
    start(namespace, workspace, build, "rev")
    run = awaiting(runs, namespace, "rev")
    decide(namespace, "rev", "Fail", "speaker names are wrong")
    run = ended(runs, namespace, "rev")
    cond = runs.condition(run)
    assert (cond["status"], cond["reason"]) == ("False", "ReviewFailed")
    assert "speaker names are wrong" in cond["message"]
    assert run["status"]["phase"] == "Failed" and run["status"]["review"]["decision"] == "Fail"
    files = workspace.list_files(run["status"]["outputPath"])
    assert not any(f.endswith("review.json") for f in files), files


def test_a_publish_that_would_overwrite_another_review_json_fails_with_publish_failed(
    operator_deployed, namespace, workspace, build, runs
):
    setup(namespace, workspace, build)
    start(namespace, workspace, build, "rev")
    run = awaiting(runs, namespace, "rev")
    squatter = '{"decision": "Fail", "note": "written by someone else"}\n'
    workspace.write_media({f"{run['status']['outputPath']}/review.json": squatter})
    decide(namespace, "rev", "Pass", "fine")
    run = ended(runs, namespace, "rev")
    cond = runs.condition(run)
    assert (cond["status"], cond["reason"]) == ("False", "PublishFailed"), runs.diagnostics(namespace, "rev")
    assert "review.json" in cond["message"] and "other content" in cond["message"]
    assert workspace.read_file(f"{run['status']['outputPath']}/review.json").decode() == squatter
    manifest = json.loads(workspace.read_file(run["status"]["manifestPath"]))
    assert "published" not in manifest


def test_passing_one_version_of_a_request_supersedes_the_other(
    operator_deployed, namespace, workspace, build, runs
):
    setup(namespace, workspace, build)
    start(namespace, workspace, build, "take-1", request="req-1")
    start(namespace, workspace, build, "take-2", request="req-1")
    start(namespace, workspace, build, "other", request="req-2")
    for name in ("take-1", "take-2", "other"):
        awaiting(runs, namespace, name)
    decide(namespace, "take-2", "Pass", "the better take")
    loser = ended(runs, namespace, "take-1", timeout=30)  # at once, not at a timer
    cond = runs.condition(loser)
    assert (cond["status"], cond["reason"]) == ("False", "Superseded")
    assert "take-2" in cond["message"]
    winner = ended(runs, namespace, "take-2")
    assert runs.condition(winner)["reason"] == "Succeeded"
    # Another request is not touched.
    assert kube.get("pipelinerun", "other", namespace)["status"]["phase"] == "AwaitingReview"


def test_a_run_awaiting_review_survives_the_operator_killed(
    operator_deployed, namespace, workspace, build, runs
):
    setup(namespace, workspace, build)
    start(namespace, workspace, build, "rev")
    before = awaiting(runs, namespace, "rev")
    ns_op = operator_deployed.namespace
    old = [p["metadata"]["name"] for p in kube.get_list("pods", ns_op, OPERATOR_LABEL)]
    assert len(old) == 1, old
    kube.kubectl("delete", "pod", old[0], "-n", ns_op, "--grace-period=0", "--force")

    def new_operator_ready():
        return [
            p
            for p in kube.get_list("pods", ns_op, OPERATOR_LABEL)
            if p["metadata"]["name"] not in old
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p["status"].get("conditions") or []
            )
        ]

    kube.eventually(new_operator_ready, timeout=120, what="a new operator pod Ready")
    after = kube.get("pipelinerun", "rev", namespace)
    assert after["status"]["phase"] == "AwaitingReview"
    assert after["status"]["review"] == before["status"]["review"], "the wait is not restarted"
    assert active_jobs(namespace, "rev") == []

    decide(namespace, "rev", "Pass", "after the restart")
    run = ended(runs, namespace, "rev")
    assert runs.condition(run)["reason"] == "Succeeded", runs.diagnostics(namespace, "rev")
    jobs = {j["metadata"]["name"] for j in kube.get_list("jobs", namespace, "mmif.dev/run=rev")}
    assert "rev-manifest" not in jobs and "rev-publish" not in jobs, "done and deleted"
    review = json.loads(workspace.read_file(run["status"]["review"]["recordPath"]))
    assert review["comment"] == "after the restart"


def test_a_review_never_made_fails_the_run_at_its_timeout(
    operator_deployed, namespace, workspace, build, runs
):
    setup(namespace, workspace, build, timeout_seconds=8)
    start(namespace, workspace, build, "rev")
    awaiting(runs, namespace, "rev")
    run = ended(runs, namespace, "rev", timeout=60)
    cond = runs.condition(run)
    assert (cond["status"], cond["reason"]) == ("False", "ReviewTimeout")
    assert "8 s" in cond["message"]


def test_a_run_awaiting_review_can_be_cancelled(operator_deployed, namespace, workspace, build, runs):
    setup(namespace, workspace, build)
    start(namespace, workspace, build, "rev")
    awaiting(runs, namespace, "rev")
    kube.kubectl(
        "patch",
        "pipelinerun",
        "rev",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"status":"Cancelled"}}',
    )
    run = ended(runs, namespace, "rev", timeout=30)
    cond = runs.condition(run)
    assert (cond["status"], cond["reason"]) == ("False", "Cancelled") and run["status"][
        "phase"
    ] == "Cancelled"
    assert "awaiting its review" in cond["message"]
