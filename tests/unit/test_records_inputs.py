"""Records as inputs (issue 12 part 3): an item naming a record of the project's record store.

prepare copies the record's MMIF (its sha256 checked) as the item's source MMIF, or keeps why it
could not (the id named) so that the item's first step fails with it and the other items go on;
the record published from such an item names its parent in lineage `inputs[].record`; the
prepare Job mounts the store read-only only when items may name records; a run naming a record
outside a project with a record store fails at its start with InvalidSpec, the field named."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pathlib
from datetime import UTC, datetime

import pytest
from mmif import Mmif
from pydantic import ValidationError

from mmif_operator.kinds.pipelinerun import children as jobs
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec
from mmif_operator.kinds.pipelinerun.planning import record_items_problem
from mmif_operator.kinds.project import planning as P
from mmif_operator.kinds.project.model import MAX_REFERENCED_RECORDS, ProjectSpec, ProjectStatus
from mmif_operator.kinds.project.planning import RecordTarget
from mmif_operator.records import lineage as LIN
from mmif_operator.records import store
from mmif_operator.runner import env as E
from mmif_operator.runner import files
from mmif_operator.runner.exitcodes import ExitCode
from mmif_operator.runner.items import read_items
from mmif_operator.runner.publish import run_publish
from tests.unit import test_runner_publish as PUB
from tests.unit.test_builders_jobs import CTX, env_of
from tests.unit.test_runner_step import TEXTGEN, TIMEFRAMES, VIDEO, Run

UNKNOWN = "sha256:" + "0" * 64
TARGET = RecordTarget("oral-history", "OH-1", "records", "/records")


def put_object(records: pathlib.Path, data: bytes) -> str:
    """A record's MMIF in the store as the publisher lays it out (the lineage is not read here)."""
    sha = hashlib.sha256(data).hexdigest()
    path = records / store.object_path(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{sha}"


class RecordRun(Run):
    """A run prepared with the record store mounted at `records_dir` (None: not mounted)."""

    records_dir: str | None = None

    def _main(self, command, values):
        if command == "prepare" and self.records_dir is not None:
            values = {**values, E.RECORDS_DIR: self.records_dir}
        return super()._main(command, values)


def record_run(tmp_path, monkeypatch, steps, items, records_dir):
    cls = type("R", (RecordRun,), {"records_dir": records_dir})
    return cls(tmp_path, monkeypatch, steps, items)


@pytest.fixture
def records(tmp_path, app_chain):
    """A record store holding one record: the textgen step's MMIF over a.mp4 of app_chain."""
    root = tmp_path / "records"
    root.mkdir()
    return root, put_object(root, app_chain.steps[0][1].encode())


# -- the model ---------------------------------------------------------------------------------


def spec(items):
    return {"pipelineRef": {"name": "p"}, "workspace": {"claimName": "media"}, "items": items}


def test_an_item_names_a_record_by_id_and_nothing_else():
    rid = "sha256:" + "a" * 64
    assert PipelineRunSpec.from_obj(spec([{"record": rid}])).items[0].record == rid
    with pytest.raises(ValidationError, match="String should match pattern"):
        PipelineRunSpec.from_obj(spec([{"record": "sha256:ABC"}]))
    with pytest.raises(ValidationError, match="record excludes documents and mmif"):
        PipelineRunSpec.from_obj(spec([{"record": rid, "mmif": "a.mmif"}]))
    with pytest.raises(ValidationError, match="exactly one of documents, mmif or record"):
        PipelineRunSpec.from_obj(spec([{"name": "nothing"}]))


def test_a_run_naming_a_record_outside_a_project_with_a_store_cannot_start():
    rid = "sha256:" + "a" * 64
    run = PipelineRunSpec.from_obj(spec([VIDEO, {"record": rid}, {"record": rid}]))
    problem = record_items_problem(run, None)
    assert problem is not None
    assert problem.startswith("spec.items[1].record (and 1 more item(s)): ")
    assert "not a Ready Project's with spec.records" in problem
    assert record_items_problem(run, TARGET) is None
    assert record_items_problem(PipelineRunSpec.from_obj(spec([VIDEO])), None) is None


def test_the_prepare_job_mounts_the_record_store_read_only_only_when_items_may_name_records():
    rid = "sha256:" + "a" * 64
    with_record = PipelineRunSpec.from_obj(spec([{"record": rid}]))
    pod = jobs.prepare_job(CTX, with_record, "img", TARGET)["spec"]["template"]["spec"]
    [runner] = pod["containers"]
    assert env_of(runner)[E.RECORDS_DIR] == "/records"
    [mount] = [m for m in runner["volumeMounts"] if m["name"] == jobs.RECORDS_VOLUME]
    assert mount == {"name": jobs.RECORDS_VOLUME, "mountPath": "/records", "readOnly": True}
    [vol] = [v for v in pod["volumes"] if v["name"] == jobs.RECORDS_VOLUME]
    assert vol["persistentVolumeClaim"] == {"claimName": "records", "readOnly": True}
    from_file = PipelineRunSpec.from_obj({**spec(None), "items": None, "itemsFrom": {"path": "b.jsonl"}})
    pod = jobs.prepare_job(CTX, from_file, "img", TARGET)["spec"]["template"]["spec"]
    assert E.RECORDS_DIR in env_of(pod["containers"][0])
    for run, target in ((PipelineRunSpec.from_obj(spec([VIDEO])), TARGET), (with_record, None)):
        pod = jobs.prepare_job(CTX, run, "img", target)["spec"]["template"]["spec"]
        assert E.RECORDS_DIR not in env_of(pod["containers"][0])
        assert jobs.RECORDS_VOLUME not in [v["name"] for v in pod["volumes"]]


# -- prepare and the first step ------------------------------------------------------------------


def test_prepare_copies_a_record_as_the_source_and_the_step_adds_its_view(
    tmp_path, monkeypatch, apps, records
):
    root, rid = records
    run = record_run(tmp_path, monkeypatch, ["frames"], [{"name": "from-record", "record": rid}], str(root))
    [item] = read_items(run.layout.items)
    assert (item.record, item.record_problem) == (rid, None)
    source = pathlib.Path(run.layout.source_mmif(0)).read_bytes()
    assert hashlib.sha256(source).hexdigest() == rid.removeprefix("sha256:")
    code, term = run.step(0, 0, apps["timeframes"][0], {"count": "2"})
    assert code == ExitCode.OK, term
    final = Mmif(pathlib.Path(run.layout.final_mmif(0)).read_text())
    assert [v.metadata.app for v in final.views] == [TEXTGEN, TIMEFRAMES]


def test_an_unknown_or_damaged_record_fails_its_item_naming_the_id_and_the_others_go_on(
    tmp_path, monkeypatch, apps, records
):
    root, rid = records
    damaged = "sha256:" + "b" * 64
    path = root / store.object_path("b" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not the bytes of that id")
    items = [{"record": UNKNOWN}, VIDEO, {"record": damaged}, {"record": rid}]
    run = record_run(tmp_path, monkeypatch, ["asr"], items, str(root))
    problems = [i.record_problem for i in read_items(run.layout.items)]
    assert problems[1] is None and problems[3] is None
    assert problems[0] == ("RecordNotFound", f"record {UNKNOWN} is not in the project's record store")
    assert problems[2][0] == "RecordCorrupt" and damaged in problems[2][1]
    posts = apps["textgen"][1].posts
    code, term = run.step(0, 0, apps["textgen"][0])
    assert code == ExitCode.INVALID_INPUT
    assert (term["reason"], term["message"]) == problems[0]
    assert run.record(0, 0)["state"] == "Failed" and run.record(0, 0)["reason"] == "RecordNotFound"
    assert apps["textgen"][1].posts == posts  # the app was never called for it
    assert run.step(2, 0, apps["textgen"][0])[1]["reason"] == "RecordCorrupt"
    assert run.step(1, 0, apps["textgen"][0])[0] == ExitCode.OK  # the other items go on
    assert run.step(3, 0, apps["textgen"][0])[0] == ExitCode.OK


def test_without_a_mounted_store_an_item_naming_a_record_fails_saying_so(tmp_path, monkeypatch, apps):
    run = record_run(tmp_path, monkeypatch, ["asr"], [{"record": UNKNOWN}], None)
    code, term = run.step(0, 0, apps["textgen"][0])
    assert code == ExitCode.INVALID_INPUT and term["reason"] == "RecordNotFound"
    assert UNKNOWN in term["message"] and "spec.records" in term["message"]


def test_a_retried_prepare_keeps_the_copied_record(tmp_path, monkeypatch, records):
    root, rid = records
    run = record_run(tmp_path, monkeypatch, ["asr"], [{"record": rid}], str(root))
    before = pathlib.Path(run.layout.source_mmif(0)).read_bytes()
    os.unlink(root / store.object_path(rid.removeprefix("sha256:")))  # gone: the copy must be reused
    values = {
        E.WORKSPACE: str(run.ws),
        E.RUN_DIR: run.layout.root,
        E.RUN_UID: "uid-1",
        E.ITEMS_FILE: run.input_file("items", "uid-1", {"items": [{"record": rid}]}),
    }
    assert run._main("prepare", values)[0] == ExitCode.OK  # the pod was retried
    assert [i.record_problem for i in read_items(run.layout.items)] == [None]
    assert pathlib.Path(run.layout.source_mmif(0)).read_bytes() == before


# -- the published record names its parent -----------------------------------------------------


def test_a_record_made_from_a_record_names_its_parent_in_lineage_inputs(run_chain_from_record, tmp_path):
    layout, records_dir, workspace, parent = run_chain_from_record
    cfg = PUB.config(layout, records_dir, workspace, tmp_path)
    assert run_publish(cfg) == ExitCode.OK
    [published] = files.read_json(layout.manifest)["published"]["records"]
    sha = published["id"].removeprefix("sha256:")
    doc = json.loads(pathlib.Path(records_dir, store.lineage_path(sha)).read_text())
    LIN.validate(doc)
    assert [(i["location"], i["record"]) for i in doc["inputs"]] == [("a.mp4", parent)]


@pytest.fixture
def run_chain_from_record(app_chain, tmp_path):
    """A finished run of one item that started from the record of app_chain's textgen MMIF and
    went through timeframes ("frames")."""
    from mmif_operator.runner.items import Item, dump_jsonl
    from mmif_operator.runner.paths import RUN_UID_FILE, RunLayout

    records = tmp_path / "records"
    records.mkdir()
    first = app_chain.steps[0][1]
    parent = put_object(records, first.encode())
    layout = RunLayout(str(app_chain.workspace / "mmif-runs" / f"run-{tmp_path.name}"))
    os.makedirs(layout.item_dir(0))
    pathlib.Path(layout.root, RUN_UID_FILE).write_text("uid-1")
    files.atomic_write(layout.items, dump_jsonl([Item(index=0, name="a", record=parent)]))
    pathlib.Path(layout.source_mmif(0)).write_text(first)
    pathlib.Path(layout.step_mmif(0, 0, "frames")).write_text(app_chain.steps[1][1])
    pathlib.Path(layout.final_mmif(0)).write_text(app_chain.steps[1][1])
    items = [{"index": 0, "name": "a", "state": "Succeeded", "finishedAt": "2026-12-01T11:00:00Z"}]
    files.atomic_write_json(layout.manifest, {"run": "run-1", "steps": ["frames"], "items": items})
    return layout, str(records), str(app_chain.workspace), parent


# -- the project's referenced records, and records shared with other projects ----------------------

A, B, C = ("sha256:" + c * 64 for c in "abc")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def entry(run, created, *records):
    return P.run_records_entry(run, {"items": [VIDEO, *({"record": r} for r in records)]}, created)


def project(name, state="Open"):
    return {"name": name, "spec": {"records": {"claimName": "records"}, "state": state}}


def test_a_run_is_indexed_by_the_distinct_records_its_items_name():
    assert entry("r1", "2026-12-01T10:00:00Z", A, B, A) == {
        "run": "r1",
        "created": "2026-12-01T10:00:00Z",
        "records": [A, B],
        "phase": None,
        "request": None,
        "publishes": True,  # no snapshot yet: it may publish
        "publishedAt": None,
    }
    assert entry("r2", "2026-12-01T10:00:00Z") is None  # names none: not indexed


def test_referenced_records_are_counted_and_bounded_newest_first():
    runs = [entry("old", "2026-12-01T09:00:00Z", A), entry("new", "2026-12-01T10:00:00Z", B, A)]
    assert P.referenced_records(runs) == {
        "count": 2,
        "latest": [{"id": B, "runs": ["new"]}, {"id": A, "runs": ["new", "old"]}],
    }
    many = [
        entry(f"r{n:03d}", f"2026-12-01T10:{n // 60:02d}:{n % 60:02d}Z", f"sha256:{n:064x}")
        for n in range(100)
    ]
    many += [entry(f"s{n}", "2026-11-01T00:00:00Z", A) for n in range(10)]
    out = P.referenced_records(many)
    assert out["count"] == 101
    assert len(out["latest"]) == MAX_REFERENCED_RECORDS
    assert out["latest"][0] == {"id": f"sha256:{99:064x}", "runs": ["r099"]}
    assert len(P.referenced_records([entry(f"s{n}", "t", A) for n in range(10)])["latest"][0]["runs"]) == 5
    ProjectStatus.from_obj({"referencedRecords": out})  # fits the schema's bounds


def test_a_record_named_by_another_open_projects_runs_is_shared_on_both():
    projects = {"p": [project("p")], "q": [project("q")], "z": [project("z", "Closed")], "e": [project("e")]}
    runs = {
        "p": [entry("p1", "t", A, B)],
        "q": [entry("q1", "t", B, C)],
        "z": [entry("z1", "t", A)],  # Closed: not looked at
        "e": [entry("e1", "t", C)],  # nothing in common with p
    }
    assert P.shared_records("p", runs["p"], projects, runs) == [("q", [B])]
    assert P.shared_records("q", runs["q"], projects, runs) == [("e", [C]), ("p", [B])]
    status, reason, message = P.shared_condition(ProjectSpec.from_obj({}), [("q", [B])])
    assert (status, reason) == ("True", P.R_SHARED) and "project q" in message and B in message
    assert P.shared_condition(ProjectSpec.from_obj({}), [])[:2] == ("False", P.R_NOT_SHARED)
    closed = ProjectSpec.from_obj({"state": "Closed"})
    assert P.shared_condition(closed, [("q", [B])])[:2] == ("False", P.R_CLOSED)
    assert P.shared_records("p", [], projects, runs) == []


def test_the_shared_records_event_is_posted_once_per_change():
    shared = P.shared_condition(ProjectSpec.from_obj({}), [("q", [B])])
    first, event = P.with_records_status({"conditions": []}, {"count": 1, "latest": []}, shared, NOW, 2)
    assert event == shared[2]
    cond = next(c for c in first["conditions"] if c["type"] == P.CONDITION_SHARED_RECORDS)
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("True", P.R_SHARED, 2)
    assert first["referencedRecords"] == {"count": 1, "latest": []}
    again, event = P.with_records_status(first, {"count": 1, "latest": []}, shared, NOW, 2)
    assert event is None and again["conditions"] == first["conditions"]
    more = P.shared_condition(ProjectSpec.from_obj({}), [("q", [B]), ("r", [A])])
    assert P.with_records_status(again, {"count": 2, "latest": []}, more, NOW, 2)[1] == more[2]
    gone = P.shared_condition(ProjectSpec.from_obj({}), [])
    assert P.with_records_status(again, {"count": 0, "latest": []}, gone, NOW, 2)[1] is None


def test_each_project_pass_lists_its_records_and_says_it_shares_one(monkeypatch):
    """The handler's part (kinds/project/handler.py): the two indexes in, status and Event out."""
    from mmif_operator.kinds.project import handler as H

    posted = []
    monkeypatch.setattr(
        H.k8s_events, "post", lambda obj, type_, reason, message: posted.append((reason, message))
    )
    queued = []

    async def queue(kube, name, note, *, now=None):
        queued.append((name, note))
        return True

    monkeypatch.setattr(H.notify, "queue", queue)
    monkeypatch.setattr(H.runtime, "kube", lambda: None)
    indexes = {
        P.PROJECTS_INDEX: {"p": [project("p")], "q": [project("q")]},
        P.RUN_RECORDS_INDEX: {"p": [entry("p1", "t", A)], "q": [entry("q1", "t", A, B)]},
    }
    body = {"apiVersion": "mmif.dev/v1alpha1", "kind": "Project", "metadata": {"name": "p"}}
    out = asyncio.run(
        H._records_status("p", ProjectSpec.from_obj({}), {"conditions": []}, indexes, NOW, 1, body)
    )
    assert out["referencedRecords"] == {"count": 1, "latest": [{"id": A, "runs": ["p1"]}]}
    [cond] = [c for c in out["conditions"] if c["type"] == P.CONDITION_SHARED_RECORDS]
    assert cond["status"] == "True" and "project q" in cond["message"]
    assert posted == [(P.EV_SHARED_RECORDS, cond["message"])]
    [(name, note)] = queued
    assert name == "p" and note.event.value == "SharedRecords" and note.message == cond["message"]
    asyncio.run(H._records_status("p", ProjectSpec.from_obj({}), out, indexes, NOW, 1, body))
    assert len(posted) == 1 and len(queued) == 1  # nothing new: no second Event nor notification
