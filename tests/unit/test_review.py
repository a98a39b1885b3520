"""run-with-review: the run awaits a decision, publishes on Pass (the publish Job and
`mmif-runner publish`), fails on Fail, timeout or a sibling that passed first."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.kinds.pipelinerun import children as jobs
from mmif_operator.kinds.pipelinerun import planning as R
from mmif_operator.kinds.pipelinerun.model import PipelineRunStatus
from mmif_operator.kinds.pipelinerun.review import DEFAULT_REVIEW_TIMEOUT_SECONDS, ReviewPolicy
from mmif_operator.notifications.model import NotificationEvent
from mmif_operator.runner import cli
from mmif_operator.runner import env as E
from mmif_operator.runner.exitcodes import ExitCode
from tests.unit import typed as T
from tests.unit.test_builders_jobs import check_restricted
from tests.unit.test_reconcile_run import PIPELINE, T0, Sim, cond, make_run

REVIEWED = {**PIPELINE, "review": {"required": True, "timeoutSeconds": 600}}


def reviewed_sim(n_items=2, request=None, **spec):
    run = make_run(n_items=n_items, parallelism=n_items, **spec)
    if request:
        run["metadata"]["labels"] = {L.REQUEST: request}
    return Sim(run, pipeline=copy.deepcopy(REVIEWED))


def to_review(sim):
    sim.started(len(sim.run["spec"]["items"]))
    items_and_manifest(sim)


def items_and_manifest(sim):
    """Every step Job succeeds, then the manifest Job; the plan of the pass after it."""
    for _ in range(100):
        active = [j for j in sim.jobs.values() if j.kind.value == "step"]
        if not active:
            break
        for j in active:
            sim.finish(j.name)
        sim.step()
    assert "run-1-manifest" in sim.jobs
    sim.finish("run-1-manifest")
    return sim.step()


def test_the_default_review_timeout_is_declared_once_in_the_model():
    assert ReviewPolicy(required=True).timeout_seconds == DEFAULT_REVIEW_TIMEOUT_SECONDS == 604800
    assert (
        R.review_timeout(T.pipe({"steps": [{"name": "a", "image": "a:1"}], "review": {"required": True}}))
        == DEFAULT_REVIEW_TIMEOUT_SECONDS
    )


def test_a_run_without_review_succeeds_as_before():
    sim = Sim(make_run(n_items=2, parallelism=2))
    sim.started(2)
    plan = items_and_manifest(sim)
    assert plan.phase == "Succeeded" and sim.run["status"]["stage"] == "Succeeded"
    assert [n.event for n in plan.notifications] == [NotificationEvent.RUN_SUCCEEDED]
    assert "review" not in sim.run["status"]


def test_a_reviewed_run_awaits_its_review_with_no_jobs_and_a_bounded_wait():
    sim = reviewed_sim()
    sim.started(2)
    plan = items_and_manifest(sim)
    st = sim.run["status"]
    assert plan.phase == "AwaitingReview" and st["stage"] == "AwaitingReview"
    c = cond(st)
    assert (c["status"], c["reason"]) == ("Unknown", "AwaitingReview")
    assert "/data/mmif-runs/run-1/manifest.json" in c["message"] and "spec.review.decision" in c["message"]
    assert st["review"]["deadline"] == "2025-01-01T12:10:00Z"  # requestedAt + timeoutSeconds 600
    assert plan.requeue_after == pytest.approx(600)
    [note] = plan.notifications
    assert note.event == NotificationEvent.AWAITING_REVIEW
    assert "run ns/run-1" in note.message and "/data/mmif-runs/run-1/manifest.json" in note.message
    assert any(e.reason == "AwaitingReview" for e in plan.events)
    assert st["history"][-1]["to"] == "AwaitingReview"
    PipelineRunStatus.model_validate(st)
    # The next passes create nothing (the manifest Job is not made again) and fire nothing.
    again = sim.step()
    assert again.create == [] and again.phase_events == [] and again.events == []
    assert again.status_patch.keys() <= {"conditions"}


def test_pass_publishes_then_succeeds():
    sim = reviewed_sim()
    to_review(sim)
    sim.run["spec"]["review"] = {"decision": "Pass", "comment": "looks right", "reviewer": "alice"}
    sim.run["metadata"]["generation"] = 2
    plan = sim.step()
    st = sim.run["status"]
    assert plan.phase == "Publishing" and [n.event for n in plan.notifications] == [
        NotificationEvent.REVIEW_PASSED
    ]
    assert st["review"]["decision"] == "Pass" and st["review"]["comment"] == "looks right"
    assert st["review"]["reviewer"] == "alice"
    [body] = plan.create
    assert body["metadata"]["name"] == names.publish_job_name("run-1") == "run-1-publish"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    pod = body["spec"]["template"]["spec"]
    check_restricted(pod)
    assert body["spec"]["activeDeadlineSeconds"] == jobs.PUBLISH_DEADLINE_SECONDS
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert pod["containers"][0]["command"] == ["mmif-runner", "publish"]
    assert env[E.REVIEW_DECISION] == "Pass" and env[E.REVIEW_COMMENT] == "looks right"
    assert env[E.MANIFEST_PATH] == "/data/mmif-runs/run-1/manifest.json"
    # Killed and restarted: the Job (same name) is adopted, not made again.
    assert sim.step().create == []
    sim.finish("run-1-publish")
    plan = sim.step()
    st = sim.run["status"]
    assert plan.phase == "Succeeded" and cond(st)["reason"] == "Succeeded" and cond(st)["status"] == "True"
    assert [n.event for n in plan.notifications] == [NotificationEvent.RUN_SUCCEEDED]
    assert st["review"]["recordPath"] == "/data/mmif-runs/run-1/review.json"
    assert "run-1-publish" in plan.delete
    assert [h["to"] for h in st["history"]][-3:] == ["AwaitingReview", "Publishing", "Succeeded"]
    PipelineRunStatus.model_validate(st)


def test_a_failed_publish_fails_the_run_with_publish_failed():
    sim = reviewed_sim()
    to_review(sim)
    sim.run["spec"]["review"] = {"decision": "Pass"}
    sim.step()
    sim.finish("run-1-publish", ok=False, tm={"reason": "OutputConflict", "message": "review.json exists"})
    assert "run-1-publish" in R.termination_messages_needed(sim.run, sim.jobs.values())
    plan = sim.step()
    c = cond(sim.run["status"])
    assert plan.phase == "Failed" and c["reason"] == "PublishFailed" and "review.json exists" in c["message"]
    assert [n.event for n in plan.notifications] == [NotificationEvent.PUBLISH_FAILED]
    assert "run-1-publish" not in plan.delete, "kept for its logs"


def test_fail_fails_the_run_with_the_comment():
    sim = reviewed_sim()
    to_review(sim)
    sim.run["spec"]["review"] = {"decision": "Fail", "comment": "speaker labels are wrong"}
    plan = sim.step()
    c = cond(sim.run["status"])
    assert plan.phase == "Failed" and c["reason"] == "ReviewFailed"
    assert "speaker labels are wrong" in c["message"] and plan.create == []
    assert [n.event for n in plan.notifications] == [NotificationEvent.REVIEW_FAILED]
    assert sim.run["status"]["review"]["decision"] == "Fail"


def test_cancel_while_awaiting_review():
    sim = reviewed_sim()
    to_review(sim)
    sim.run["spec"]["status"] = "Cancelled"
    plan = sim.step()
    assert plan.phase == "Cancelled" and cond(sim.run["status"])["reason"] == "Cancelled"


def test_no_decision_in_time_fails_with_review_timeout():
    sim = reviewed_sim()
    to_review(sim)
    sim.now = T0 + timedelta(seconds=599)
    assert sim.step().phase == "AwaitingReview"
    sim.now = T0 + timedelta(seconds=600)
    plan = sim.step()
    c = cond(sim.run["status"])
    assert plan.phase == "Failed" and c["reason"] == "ReviewTimeout" and "600 s" in c["message"]


def test_a_run_with_failed_items_is_not_reviewed():
    sim = reviewed_sim(n_items=2)
    sim.started(2)
    sim.run_all(fail={(0, 0)})
    assert sim.run["status"]["phase"] == "Failed" and cond(sim.run["status"])["reason"] == "ItemsFailed"


def test_superseded_by_is_the_first_other_run_that_passed():
    S = R.Sibling
    assert R.superseded_by("v1", []) is None
    assert R.superseded_by("v1", [S("v2", "AwaitingReview", False), S("v3", "Failed", False)]) is None
    assert R.superseded_by("v1", [S("v3", "Publishing", True), S("v2", "Succeeded", True)]) == "v2"
    assert R.superseded_by("v1", [S("v1", "Publishing", True)]) is None  # itself


def test_a_sibling_that_passed_supersedes_a_run_awaiting_review_even_one_passed_later():
    sim = reviewed_sim(request="req-7")
    to_review(sim)
    sim.run["spec"]["review"] = {"decision": "Pass"}  # passed too, but the other entered first
    plan = sim.step(siblings=[R.Sibling("run-2", "Publishing", True)])
    c = cond(sim.run["status"])
    assert plan.phase == "Failed" and c["reason"] == "Superseded" and "run-2" in c["message"]
    assert plan.create == [], "no publish Job for a superseded version"


def test_a_run_of_a_request_looks_at_its_siblings_soon_when_not_given_them():
    sim = reviewed_sim(request="req-7")
    to_review(sim)
    plan = sim.step()
    assert plan.phase == "AwaitingReview" and plan.requeue_after == pytest.approx(1.0)
    plan = sim.step(siblings=[R.Sibling("run-2", "AwaitingReview", False)])
    assert plan.phase == "AwaitingReview" and plan.requeue_after == pytest.approx(600)
    # A pass is acted on only with the siblings known (the handler lists them under a lock).
    sim.run["spec"]["review"] = {"decision": "Pass"}
    plan = sim.step()
    assert plan.phase == "AwaitingReview" and plan.create == [] and plan.requeue_after == pytest.approx(1.0)
    plan = sim.step(siblings=[R.Sibling("run-2", "AwaitingReview", False)])
    assert plan.phase == "Publishing"


def test_a_status_without_stage_is_read_as_before():
    """A run an older operator wrote (no status.stage) goes on where it was."""
    running = {"phase": "Running", "itemCount": 3, "conditions": [{"type": "Succeeded", "reason": "Running"}]}
    assert R.stage_of(running) == "RunningItems"
    assert R.stage_of({**running, "itemCount": None}) == "Preparing"
    for reason, stage in [
        ("Finalizing", "WritingManifest"),
        ("Cancelling", "Cancelling"),
        ("TimingOut", "TimingOut"),
    ]:
        assert R.stage_of({**running, "conditions": [{"type": "Succeeded", "reason": reason}]}) == stage
    assert R.stage_of({"phase": "Succeeded"}) == "Succeeded" and R.stage_of({}) is None


# -- mmif-runner publish ----------------------------------------------------------------------


@pytest.fixture
def run_folder(tmp_path):
    folder = tmp_path / "data" / "mmif-runs" / "run-1"
    folder.mkdir(parents=True)
    (folder / ".run-uid").write_text("uid-1\n")
    (folder / "manifest.json").write_text(
        json.dumps({"run": "run-1", "phase": "AwaitingReview", "items": []})
    )
    return folder


def publish(monkeypatch, folder, **overrides):
    term = folder.parent / "termination-log"
    values = {
        E.RUN_DIR: str(folder),
        E.RUN_UID: "uid-1",
        E.RUN_NAME: "run-1",
        E.RUN_NAMESPACE: "ns",
        E.MANIFEST_PATH: str(folder / "manifest.json"),
        E.REVIEW_DECISION: "Pass",
        E.REVIEW_COMMENT: "ok — vérifié",
        E.REVIEWER: "alice",
        E.REVIEW_DECIDED_AT: "2025-01-01T12:05:00Z",
        E.TERMINATION_LOG: str(term),
        **overrides,
    }
    for name in E.PUBLISH:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    code = cli.main(["publish"])
    return code, json.loads(term.read_text()) if term.exists() else None


def test_publish_writes_review_json_and_marks_the_manifest(monkeypatch, run_folder):
    code, term = publish(monkeypatch, run_folder)
    assert code == ExitCode.OK
    review = json.loads((run_folder / "review.json").read_text())
    assert review == {
        "decision": "Pass",
        "comment": "ok — vérifié",
        "reviewer": "alice",
        "decidedAt": "2025-01-01T12:05:00Z",
        "run": {"name": "run-1", "namespace": "ns", "uid": "uid-1"},
        "manifest": str(run_folder / "manifest.json"),
    }
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert manifest["published"] == {
        "review": "review.json",
        "decision": "Pass",
        "reviewer": "alice",
        "decidedAt": "2025-01-01T12:05:00Z",
    }
    assert manifest["run"] == "run-1", "the rest of the manifest is kept"
    assert not [p for p in run_folder.iterdir() if ".tmp-" in p.name], "no temporary file left"
    # A retried publish (the pod ran again) writes the same and succeeds.
    before = (run_folder / "review.json").read_bytes()
    assert publish(monkeypatch, run_folder)[0] == ExitCode.OK
    assert (run_folder / "review.json").read_bytes() == before


def test_publish_never_overwrites_a_review_json_that_is_not_its_own(monkeypatch, run_folder):
    (run_folder / "review.json").write_text('{"decision": "Fail", "by": "someone else"}')
    code, term = publish(monkeypatch, run_folder)
    assert code == ExitCode.OUTPUT_CONFLICT
    assert term["reason"] == "OutputConflict" and "review.json exists with other content" in term["message"]
    assert json.loads((run_folder / "review.json").read_text())["by"] == "someone else"
    assert "published" not in json.loads((run_folder / "manifest.json").read_text())


def test_publish_refuses_a_folder_of_another_run_and_a_failed_decision(monkeypatch, run_folder):
    code, term = publish(monkeypatch, run_folder, **{E.RUN_UID: "uid-2"})
    assert code == ExitCode.OUTPUT_CONFLICT and not (run_folder / "review.json").exists()
    code, term = publish(monkeypatch, run_folder, **{E.REVIEW_DECISION: "Fail"})
    assert code == ExitCode.INVALID_CONFIG and "only a passed run is published" in term["message"]
