"""A finished run's work in progress (`spec.workInProgress`): the decisions
(kinds/pipelinerun/wip.py), the dispose Job, and `mmif-runner dispose` (runner/dispose.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mmif_operator.core import security
from mmif_operator.kinds.pipelinerun import wip
from mmif_operator.kinds.pipelinerun.model import IMMUTABLE_SPEC_FIELDS, PipelineRunSpec, WorkInProgress
from mmif_operator.runner import cli
from mmif_operator.runner import env as E
from mmif_operator.runner.exitcodes import ExitCode

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IMAGE = "mmif.local/mmif-operator:dev"


def run(name="run-1", phase="Succeeded", want="Delete", generation=2, conditions=(), **status):
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": generation},
        "spec": {
            "pipelineRef": {"name": "p"},
            "workspace": {"claimName": "media"},
            "items": [{"mmif": "in/a.mmif"}],
            **({"workInProgress": want} if want else {}),
        },
        "status": {"phase": phase, "conditions": list(conditions), **status},
    }


def other_run(name, claim="media", **spec):
    return {"metadata": {"name": name}, "spec": {"workspace": {"claimName": claim}, **spec}}


def analysis(name, run_name):
    return {"metadata": {"name": name}, "spec": {"runRef": {"name": run_name}}}


def job(name, state=None, uid="uid-run-1"):
    conds = {
        "ok": [{"type": "Complete", "status": "True"}],
        "failed": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "boom"}],
    }.get(state, [])
    return {
        "metadata": {"name": name, "uid": "job-uid", "ownerReferences": [{"uid": uid, "controller": True}]},
        "status": {"conditions": conds},
    }


def plan(r, job_=None, store=False, listed=((), ())):
    first = wip.plan_wip(r, job=job_, has_record_store=store, operator_image=IMAGE, now=NOW)
    if not first.needs_listing:
        return first
    return wip.plan_wip(r, job=job_, has_record_store=store, operator_image=IMAGE, now=NOW, listed=listed)


def cond(p):
    return next(c for c in p.conditions if c["type"] == wip.CONDITION)


def test_the_field_defaults_to_keep_and_may_change_after_creation():
    spec = PipelineRunSpec.from_obj(
        {"pipelineRef": {"name": "p"}, "workspace": {"claimName": "m"}, "items": [{"mmif": "a"}]}
    )
    # Unset (no API-server default: the disposal window tells unset from an explicit Keep).
    assert spec.work_in_progress is None and wip.wanted({}) is WorkInProgress.KEEP
    assert "workInProgress" not in IMMUTABLE_SPEC_FIELDS
    assert (
        wip.plan_wip(
            run(want=None), job=None, has_record_store=False, operator_image=IMAGE, now=NOW
        ).conditions
        is None
    )


def test_a_finished_run_without_descendants_gets_one_dispose_job():
    p = plan(run())
    body = p.create
    assert body["metadata"]["name"] == "run-1-wip-delete"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-run-1"
    assert body["metadata"]["labels"]["app.kubernetes.io/component"] == "wip"
    pod = body["spec"]["template"]["spec"]
    runner = pod["containers"][0]
    assert runner["command"] == ["mmif-runner", "dispose"]
    assert runner["securityContext"] == security.runner_security_context()
    env = {e["name"]: e.get("value") for e in runner["env"]}
    assert env[E.RUN_DIR] == "/data/mmif-runs/run-1"
    assert env[E.ARCHIVE_DIR] == "/data/mmif-runs/.archive/run-1"
    assert env[E.WIP_ACTION] == "Delete" and env[E.RUN_UID] == "uid-run-1"
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["media"], "the workspace only: never a record store"
    assert cond(p)["status"] == "Unknown" and cond(p)["reason"] == "Deleting"
    assert cond(p)["observedGeneration"] == 2


def test_the_job_done_is_recorded_then_deleted_and_a_second_pass_does_nothing():
    p = plan(run(), job("run-1-wip-delete", "ok"))
    assert p.create is None and p.delete_job == "run-1-wip-delete"
    assert (cond(p)["status"], cond(p)["reason"]) == ("True", "Deleted")
    done = run(conditions=p.conditions)
    assert not wip.wants_pass(done["spec"], done["status"], done["metadata"])
    again = plan(done)
    assert again.create is None and again.conditions is None and again.delete_job is None


def test_a_running_job_changes_nothing():
    first = plan(run())
    p = plan(run(conditions=first.conditions), job("run-1-wip-delete"))
    assert p.create is None and p.delete_job is None and p.conditions is None


def test_refused_while_descendants_exist_naming_them():
    listed = (
        [analysis("ana-1", "run-1"), analysis("ana-other", "run-2")],
        [
            other_run("next", items=[{"mmif": "mmif-runs/run-1/items/00000/final.mmif"}]),
            other_run("from-file", itemsFrom={"path": "mmif-runs/run-1/items.jsonl"}),
            other_run("elsewhere", claim="other", items=[{"mmif": "mmif-runs/run-1/items/00000/final.mmif"}]),
            other_run("unrelated", items=[{"mmif": "mmif-runs/run-10/x.mmif"}]),
            run(),  # itself
        ],
    )
    p = plan(run(), listed=listed)
    assert p.create is None
    c = cond(p)
    assert (c["status"], c["reason"]) == ("False", "HasDescendants")
    assert "AnalysisJob/ana-1" in c["message"] and "PipelineRun/next" in c["message"]
    assert "PipelineRun/from-file" in c["message"]
    for absent in ("ana-other", "elsewhere", "unrelated"):
        assert absent not in c["message"]
    refused = run(conditions=p.conditions)
    assert wip.wants_pass(refused["spec"], refused["status"], refused["metadata"]), "looked at again"
    assert plan(refused).create is not None, "once the descendants are gone, it goes ahead"


def test_a_descendant_whose_own_wip_is_deleted_no_longer_holds_it():
    gone = other_run("next", items=[{"mmif": "mmif-runs/run-1/a.mmif"}])
    gone["status"] = {"conditions": [{"type": "WorkInProgress", "status": "True", "reason": "Deleted"}]}
    assert wip.descendants(run(), [], [gone]) == []


def test_many_descendants_are_counted_not_all_named():
    listed = ([analysis(f"a-{i:02d}", "run-1") for i in range(25)], [])
    c = cond(plan(run(), listed=listed))
    assert "25 descendant(s)" in c["message"] and "and 15 more" in c["message"]
    assert len(c["message"]) < 1024


def test_not_finished_waits_and_says_so():
    p = plan(run(phase="Running"))
    assert p.create is None
    assert (cond(p)["reason"], cond(p)["status"]) == ("NotFinished", "False")
    r = run(phase="Running", conditions=p.conditions)
    assert wip.wants_pass(r["spec"], r["status"], r["metadata"])


def test_a_published_run_without_a_record_store_is_never_deleted():
    published = {"review": {"decision": "Pass", "recordPath": "/data/mmif-runs/run-1/review.json"}}
    p = plan(run(**published), store=False)
    assert p.create is None and cond(p)["reason"] == "Published"
    r = run(conditions=p.conditions, **published)
    assert not wip.wants_pass(r["spec"], r["status"], r["metadata"]), (
        "not looked at again until the spec changes"
    )
    # With a record store, the records are the published copy: the WIP may go.
    assert plan(run(**published), store=True).create is not None


def test_archive_moves_and_a_later_delete_removes_the_archive():
    p = plan(run(want="Archive"))
    assert p.create["metadata"]["name"] == "run-1-wip-archive"
    done = plan(run(want="Archive", conditions=p.conditions), job("run-1-wip-archive", "ok"))
    assert cond(done)["reason"] == "Archived" and "mmif-runs/.archive/run-1" in cond(done)["message"]
    archived = run(want="Archive", conditions=done.conditions)
    assert not wip.wants_pass(archived["spec"], archived["status"], archived["metadata"])
    delete = run(want="Delete", generation=3, conditions=done.conditions)
    assert wip.wants_pass(delete["spec"], delete["status"], delete["metadata"])
    assert plan(delete).create["metadata"]["name"] == "run-1-wip-delete"


def test_a_failed_job_is_reported_and_retried_only_when_asked_again():
    p = plan(run(), job("run-1-wip-delete", "failed"))
    assert (cond(p)["reason"], cond(p)["status"]) == ("DisposeFailed", "False") and "boom" in cond(p)[
        "message"
    ]
    failed = run(conditions=p.conditions)
    assert not wip.wants_pass(failed["spec"], failed["status"], failed["metadata"])
    asked_again = run(generation=3, conditions=p.conditions)
    assert wip.wants_pass(asked_again["spec"], asked_again["status"], asked_again["metadata"])
    retry = plan(asked_again, job("run-1-wip-delete", "failed"))
    assert retry.delete_job == "run-1-wip-delete" and retry.create is None
    assert plan(asked_again).create is not None, "then created again"


def test_a_job_of_that_name_that_is_not_the_runs_is_a_conflict():
    p = plan(run(), job("run-1-wip-delete", uid="someone-else"))
    assert cond(p)["reason"] == "JobConflict" and p.delete_job is None and p.create is None


def test_keep_after_a_refusal_clears_the_condition_but_not_an_outcome():
    refused = run(want="Delete", phase="Running")
    refused["status"]["conditions"] = plan(refused).conditions
    refused["spec"]["workInProgress"] = "Keep"
    assert wip.wants_pass(refused["spec"], refused["status"], refused["metadata"])
    assert plan(refused).conditions == []
    deleted = run(want="Keep", conditions=[{"type": "WorkInProgress", "status": "True", "reason": "Deleted"}])
    assert not wip.wants_pass(deleted["spec"], deleted["status"], deleted["metadata"])


def test_other_conditions_are_kept():
    succeeded = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": "ok"}
    p = plan(run(conditions=[succeeded]))
    assert succeeded in p.conditions


# -- mmif-runner dispose ----------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path):
    folder = tmp_path / "data" / "mmif-runs" / "run-1"
    (folder / "items" / "00000").mkdir(parents=True)
    (folder / ".run-uid").write_text("uid-1\n")
    (folder / "manifest.json").write_text("{}")
    (folder / "items" / "00000" / "final.mmif").write_text("{}")
    return tmp_path / "data"


def dispose(monkeypatch, workspace, action, uid="uid-1"):
    term = workspace.parent / "termination-log"
    values = {
        E.WORKSPACE: str(workspace),
        E.RUN_DIR: str(workspace / "mmif-runs" / "run-1"),
        E.ARCHIVE_DIR: str(workspace / "mmif-runs" / ".archive" / "run-1"),
        E.RUN_UID: uid,
        E.WIP_ACTION: action,
        E.TERMINATION_LOG: str(term),
    }
    for name in E.DISPOSE:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["dispose"])
    return code, json.loads(term.read_text()) if term.exists() else None


def test_dispose_deletes_the_folder_and_is_idempotent(monkeypatch, workspace):
    code, term = dispose(monkeypatch, workspace, "Delete")
    assert code == ExitCode.OK and term["reason"] == "Succeeded"
    assert not (workspace / "mmif-runs" / "run-1").exists()
    assert (workspace / "mmif-runs").is_dir(), "only the run's folder goes"
    assert dispose(monkeypatch, workspace, "Delete")[0] == ExitCode.OK


def test_dispose_archives_by_moving_then_delete_removes_the_archive(monkeypatch, workspace):
    assert dispose(monkeypatch, workspace, "Archive")[0] == ExitCode.OK
    archived = workspace / "mmif-runs" / ".archive" / "run-1"
    assert (archived / "items" / "00000" / "final.mmif").exists()
    assert not (workspace / "mmif-runs" / "run-1").exists()
    assert dispose(monkeypatch, workspace, "Archive")[0] == ExitCode.OK, "a replay is fine"
    assert dispose(monkeypatch, workspace, "Delete")[0] == ExitCode.OK
    assert not archived.exists()


def test_dispose_never_touches_a_folder_of_another_run(monkeypatch, workspace):
    code, term = dispose(monkeypatch, workspace, "Delete", uid="uid-2")
    assert code == ExitCode.OUTPUT_CONFLICT and "another run" in term["message"]
    assert (workspace / "mmif-runs" / "run-1" / "manifest.json").exists()


def test_dispose_refuses_a_bad_action(monkeypatch, workspace):
    assert dispose(monkeypatch, workspace, "Shred")[0] == ExitCode.INVALID_CONFIG


# -- kubectl mmif wip -------------------------------------------------------------------------


class FakeKube:
    def __init__(self, versions):
        self.versions, self.patches = versions, []

    async def patch_run(self, name, patch):
        self.patches.append(patch)
        return {"metadata": {"name": name, "generation": 3}}

    async def watch_run(self, name):
        import asyncio

        for v in self.versions:
            yield v
        await asyncio.Event().wait()  # a watch with nothing more to say (the plugin's timeout ends it)


def wip_cond(reason, generation=3, status="False", message="m"):
    return {"status": {"conditions": [
        {"type": "WorkInProgress", "status": status, "reason": reason, "message": message, "observedGeneration": generation}
    ]}}  # fmt: skip


def run_cli(versions, *argv):
    import asyncio
    import io

    from mmif_operator.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    ui = cli_main.Ui(out, err)
    args = cli_main.parser().parse_args(["wip", *argv])
    kube = FakeKube(versions)
    code = asyncio.run(args.func(kube, args, ui))
    return code, out.getvalue(), err.getvalue(), kube.patches


def test_the_plugin_sets_the_field_and_prints_the_outcome_of_that_generation():
    versions = [wip_cond("HasDescendants", generation=2), wip_cond("Deleting", status="Unknown"), wip_cond("Deleted", status="True", message="mmif-runs/r1 deleted")]  # fmt: skip
    code, out, err, patches = run_cli(versions, "delete", "r1")
    assert patches == [{"spec": {"workInProgress": "Delete"}}]
    assert code == 0 and "work in progress Deleted: mmif-runs/r1 deleted" in out


def test_the_plugin_prints_a_refusal_with_the_descendants_and_exits_1():
    versions = [wip_cond("HasDescendants", message="not deleted while 1 descendant(s) used the run's outputs: AnalysisJob/a1")]  # fmt: skip
    code, out, err, _ = run_cli(versions, "archive", "r1")
    assert code == 1 and "AnalysisJob/a1" in err and "(HasDescendants)" in err


def test_the_plugin_gives_up_after_its_timeout():
    code, out, err, _ = run_cli([wip_cond("Deleting", status="Unknown")], "delete", "r1", "--timeout", "0.2")
    assert code == 3 and "no answer from the operator within 0.2s" in err


# -- the project's disposal window (kinds/project/planning.py) -------------------------------


def project(after="PT60S", notice="PT20S", end=None):
    from mmif_operator.kinds.project.model import ProjectSpec

    body = {"disposal": {"after": after, **({"notice": notice} if notice else {})}}
    if end:
        body["timeline"] = {"end": end}
    return ProjectSpec.from_obj(body)


def finished(name, at="2026-12-01T12:00:00Z", phase="Succeeded", **spec):
    return {
        "metadata": {"name": name, "annotations": {}},
        "spec": spec,
        "status": {"phase": phase, "completionTime": at, "conditions": []},
    }


def test_disposal_schedules_a_notice_then_the_deletion():
    from datetime import timedelta

    from mmif_operator.kinds.project import planning as PP

    runs = [finished("r1")]
    steps, nxt = PP.plan_disposal(project(), runs, NOW + timedelta(seconds=10))
    assert steps == [] and nxt == NOW + timedelta(seconds=40), "the notice is the next thing"
    steps, nxt = PP.plan_disposal(project(), runs, NOW + timedelta(seconds=45))
    assert [(s.run, s.kind) for s in steps] == [("r1", "Notice")] and nxt == NOW + timedelta(seconds=60)
    runs[0]["metadata"]["annotations"][PP.DISPOSAL_NOTICE_ANNOTATION] = "2026-12-01T12:01:00Z"
    assert PP.plan_disposal(project(), runs, NOW + timedelta(seconds=50))[0] == [], "told once"
    steps, _ = PP.plan_disposal(project(), runs, NOW + timedelta(seconds=61))
    assert [(s.run, s.kind) for s in steps] == [("r1", "Dispose")]


def test_disposal_leaves_runs_that_chose_running_ones_and_done_ones_alone():
    from datetime import timedelta

    from mmif_operator.kinds.project import planning as PP

    late = NOW + timedelta(days=1)
    deleted = finished("deleted")
    deleted["status"]["conditions"] = [{"type": "WorkInProgress", "reason": "Deleted"}]
    runs = [finished("kept", workInProgress="Keep"), finished("running", phase="Running"), deleted]
    assert PP.plan_disposal(project(), runs, late) == ([], None)
    assert PP.plan_disposal(project().model_copy(update={"disposal": None}), [finished("r")], late) == (
        [],
        None,
    )


def test_extending_the_timeline_moves_the_schedule():
    from datetime import timedelta

    from mmif_operator.kinds.project import planning as PP

    runs = [finished("r1")]
    at = NOW + timedelta(seconds=61)
    assert PP.plan_disposal(project(end="2026-12-01T11:00:00Z"), runs, at)[0][0].kind == "Dispose"
    steps, nxt = PP.plan_disposal(project(end="2026-12-31T00:00:00Z"), runs, at)
    assert steps == [] and nxt == datetime(2026, 12, 31, 0, 0, 40, tzinfo=UTC)
    assert PP.disposal_due(NOW, timedelta(days=90), None) == NOW + timedelta(days=90)


def test_the_window_is_an_iso_8601_duration_checked_by_the_model():
    with pytest.raises(ValueError):
        project(after="90 days")
    assert project(after="P90D", notice="P7D").disposal.after == "P90D"
