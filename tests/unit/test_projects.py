"""Projects: the namespace and bindings a Project wants, whose a namespace is, its status, and
what admission does to a run or analysis in its namespace (kinds/project)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import kopf
import pytest
from pydantic import ValidationError

from mmif_operator.core.crdgen import RESOURCES
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec
from mmif_operator.kinds.project import defaults
from mmif_operator.kinds.project import handler as H
from mmif_operator.kinds.project import planning as P
from mmif_operator.kinds.project.model import ProjectSpec

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UID = "0b7c-uid"


def spec(**fields) -> ProjectSpec:
    return ProjectSpec.from_obj(fields)


def test_the_namespace_is_the_projects_name_labelled_and_annotated_with_its_uid():
    ns = P.desired_namespace("oral-history", UID)
    assert ns["metadata"]["name"] == "oral-history"
    assert ns["metadata"]["labels"]["mmif.dev/project"] == "oral-history"
    assert ns["metadata"]["annotations"] == {P.UID_ANNOTATION: UID}
    assert "ownerReferences" not in ns["metadata"]  # deleting the Project keeps the data


def test_a_namespace_is_ours_only_with_our_uid_and_not_while_it_is_deleted():
    ours = P.desired_namespace("p", UID)
    assert P.namespace_is_ours(ours, UID)
    assert not P.namespace_is_ours(P.desired_namespace("p", "another-uid"), UID)
    assert not P.namespace_is_ours({"metadata": {"name": "p", "labels": {"mmif.dev/project": "p"}}}, UID)
    ours["metadata"]["deletionTimestamp"] = "2026-12-01T12:00:00Z"
    assert not P.namespace_is_ours(ours, UID)


def test_role_bindings_bind_admins_and_contributors_to_the_shipped_roles():
    s = spec(admins={"users": ["alice"], "groups": ["archivists"]}, contributors={"users": ["bob"]})
    admins, contributors = P.desired_role_bindings("p", UID, s)
    assert admins["roleRef"]["name"] == "mmif-project-admin"
    assert [(x["kind"], x["name"]) for x in admins["subjects"]] == [
        ("User", "alice"),
        ("Group", "archivists"),
    ]
    assert contributors["roleRef"]["name"] == "mmif-project-contributor"
    assert [(x["kind"], x["name"]) for x in contributors["subjects"]] == [("User", "bob")]
    for binding in (admins, contributors):
        assert binding["metadata"]["namespace"] == "p"
        (owner,) = binding["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("Project", UID, True)


def test_binding_drift_is_a_change_of_subjects_not_of_their_order():
    s = spec(admins={"users": ["alice", "carol"]})
    wanted, _ = P.desired_role_bindings("p", UID, s)
    same = dict(wanted, subjects=list(reversed(wanted["subjects"])))
    assert not P.binding_drifted(same, wanted)
    fewer = dict(wanted, subjects=wanted["subjects"][:1])
    assert P.binding_drifted(fewer, wanted)


def test_status_ready_open_with_kstatus_conditions_and_observed_generation():
    s = spec(title="Oral history", projectId="OH-2026")
    status = P.project_status("p", s, 3, None, P.Outcome(True, P.R_READY, "ok"), NOW)
    assert status["phase"] == "Open"
    assert status["projectId"] == "OH-2026"
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["Ready"]["status"], conds["Reconciling"]["status"], conds["Stalled"]["status"]) == (
        "True",
        "False",
        "False",
    )
    assert all(c["observedGeneration"] == 3 for c in conds.values())


def test_a_name_conflict_is_stalled_with_no_phase():
    status = P.project_status(
        "p", spec(), 1, None, P.Outcome(False, P.R_NAME_CONFLICT, "namespace p is not ours"), NOW
    )
    conds = {c["type"]: c for c in status["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "NameConflict")
    assert conds["Stalled"]["status"] == "True"
    assert status["phase"] is None
    assert status["projectId"] == "p"


def test_a_closed_project_refuses_new_runs_naming_the_project():
    message = defaults.refusal("PipelineRun", "oral-history", "oral-history", spec(state="Closed"))
    assert message is not None and "project oral-history is Closed" in message and "PipelineRun" in message
    assert defaults.refusal("PipelineRun", "oral-history", "oral-history", spec()) is None


def test_defaults_fill_only_what_the_object_leaves_out():
    s = spec(
        defaults={"legalTags": ["internal-research"], "acl": {"owners": ["archivists"], "viewers": ["staff"]}}
    )
    assert defaults.defaulted_fields({}, s) == {
        "legalTags": ["internal-research"],
        "acl": {"owners": ["archivists"], "viewers": ["staff"]},
    }
    # Explicit ones win, an empty list included; each ACL list on its own.
    assert defaults.defaulted_fields({"legalTags": [], "acl": {"owners": ["me"]}}, s) == {
        "acl": {"owners": ["me"], "viewers": ["staff"]}
    }
    assert defaults.defaulted_fields({"legalTags": ["x"], "acl": {"owners": [], "viewers": []}}, s) == {}
    assert defaults.defaulted_fields({}, spec()) == {}


def test_the_defaulted_fields_are_valid_run_fields():
    s = spec(defaults={"legalTags": ["public-domain"], "acl": {"viewers": ["everyone"]}})
    run = {
        "pipelineRef": {"name": "p"},
        "workspace": {"claimName": "media"},
        "items": [{"documents": [{"location": "a.mp4", "mimeType": "video/mp4"}]}],
    }
    run.update(defaults.defaulted_fields(run, s))
    parsed = PipelineRunSpec.from_obj(run)
    assert parsed.legal_tags == ["public-domain"]
    assert parsed.acl is not None and parsed.acl.viewers == ["everyone"]


def test_timeline_end_before_start_is_refused():
    with pytest.raises(ValidationError, match="end must not be before start"):
        spec(timeline={"start": "2026-12-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"})


def test_the_project_crd_is_cluster_scoped_with_its_columns():
    (project,) = [r for r in RESOURCES if r.kind == "Project"]
    assert project.scope == "Cluster"
    assert [c["name"] for c in project.printer_columns] == ["Title", "State", "Ready", "Reason", "End", "Age"]


def test_a_run_may_not_use_the_record_store_as_its_workspace():
    s = spec(records={"claimName": "records"})
    refusal = defaults.record_store_refusal("PipelineRun", {"workspace": {"claimName": "records"}}, "p", s)
    assert refusal is not None and refusal.startswith(
        "spec.workspace.claimName: records is project p's record store"
    )
    assert defaults.record_store_refusal("PipelineRun", {"workspace": {"claimName": "media"}}, "p", s) is None
    assert (
        defaults.record_store_refusal("PipelineRun", {"workspace": {"claimName": "records"}}, "p", spec())
        is None
    )
    assert s.records is not None and s.records.mount_path == "/records"


def test_the_namespace_names_the_record_claim_and_loses_the_label_with_the_store():
    with_store = P.desired_namespace("p", UID, spec(records={"claimName": "records"}))
    assert with_store["metadata"]["labels"][P.RECORD_CLAIM_LABEL] == "records"
    without = P.desired_namespace("p", UID, spec())
    assert P.namespace_label_patch(with_store, without) == {
        "metadata": {"labels": {P.RECORD_CLAIM_LABEL: None}}
    }
    assert P.namespace_label_patch(with_store, with_store) is None
    assert P.namespace_label_patch({"metadata": {}}, without) == {
        "metadata": {"labels": without["metadata"]["labels"]}
    }


# --- closure ------------------------------------------------------------------------------------


def test_closing_is_refused_while_runs_are_pending_running_or_await_review_naming_them():
    refusal = P.closure_refusal(
        "oral-history", "Open", "Closed", ["r2 (Running)", "r1 (AwaitingReview)", "r2 (Running)"]
    )
    assert refusal is not None
    assert "project oral-history cannot be closed" in refusal
    assert (
        "2 PipelineRun(s) in namespace oral-history are pending, running or await review: "
        "r1 (AwaitingReview), r2 (Running)." in refusal
    )
    assert "kubectl mmif cancel RUN" in refusal
    assert P.closure_refusal("oral-history", "Open", "Closed", []) is None
    assert P.closure_refusal("oral-history", None, "Closed", []) is None
    # Not a closure: opening again, staying closed, any other edit.
    assert P.closure_refusal("p", "Closed", "Open", ["r1 (Pending)"]) is None
    assert P.closure_refusal("p", "Closed", "Closed", ["r1 (Pending)"]) is None
    assert P.closure_refusal("p", "Open", "Open", ["r1 (Pending)"]) is None
    many = [f"run-{i:03d} (Pending)" for i in range(P.CLOSURE_NAMES_SHOWN + 5)]
    text = P.closure_refusal("p", None, "Closed", many) or ""
    assert "run-019" in text and "run-020" not in text and "and 5 more" in text


def test_the_closure_index_keeps_the_runs_not_finished_with_their_phase():
    def entry(**kw):
        return asyncio.run(H.runs_holding_closure(**kw))

    assert entry(name="r1", namespace="p", status={"phase": "AwaitingReview"}) == {"p": "r1 (AwaitingReview)"}
    assert entry(name="r2", namespace="p", status={"phase": "Running"}) == {"p": "r2 (Running)"}
    assert entry(name="r3", namespace="p", status={}) == {"p": "r3 (Pending)"}, "no phase yet: Pending"
    for phase in ("Publishing", "Succeeded", "Failed", "Cancelled"):
        assert entry(name="r4", namespace="p", status={"phase": phase}) == {}, phase


def test_the_closure_webhook_reads_the_unfinished_runs_of_the_projects_namespace():
    index = {"p": ["r1 (Running)"], "other": ["x (Pending)"]}
    closing = {"spec": {"state": "Closed"}}
    with pytest.raises(kopf.AdmissionError) as refused:
        H.project_closure(name="p", spec=closing["spec"], old={"spec": {}}, **{P.CLOSURE_INDEX: index})
    assert "await review: r1 (Running)." in str(refused.value)
    assert "x" not in str(refused.value).split("review:")[1]
    # Another namespace's runs do not hold this project.
    H.project_closure(name="q", spec=closing["spec"], old={"spec": {}}, **{P.CLOSURE_INDEX: index})


def run(name, phase=None, wip=None, want=None, deleting=False, folder=True):
    status = {"phase": phase} if phase else {}
    if folder:
        status["outputPath"] = f"/data/mmif-runs/{name}"
    if wip:
        status["conditions"] = [{"type": "WorkInProgress", "status": "False", "reason": wip}]
    meta = {"name": name, **({"deletionTimestamp": "2026-12-01T11:00:00Z"} if deleting else {})}
    return {"metadata": meta, "spec": {"workInProgress": want} if want else {}, "status": status}


CLOSED = spec(state="Closed")


def test_an_open_project_plans_no_closure_and_says_open():
    plan = P.plan_closure("p", spec(), "Closed", [run("r", "Running")])
    assert plan == P.ClosurePlan("Open", ("False", P.R_PROJECT_OPEN, "the project is Open"))


def test_closing_waits_for_unfinished_runs_then_publishing_then_work_in_progress():
    runs = [run("a", "Running"), run("b", "Publishing"), run("c", "Succeeded"), run("d")]
    plan = P.plan_closure("p", CLOSED, "Open", runs)
    assert plan.phase == "Closing" and not plan.closed_now
    status, reason, message = plan.condition
    assert (status, reason) == ("False", P.R_WAITING_FOR_RUNS)
    assert "waiting for 2 PipelineRun(s) to finish: a (Running), d (Pending)" in message
    assert plan.dispose == ("c",), "a finished run's work in progress goes meanwhile"

    plan = P.plan_closure("p", CLOSED, "Closing", [run("b", "Publishing"), run("c", "Succeeded")])
    assert plan.condition[:2] == ("False", P.R_WAITING_FOR_PUBLISHING)
    assert "waiting for 1 PipelineRun(s) publishing: b" in plan.condition[2]

    plan = P.plan_closure("p", CLOSED, "Closing", [run("b", "Succeeded", wip="Deleting", want="Delete")])
    assert plan.phase == "Closing" and plan.dispose == ()
    assert plan.condition[:2] == ("False", P.R_DELETING_WIP)
    assert "work in progress of 1 finished PipelineRun(s): b (Delete: Deleting)" in plan.condition[2]


def test_closing_sets_delete_on_finished_runs_left_unset_and_respects_their_own_choice():
    runs = [
        run("unset", "Failed"),
        run("kept", "Succeeded", want="Keep"),
        run("archiving", "Cancelled", want="Archive"),
        run("gone", "Succeeded", wip="Deleted", want="Delete"),
        run("published", "Succeeded", wip="Published", want="Delete"),
        run("dying", "Succeeded", deleting=True),
        run("never-started", "Cancelled", folder=False),
    ]
    plan = P.plan_closure("p", CLOSED, "Open", runs)
    assert plan.dispose == ("unset",)
    assert plan.condition[1] == P.R_DELETING_WIP
    assert (
        "2 finished PipelineRun(s): archiving (Archive: not looked at yet), unset (set Delete now)"
        in (plan.condition[2])
    )
    # The same patch as the disposal window's: one function for both.
    assert P.disposal_patch("p") == {
        "metadata": {"annotations": {P.DISPOSED_BY_ANNOTATION: "p"}},
        "spec": {"workInProgress": "Delete"},
    }


def test_closing_ends_closed_once_nothing_is_left_and_only_once():
    runs = [run("gone", "Succeeded", wip="Deleted", want="Delete"), run("kept", "Failed", want="Keep")]
    plan = P.plan_closure("p", CLOSED, "Closing", runs)
    assert plan.phase == "Closed" and plan.closed_now and plan.dispose == ()
    assert plan.condition[:2] == ("True", P.R_PROJECT_CLOSED)
    assert "no new PipelineRuns or AnalysisJobs in namespace p; its records are kept" in plan.condition[2]
    assert "1 run(s) keep their work in progress" in plan.condition[2]
    again = P.plan_closure("p", CLOSED, "Closed", None)
    assert again.phase == "Closed" and not again.closed_now, "no second Event or notification"
    assert P.plan_closure("p", CLOSED, None, []).closed_now, "created Closed: closed at once"


def test_the_closure_wait_names_at_most_the_shown_runs_then_counts():
    runs = [run(f"r{i:03d}", "Publishing") for i in range(P.CLOSURE_NAMES_SHOWN + 3)]
    message = P.plan_closure("p", CLOSED, "Closing", runs).condition[2]
    assert "r019" in message and "r020" not in message and "and 3 more" in message


def test_the_closure_status_sets_phase_condition_and_closed_at():
    base = {"phase": "Closed", "conditions": [{"type": "Ready", "status": "True"}]}
    closing = P.plan_closure("p", CLOSED, "Open", [run("b", "Publishing")])
    out = P.with_closure_status(base, closing, True, None, NOW, 3)
    assert out["phase"] == "Closing" and out["closedAt"] is None
    cond = next(c for c in out["conditions"] if c["type"] == P.CONDITION_CLOSED)
    assert cond["status"] == "False" and cond["reason"] == P.R_WAITING_FOR_PUBLISHING
    assert cond["observedGeneration"] == 3
    assert any(c["type"] == "Ready" for c in out["conditions"]), "other conditions kept"

    closed = P.plan_closure("p", CLOSED, "Closing", [])
    out = P.with_closure_status(out, closed, True, None, NOW, 3)
    assert out["phase"] == "Closed" and out["closedAt"] == "2026-12-01T12:00:00Z"
    later = datetime(2026, 12, 2, tzinfo=UTC)
    kept = P.plan_closure("p", CLOSED, "Closed", None)
    stays = P.with_closure_status(out, kept, True, out["closedAt"], later, 3)
    assert stays["closedAt"] == "2026-12-01T12:00:00Z", "kept while Closed"
    opened = P.with_closure_status(stays, P.plan_closure("p", spec(), "Closed", None), True, "x", later, 4)
    assert opened["phase"] == "Open" and opened["closedAt"] is None, "removed when opened again"
    not_ready = P.with_closure_status({"phase": None}, closed, False, None, NOW, 3)
    assert not_ready["phase"] is None, "no phase before the namespace is the project's"


class ClosureKube:
    def __init__(self, runs):
        self.runs, self.patched = runs, []

    async def list_custom(self, plural, namespace, labels):
        assert (plural, namespace) == ("pipelineruns", "p")
        return self.runs

    async def patch_custom(self, plural, namespace, name, patch):
        self.patched.append((namespace, name, patch))


def closure_pass(monkeypatch, runs, previous, queue_fails=False):
    kube, posted, queued = ClosureKube(runs), [], []

    async def queue(k, name, note, *, now=None):
        if queue_fails:
            raise RuntimeError("API down")
        queued.append(note)
        return True

    monkeypatch.setattr(H.runtime, "kube", lambda: kube)
    monkeypatch.setattr(H.notify, "queue", queue)
    monkeypatch.setattr(H.k8s_events, "post", lambda obj, t, reason, message: posted.append(reason))
    body = {"kind": "Project", "metadata": {"name": "p"}}
    out = asyncio.run(H._closure_status("p", CLOSED, {"phase": previous}, {"conditions": []}, NOW, 2, body))
    return out, kube, posted, queued


def test_a_closing_pass_sets_delete_on_finished_runs_then_closes_with_an_event_and_a_notification(
    monkeypatch,
):
    out, kube, posted, queued = closure_pass(monkeypatch, [run("done", "Succeeded")], "Open")
    assert kube.patched == [("p", "done", P.disposal_patch("p"))]
    assert out["phase"] == "Closing" and posted == ["Disposed"] and queued == []
    gone = [run("done", "Succeeded", wip="Deleted", want="Delete")]
    out, kube, posted, queued = closure_pass(monkeypatch, gone, "Closing")
    assert out["phase"] == "Closed" and out["closedAt"] == "2026-12-01T12:00:00Z"
    assert posted == [P.EV_PROJECT_CLOSED] and [n.key for n in queued] == ["ProjectClosed/2"]
    out, kube, posted, queued = closure_pass(monkeypatch, [], "Closed")
    assert out["phase"] == "Closed" and posted == [] and queued == [], "closed once"


def test_a_closure_whose_notification_cannot_be_queued_stays_closing_saying_why(monkeypatch):
    out, _, posted, _ = closure_pass(monkeypatch, [], "Closing", queue_fails=True)
    assert out["phase"] == "Closing" and posted == []
    cond = next(c for c in out["conditions"] if c["type"] == P.CONDITION_CLOSED)
    assert cond["reason"] == P.R_NOTIFYING and "API down" in cond["message"]


def test_the_closing_timer_serves_only_ready_projects_closing():
    ready = [{"type": "Ready", "status": "True"}]
    assert H._is_closing({"state": "Closed"}, {"phase": "Closing", "conditions": ready})
    assert H._is_closing({"state": "Closed"}, {"phase": "Open", "conditions": ready})
    assert not H._is_closing({"state": "Closed"}, {"phase": "Closed", "conditions": ready})
    assert not H._is_closing({"state": "Open"}, {"phase": "Open", "conditions": ready})
    name_conflict = [{"type": "Ready", "status": "False", "reason": "NameConflict"}]
    assert not H._is_closing({"state": "Closed"}, {"conditions": name_conflict})
