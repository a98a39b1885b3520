"""Conflicts at publish time (issue 12 part 4): the pure detection (kinds/pipelinerun/conflicts.py),
what the planner does with a Pass that meets them (Block, Supersede, Ignore), the review webhook's
re-decision and Ignore refusal, and the lineage of a record that supersedes."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from datetime import UTC, datetime, timedelta

import pytest

from mmif_operator.admission import review as admission
from mmif_operator.admission.requester import Denied
from mmif_operator.core.status import find_condition
from mmif_operator.kinds.pipelinerun import conflicts as C
from mmif_operator.kinds.pipelinerun import planning as R
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec, PipelineRunStatus
from mmif_operator.kinds.pipelinerun.phases import RUN_WITH_REVIEW
from mmif_operator.kinds.project import planning as P
from mmif_operator.kinds.project.model import ProjectSpec
from mmif_operator.records import lineage as LIN
from mmif_operator.records import store
from mmif_operator.records.publisher import RecordsContext
from mmif_operator.runner import files
from mmif_operator.runner.exitcodes import ExitCode
from mmif_operator.runner.publish import run_publish
from tests.unit import test_runner_publish as PUB
from tests.unit import test_stages as ST
from tests.unit.test_records_inputs import run_chain_from_record  # noqa: F401 - a fixture

PARENT, OTHER = ("sha256:" + c * 64 for c in "ab")
CREATED = "2026-12-01T10:00:00Z"
BEFORE, AFTER = "2026-12-01T09:00:00Z", "2026-12-01T11:00:00Z"


def entry(run, *records, phase="AwaitingReview", request=None, review=None, snapshot=True, created=CREATED):
    status = {"phase": phase}
    if snapshot:
        status["pipelineSpec"] = {"review": {"required": True}, "steps": []}
    if review:
        status["review"] = {"decision": "Pass", "decidedAt": review}
    labels = {"mmif.dev/request": request} if request else {}
    spec = {"items": [{"record": r} for r in records]}
    return P.run_records_entry(run, spec, created, status, labels)


ITEMS = [("a", PARENT), ("b", PARENT), ("#2", None), ("c", OTHER)]


def find(runs, items=ITEMS, namespace="p1", name="mine", request=None):
    return C.find_conflicts(namespace, name, CREATED, request, items, runs)


# -- detection ----------------------------------------------------------------------------------


def test_another_projects_run_working_from_the_same_parent_is_concurrent_work_naming_the_items():
    [c] = find({"p1": [entry("mine", PARENT, OTHER)], "p2": [entry("theirs", PARENT)]})
    assert (c.kind, c.record, c.project, c.run, c.phase) == (
        C.CONCURRENT_WORK,
        PARENT,
        "p2",
        "theirs",
        "AwaitingReview",
    )
    assert (c.items, c.item_count) == (("a", "b"), 2)
    assert "project p2 run theirs works from it too" in C.message([c])


@pytest.mark.parametrize("phase", ["Pending", "Running", "AwaitingReview", "Publishing"])
def test_work_in_progress_is_any_run_not_over_that_may_publish(phase):
    assert [c.kind for c in find({"p2": [entry("theirs", PARENT, phase=phase)]})] == [C.CONCURRENT_WORK]


def test_runs_that_cannot_publish_any_more_or_ever_are_no_party():
    runs = {
        "p2": [
            entry("failed", PARENT, phase="Failed"),
            entry("cancelled", PARENT, phase="Cancelled"),
            entry("done-unreviewed", PARENT, phase="Succeeded"),
        ],
        "p3": [{**entry("no-review", PARENT, phase="Running"), "publishes": False}],
    }
    assert find(runs) == []


def test_a_run_with_no_snapshot_yet_may_still_publish():
    assert entry("new", PARENT, phase="Pending", snapshot=False)["publishes"] is True


def test_work_in_progress_of_the_same_project_is_not_a_conflict_until_it_publishes():
    assert find({"p1": [entry("colleague", PARENT)]}) == []
    [c] = find({"p1": [entry("colleague", PARENT, phase="Succeeded", review=AFTER)]})
    assert (c.kind, c.project, c.published_at) == (C.NEWER_VERSION, "p1", AFTER)
    assert "published a newer version at 2026-12-01T11:00:00Z" in c.describe()


def test_a_newer_version_is_a_record_from_the_same_parent_published_after_this_run_started():
    runs = {
        "p1": [
            entry("earlier", PARENT, phase="Succeeded", review=BEFORE),  # known when this run started
            entry("publishing", OTHER, phase="Publishing", review=AFTER),  # its records are being written
        ],
        "p2": [entry("elsewhere", PARENT, phase="Succeeded", review=AFTER)],  # another project's too
    }
    assert [(c.kind, c.record, c.run) for c in find(runs)] == [
        (C.NEWER_VERSION, PARENT, "elsewhere"),
        (C.NEWER_VERSION, OTHER, "publishing"),
    ]


def test_a_passed_run_whose_publishing_failed_made_no_newer_version():
    assert find({"p1": [entry("broke", PARENT, phase="Failed", review=AFTER)]}) == []


def test_versions_of_the_same_request_and_the_run_itself_are_left_to_the_review():
    runs = {"p1": [entry("mine", PARENT), entry("v2", PARENT, phase="Succeeded", review=AFTER, request="r")]}
    assert find(runs, request="r") == []
    assert [c.run for c in find(runs, request="other")] == ["v2"]


def test_a_run_naming_no_record_has_no_conflicts():
    assert find({"p2": [entry("theirs", PARENT)]}, items=[("a", None)]) == []


def test_the_list_is_bounded_in_status_and_the_message_and_items_are_counted():
    items = [(f"i{n}", PARENT) for n in range(25)]
    runs = {f"p{n:03d}": [entry("theirs", PARENT)] for n in range(80)}
    found = find(runs, items=items)
    assert len(found) == 80 and all(c.item_count == 25 and len(c.items) == C.MAX_ITEMS_NAMED for c in found)
    status = C.conflicts_status(found, "Block", "2026-12-01T12:00:00Z")
    assert (status["count"], len(status["conflicts"])) == (80, C.MAX_CONFLICTS)
    text = C.message(found)
    assert len(text) <= C.MAX_MESSAGE and text.startswith("80 conflict(s)")
    PipelineRunStatus.model_validate({"conflicts": status})  # the CRD's schema takes it


def test_both_parties_get_a_notice_naming_the_other_run_and_the_policy():
    found = find({"p2": [entry("theirs", PARENT, OTHER)]})
    [notice] = C.notices("p1", "mine", found, "Supersede")
    assert (notice.namespace, notice.run) == ("p2", "theirs")
    assert "run p1/mine" in notice.message and "superseding yours" in notice.message


# -- the planner: a Pass meets conflicts ---------------------------------------------------------

T0 = ST.T0


def awaiting(review, items=(("a", PARENT), (None, PARENT)), conditions=None):
    run = ST.run_in(RUN_WITH_REVIEW, "AwaitingReview")
    run["spec"]["items"] = [{"record": r, **({"name": n} if n else {})} for n, r in items]
    run["spec"]["review"] = review
    if conditions:
        run["status"]["conditions"] = conditions
    return run


def plan(run, record_runs, **kw):
    return ST.plan(RUN_WITH_REVIEW, run, pipeline_spec=None, siblings=[], record_runs=record_runs, **kw)


WIP_ELSEWHERE = {"p2": [entry("theirs", PARENT)]}


def test_a_pass_meeting_conflicts_is_blocked_by_default_and_stays_awaiting_review():
    result = plan(awaiting({"decision": "Pass", "comment": "ok"}), WIP_ELSEWHERE)
    assert (result.phase, result.phase_events) == ("AwaitingReview", ["ConflictsFound"])
    assert not result.create  # no publish Job: nothing is written
    cond = find_condition(result.status["conditions"], "Conflict")
    assert (cond["status"], cond["reason"]) == ("True", "ConflictsFound")
    assert "item(s) a, #1 from record sha256:aaaaaaaaaaaa" in cond["message"]
    succeeded = find_condition(result.status["conditions"], "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("Unknown", "PublishBlocked")
    assert "--on-conflict Supersede" in succeeded["message"]
    assert result.status["conflicts"]["count"] == 1 and result.status["conflicts"]["policy"] == "Block"
    assert "decision" not in result.status["review"]  # not passed: versions of its request see no Pass
    assert [e.reason for e in result.events] == ["ConflictsFound"]
    assert [n.event for n in result.notifications] == ["ConflictsFound"]
    assert [n.run for n in result.conflict_notices] == ["theirs"]
    assert result.requeue_after == R.CONFLICT_RECHECK_SECONDS  # the other run may end meanwhile
    PipelineRunStatus.model_validate(result.status)

    # The next pass, nothing changed: no second Event, notice or notification.
    again = plan(
        {**awaiting({"decision": "Pass"}), "status": result.status},
        WIP_ELSEWHERE,
        now=T0 + timedelta(seconds=30),
    )
    assert (again.phase, again.events, again.conflict_notices, again.notifications) == (
        "AwaitingReview",
        [],
        [],
        [],
    )

    # The other run ended meanwhile: the Pass publishes.
    gone = plan(
        {**awaiting({"decision": "Pass"}), "status": result.status},
        {"p2": []},
        now=T0 + timedelta(seconds=60),
    )
    assert gone.phase == "Publishing"
    cond = find_condition(gone.status["conditions"], "Conflict")
    assert (cond["status"], cond["reason"]) == ("False", "NoConflicts")


def test_a_blocked_run_still_ends_at_its_review_deadline():
    blocked = plan(awaiting({"decision": "Pass"}), WIP_ELSEWHERE)
    late = plan(
        {**awaiting({"decision": "Pass"}), "status": blocked.status},
        WIP_ELSEWHERE,
        now=T0 + timedelta(seconds=601),
    )
    assert (late.phase, late.phase_events) == ("Failed", ["ReviewTimedOut"])


def test_supersede_publishes_and_the_publish_job_names_what_each_parent_supersedes():
    result = plan(awaiting({"decision": "Pass", "onConflict": "Supersede"}), WIP_ELSEWHERE)
    assert result.phase == "Publishing"
    cond = find_condition(result.status["conditions"], "Conflict")
    assert (cond["status"], cond["reason"]) == ("True", "ConflictsSuperseded")
    assert result.status["review"]["onConflict"] == "Supersede"


def test_the_publish_job_carries_the_superseded_parties_per_parent_record():
    target = P.RecordTarget("p1", "p1", "records", "/records")
    run = awaiting({"decision": "Pass", "onConflict": "Supersede"})
    result = plan(run, WIP_ELSEWHERE, records=target)
    [job] = [j for j in result.create if j["metadata"]["name"].endswith("-publish")]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    ctx = RecordsContext.from_json(env["MMIF_RECORDS"])
    assert ctx.supersedes == {
        PARENT: [{"kind": "ConcurrentWork", "project": "p2", "run": "theirs", "publishedAt": None}]
    }


def test_ignore_publishes_only_where_the_project_allows_it():
    run = awaiting({"decision": "Pass", "onConflict": "Ignore"})
    allowed = P.RecordTarget("p1", "p1", "records", "/records", allow_ignore=True)
    result = plan(run, WIP_ELSEWHERE, records=allowed)
    assert result.phase == "Publishing"
    assert find_condition(result.status["conditions"], "Conflict")["reason"] == "ConflictsIgnored"
    refused = plan(run, WIP_ELSEWHERE, records=dataclasses.replace(allowed, allow_ignore=False))
    assert refused.phase == "AwaitingReview"
    assert (
        "spec.conflicts.allowIgnore" in find_condition(refused.status["conditions"], "Succeeded")["message"]
    )


def test_a_pass_without_conflicts_carries_no_conflict_condition():
    result = plan(awaiting({"decision": "Pass"}), {"p2": [entry("theirs", OTHER)]})
    assert result.phase == "Publishing"
    assert find_condition(result.status["conditions"], "Conflict") is None
    assert "conflicts" not in result.status


def test_the_project_allows_ignore_in_its_spec_read_into_the_record_target():
    spec = {"records": {"claimName": "records"}, "conflicts": {"allowIgnore": True}}
    assert P.record_target([{"name": "p1", "spec": spec}]).allow_ignore is True
    assert (
        P.record_target([{"name": "p1", "spec": {"records": {"claimName": "records"}}}]).allow_ignore is False
    )
    assert ProjectSpec.from_obj({}).conflicts is None


# -- admission: onConflict in the review decision -------------------------------------------------

ALICE = {"username": "alice", "groups": ["system:authenticated"]}
ALLOWED = {"status": {"allowed": True}}
NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
PASSED = {"decision": "Pass", "comment": "fine", "reviewer": "bob", "decidedAt": "2026-12-01T13:00:00Z"}
BLOCKED = {"type": "Conflict", "status": "True", "reason": "ConflictsFound", "message": "1 conflict"}


def old_run(review=None, conditions=(BLOCKED,), phase="AwaitingReview"):
    spec = {"pipelineRef": {"name": "p"}, "workspace": {"claimName": "media"}}
    if review:
        spec["review"] = review
    return {"spec": spec, "status": {"phase": phase, "conditions": list(conditions)}}


def decide(new_review, old, **kw):
    spec = {**old["spec"], "review": new_review}
    return admission.decide("UPDATE", ALICE, "p1", spec, old, ALLOWED, NOW, project="p1", **kw)


def test_a_pass_that_conflicts_blocked_may_be_given_supersede_recording_the_new_reviewer():
    assert decide({**PASSED, "onConflict": "Supersede", "comment": "ours wins"}, old_run(PASSED)) == {
        "reviewer": "alice",
        "decidedAt": "2026-12-01T14:00:00Z",
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (old_run(PASSED, conditions=()), {**PASSED, "onConflict": "Supersede"}),  # not blocked
        (old_run(PASSED, phase="Publishing"), {**PASSED, "onConflict": "Supersede"}),
        (old_run({**PASSED, "onConflict": "Supersede"}), {**PASSED, "onConflict": "Block"}),
        (old_run(PASSED), {**PASSED, "decision": "Fail", "onConflict": "Supersede"}),
        (old_run(PASSED), {**PASSED, "onConflict": "Supersede", "reviewer": "mallory"}),
        (old_run({**PASSED, "decision": "Fail"}), {**PASSED, "decision": "Fail", "onConflict": "Supersede"}),
    ],
)
def test_no_other_change_of_a_decision_made_is_admitted(old, new):
    with pytest.raises(Denied, match="cannot be changed"):
        decide(new, old)


def test_ignore_is_refused_unless_the_project_allows_it_naming_the_field():
    with pytest.raises(Denied, match=r"spec.conflicts.allowIgnore"):
        decide({"decision": "Pass", "onConflict": "Ignore"}, old_run(conditions=()))
    assert decide({"decision": "Pass", "onConflict": "Ignore"}, old_run(conditions=()), allow_ignore=True)


def test_the_crd_rule_admits_only_that_change():
    rule = next(r for r in PipelineRunSpec.cel_rules if r.field_path == ".review")
    assert "onConflict != 'Block'" in rule.rule
    PipelineRunSpec.model_validate(
        {
            "pipelineRef": {"name": "p"},
            "workspace": {"claimName": "m"},
            "items": [{"record": PARENT}],
            "review": {"decision": "Pass", "onConflict": "Supersede"},
        }
    )


def test_the_kubectl_plugin_passes_with_on_conflict():
    from mmif_operator.cli import main as cli

    args = cli.parser().parse_args(
        ["review", "pass", "r1", "--comment", "ours", "--on-conflict", "Supersede"]
    )
    assert args.on_conflict == "Supersede"


# -- the lineage of a record that supersedes ----------------------------------------------------


def test_a_record_published_with_supersede_names_what_it_supersedes_and_validates(
    run_chain_from_record,  # noqa: F811 - the fixture imported above
    tmp_path,
):
    layout, records_dir, workspace, parent = run_chain_from_record
    cfg = PUB.config(layout, records_dir, workspace, tmp_path)
    theirs = {"kind": "NewerVersion", "project": "p2", "run": "theirs", "publishedAt": AFTER}
    cfg = dataclasses.replace(cfg, records=dataclasses.replace(cfg.records, supersedes={parent: [theirs]}))
    assert RecordsContext.from_json(cfg.records.to_json()) == cfg.records
    assert run_publish(cfg) == ExitCode.OK
    [published] = files.read_json(layout.manifest)["published"]["records"]
    doc = json.loads(
        pathlib.Path(records_dir, store.lineage_path(published["id"].removeprefix("sha256:"))).read_text()
    )
    LIN.validate(doc)
    assert doc["supersedes"] == [{"record": parent, **theirs}]


def test_a_record_without_conflicts_has_no_supersedes_key():
    pub = LIN.Publication("r", "ns", None, 0, None, "p", None, "Pass", None, None, None)
    doc = LIN.lineage(pub, sha256="a" * 64, size=1, path="x", inputs=[], views=[])
    assert "supersedes" not in doc
    with pytest.raises(LIN.LineageError, match="supersedes"):
        LIN.validate(
            {**doc, "supersedes": [{"record": PARENT, "kind": "Whatever", "project": "p", "run": "r"}]}
        )


def test_records_context_without_supersedes_reads_as_before():
    ctx = RecordsContext.from_json(json.dumps({"dir": "/r", "workspace": "/w", "pipeline": "p"}))
    assert ctx.supersedes == {}
