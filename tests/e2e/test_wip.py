"""A finished run's work in progress on the real cluster (`spec.workInProgress`, `kubectl mmif
wip`): refused while an AnalysisJob used the outputs (named), deleted once it is gone (the folder
gone from the volume), archived (the folder moved); in a Project with a record store, a passed
run's records outlive its work in progress and the run itself. Users by impersonation."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests import kube
from tests.objects import app_image, apply, item, pipeline, run, step
from tests.projects import (
    ADMIN,
    BIN,
    CONTRIBUTOR,
    CONTRIBUTORS,
    as_user,
    create_project,
    delete_project,
    mmif_as,
    mmif_as_contributor,
)
from tests.volume import Workspace

pytestmark = pytest.mark.cluster


def mmif(*args: str, namespace: str) -> subprocess.CompletedProcess:
    """`kubectl mmif ARGS` as the cluster's admin (the test's own identity)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["kubectl", "mmif", *args, "-n", namespace], capture_output=True, text=True, timeout=180, env=env
    )


def wip_condition(namespace: str, name: str) -> dict:
    obj = kube.get("pipelinerun", name, namespace)
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == "WorkInProgress"), {}
    )


def test_wip_is_refused_while_an_analysis_used_it_then_deleted_and_another_run_archived(
    operator_deployed, namespace, workspace, runs
):
    ns = namespace
    workspace.write_media({"media/clip.mp4": b"clip\n"})
    apply(pipeline("p", [step("t", "textgen")], claim_name=workspace.claim_name), ns)
    for name in ("src", "cold"):
        apply(run(name, "p", [item("media/clip.mp4")], claim_name=workspace.claim_name), ns)
    for name in ("src", "cold"):
        done = runs.wait_to_finish(ns, name, timeout=240)
        assert runs.condition(done)["status"] == "True", runs.diagnostics(ns, name)
    assert "mmif-runs/src/items/00000/final.mmif" in workspace.list_files("mmif-runs/src")

    # An AnalysisJob reads src's outputs: deleting src's WIP is refused, naming it.
    analysis = {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "AnalysisJob",
        "metadata": {"name": "reader"},
        "spec": {
            "runRef": {"name": "src"},
            "app": {
                "image": app_image("timeframes"),
                "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}],
            },
            "trigger": "AfterRun",
        },
    }
    kube.create(analysis, ns)

    def analysed():
        aj = kube.get("analysisjob", "reader", ns)
        conds = (aj.get("status") or {}).get("conditions") or ()
        return next((c["status"] for c in conds if c["type"] == "Succeeded"), None) == "True"

    kube.eventually(analysed, timeout=240, interval=2, what="analysisjob/reader Succeeded")
    refused = mmif("wip", "delete", "src", "--timeout", "60", namespace=ns)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "(HasDescendants)" in refused.stderr and "AnalysisJob/reader" in refused.stderr, refused.stderr
    cond = wip_condition(ns, "src")
    assert (cond["status"], cond["reason"]) == ("False", "HasDescendants") and "AnalysisJob/reader" in cond[
        "message"
    ]
    assert "mmif-runs/src/items/00000/final.mmif" in workspace.list_files("mmif-runs/src"), "nothing deleted"

    # Archive: the other run's folder moves to <outputDir>/.archive/<run>/ on the same volume.
    archived = mmif("wip", "archive", "cold", "--timeout", "120", namespace=ns)
    assert archived.returncode == 0, (archived.stdout, archived.stderr)
    assert "work in progress Archived" in archived.stdout, archived.stdout
    assert workspace.list_files("mmif-runs/cold") == []
    assert "mmif-runs/.archive/cold/items/00000/final.mmif" in workspace.list_files("mmif-runs/.archive/cold")

    # Once the AnalysisJob is gone, the request stands and is carried out: src's folder is gone.
    kube.kubectl("delete", "analysisjob", "reader", "-n", ns, "--wait=true", "--timeout=120s")
    kube.eventually(
        lambda: wip_condition(ns, "src").get("reason") == "Deleted",
        timeout=120,
        interval=1,
        what="src Deleted",
    )
    assert workspace.list_files("mmif-runs/src") == []
    assert "mmif-runs/.archive/cold/items/00000/final.mmif" in workspace.list_files("mmif-runs/.archive/cold")
    # Its Job is deleted once its outcome is recorded; asking again changes nothing.
    kube.eventually(
        lambda: (
            not kube.kubectl(
                "get", "job", "src-wip-delete", "-n", ns, "--ignore-not-found", "-o", "name"
            ).stdout.strip()
        ),
        timeout=60,
        what="the dispose Job deleted",
    )
    again = mmif("wip", "delete", "src", "--timeout", "30", namespace=ns)
    assert again.returncode == 0 and "work in progress Deleted" in again.stdout, (again.stdout, again.stderr)


@pytest.fixture
def project_ns(cluster, operator_deployed):
    name = create_project("wip")
    yield name
    delete_project(name)


def test_records_outlive_the_runs_wip_and_the_run(project_ns, runs):
    ns = project_ns
    media = Workspace(ns, "media")
    media.write_media({"media/clip.mp4": b"a clip\n"})
    apply(pipeline("reviewed", [step("text", "textgen")], claim_name="media", review={"required": True}), ns)
    body = run("r1", "reviewed", [item("media/clip.mp4", name="clip")], claim_name="media")
    created = as_user(CONTRIBUTOR, "create", "-n", ns, "-f", "-", group=CONTRIBUTORS, input=json.dumps(body))
    assert created.returncode == 0, created.stderr
    kube.eventually(
        lambda: kube.get("pipelinerun", "r1", ns)["status"].get("phase") == "AwaitingReview",
        timeout=240,
        interval=1,
        what="r1 AwaitingReview",
    )
    patch = json.dumps({"spec": {"review": {"decision": "Pass", "comment": "ok"}}})
    kube.eventually(
        lambda: (
            as_user(ADMIN, "patch", "pipelinerun", "r1", "-n", ns, "--type=merge", "-p", patch).returncode
            == 0
        ),
        timeout=30,
        interval=1,
        what="the admin's decision accepted",
    )
    done = runs.wait_to_finish(ns, "r1", timeout=180)
    assert runs.condition(done)["reason"] == "Succeeded", runs.diagnostics(ns, "r1")
    (record,) = json.loads(media.read_file(done["status"]["manifestPath"]))["published"]["records"]
    final = media.read_file(f"{done['status']['outputPath']}/items/00000/final.mmif")

    # A contributor may not delete WIP (the project's admins do).
    denied = mmif_as(CONTRIBUTOR, CONTRIBUTORS, "wip", "delete", "r1", namespace=ns)
    assert denied.returncode == 4 and "forbidden" in denied.stderr.lower(), denied.stderr

    deleted = mmif_as(ADMIN, "system:authenticated", "wip", "delete", "r1", "--timeout", "120", namespace=ns)
    assert deleted.returncode == 0 and "work in progress Deleted" in deleted.stdout, (
        deleted.stdout,
        deleted.stderr,
    )
    assert media.list_files("mmif-runs/r1") == []

    def the_record_is_there() -> None:
        got = mmif_as_contributor("record", record["id"], "--mmif", namespace=ns)
        assert got.returncode == 0, got.stderr
        assert got.stdout.encode() in (final, final + b"\n")
        found = mmif_as_contributor("records", "--run", "r1", "-o", "json", namespace=ns)
        assert found.returncode == 0 and [r["id"] for r in json.loads(found.stdout)] == [record["id"]]

    the_record_is_there()
    gone = as_user(ADMIN, "delete", "pipelinerun", "r1", "-n", ns, "--wait=true", "--timeout=120s")
    assert gone.returncode == 0, gone.stderr
    the_record_is_there()
