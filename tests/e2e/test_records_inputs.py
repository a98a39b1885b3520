"""Records as inputs on the real cluster: in a Project with a record store, a passed run makes a
record; a second run starts an item from that record's id (the prepare pod reads the store,
mounted read-only) and its output MMIF holds the record's views and the new step's; once that
run is passed too, the new record's lineage names the parent record in `inputs[].record`. A run
naming a record the store does not hold fails that item, the id named, and its other item goes
on. The Project lists the records its runs start from (status.referencedRecords). Users by
impersonation."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from mmif import Mmif

from mmif_operator.records import lineage as LIN
from tests import kube
from tests.objects import app_identifier, apply, item, pipeline, run, step
from tests.projects import create_as_contributor, mmif_as_contributor, pass_review, record_project
from tests.volume import Workspace

pytestmark = pytest.mark.cluster

UNKNOWN = "sha256:" + "0" * 64


@pytest.fixture
def project_ns(cluster, operator_deployed):
    with record_project("recin") as name:
        yield name


def test_an_item_starts_from_a_record_and_its_record_names_the_parent(project_ns, runs):
    ns = project_ns
    media = Workspace(ns, "media")
    media.write_media({"media/clip.mp4": b"not really a video\n"})
    apply(
        [
            pipeline("text", [step("text", "textgen")], claim_name="media", review={"required": True}),
            pipeline("frames", [step("frames", "timeframes")], claim_name="media", review={"required": True}),
            pipeline("plain", [step("frames", "timeframes")], claim_name="media"),
        ],
        ns,
    )
    create_as_contributor(run("r1", "text", [item("media/clip.mp4", name="clip")]), ns)
    first = pass_review(ns, "r1")
    assert runs.condition(first)["status"] == "True", runs.diagnostics(ns, "r1")
    (parent,) = json.loads(media.read_file(first["status"]["manifestPath"]))["published"]["records"]
    parent_id = parent["id"]

    # A run naming an unknown record (with an item of documents beside it), and one from the record.
    unknown = run("r3", "plain", [item("media/clip.mp4", name="clip"), {"name": "lost", "record": UNKNOWN}])
    create_as_contributor(unknown, ns)
    create_as_contributor(run("r2", "frames", [{"name": "again", "record": parent_id}]), ns)

    second = pass_review(ns, "r2")
    assert runs.condition(second)["status"] == "True", runs.diagnostics(ns, "r2")
    out = second["status"]["outputPath"]
    final = media.read_file(f"{out}/items/00000/final.mmif")
    views = [v.metadata.app for v in Mmif(final.decode()).views]
    assert views == [app_identifier("textgen"), app_identifier("timeframes")], views
    source = media.read_file(f"{out}/items/00000/source.mmif")
    assert f"sha256:{hashlib.sha256(source).hexdigest()}" == parent_id  # the record, byte for byte

    (child,) = json.loads(media.read_file(second["status"]["manifestPath"]))["published"]["records"]
    shown = mmif_as_contributor("record", child["id"], namespace=ns)
    assert shown.returncode == 0, shown.stderr
    lineage = json.loads(shown.stdout)
    LIN.validate(lineage)
    assert [(i["location"], i["record"]) for i in lineage["inputs"]] == [("media/clip.mp4", parent_id)]
    assert lineage["inputs"][0]["sha256"] == hashlib.sha256(b"not really a video\n").hexdigest()

    lost = runs.wait_to_finish(ns, "r3", timeout=180)
    manifest = json.loads(media.read_file(lost["status"]["manifestPath"]))
    states = [(i["name"], i["state"]) for i in manifest["items"]]
    assert states == [("clip", "Succeeded"), ("lost", "Failed")], manifest["items"]
    failed = manifest["items"][1]
    assert failed["reason"] == "RecordNotFound", failed
    assert UNKNOWN in failed["message"], failed

    # The project lists the records its runs name, with the runs (its pass every minute).
    def referenced():
        refs = (kube.get("project", ns).get("status") or {}).get("referencedRecords") or {}
        return refs if refs.get("count") == 2 else None

    refs = kube.eventually(
        referenced, timeout=90, interval=2, what=f"project {ns} lists 2 referenced records"
    )
    assert {r["id"]: r["runs"] for r in refs["latest"]} == {parent_id: ["r2"], UNKNOWN: ["r3"]}
    conds = {c["type"]: c for c in kube.get("project", ns)["status"]["conditions"]}
    assert (conds["SharedRecords"]["status"], conds["SharedRecords"]["reason"]) == ("False", "NotShared")


@pytest.fixture
def other_project(cluster, operator_deployed):
    with record_project("recin-b") as name:
        yield name


def test_two_open_projects_whose_runs_name_the_same_record_both_say_so(project_ns, other_project):
    record = f"sha256:{uuid.uuid4().hex * 2}"
    for ns in (project_ns, other_project):
        apply(pipeline("plain", [step("frames", "timeframes")], claim_name="media"), ns)
        create_as_contributor(run("uses", "plain", [{"name": "shared", "record": record}]), ns)

    def shared(ns: str, other: str):
        conds = (kube.get("project", ns).get("status") or {}).get("conditions") or []
        cond = next((c for c in conds if c["type"] == "SharedRecords"), {})
        return (
            cond if cond.get("status") == "True" and f"project {other}" in cond.get("message", "") else None
        )

    for ns, other in ((project_ns, other_project), (other_project, project_ns)):
        cond = kube.eventually(
            lambda ns=ns, other=other: shared(ns, other), timeout=150, interval=2, what=f"{ns} SharedRecords"
        )
        assert cond["reason"] == "SharedWithOtherProjects" and record in cond["message"], cond
        refs = kube.get("project", ns)["status"]["referencedRecords"]
        assert refs == {"count": 1, "latest": [{"id": record, "runs": ["uses"]}]}, refs

        def event(ns=ns):
            got = kube.kubectl(
                "get", "events", "-A", "-o", "json",
                "--field-selector", f"involvedObject.kind=Project,involvedObject.name={ns},reason=SharedRecords",
            )  # fmt: skip
            return json.loads(got.stdout)["items"]

        (posted, *_) = kube.eventually(event, timeout=30, interval=1, what=f"a SharedRecords Event on {ns}")
        assert record in posted["message"], posted
