"""A finished run's work in progress on the real cluster (`spec.workInProgress`, `kubectl mmif
wip`): refused while an AnalysisJob used the outputs (named), deleted once it is gone (the folder
gone from the volume), archived (the folder moved); in a Project with a record store, a passed
run's records outlive its work in progress (deleted by hand, by the disposal window, by the
project's closure) and the run itself; the project's DisposalNotice and ProjectClosed reach its
webhook (a receiver pod parsing them with the cloudevents SDK). Users by impersonation."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime

import pytest

from mmif_operator.core.status import parse_time
from tests import kube
from tests.e2e.test_notifications import RECEIVER, received, receiver_objects
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


def events(namespace: str, name: str, reason: str) -> list[str]:
    out = kube.kubectl(
        "get", "events", "-n", namespace, "-o", "jsonpath={range .items[*]}{.message}{'\\n'}{end}",
        f"--field-selector=involvedObject.name={name},reason={reason}", check=False,
    ).stdout  # fmt: skip
    return [line for line in out.splitlines() if line]


def project_events(namespace: str, kind: str) -> list[dict]:
    """The CloudEvents of type `dev.mmif.project.<kind>` the receiver pod accepted, one per id."""
    by_id = {}
    for record in received(namespace)["events"]:
        if record["attributes"]["type"] == f"dev.mmif.project.{kind}":
            by_id.setdefault(record["attributes"]["id"], record)
    return list(by_id.values())


def create_reviewed_run(ns: str, name: str) -> None:
    body = run(name, "reviewed", [item("media/clip.mp4", name="clip")], claim_name="media")
    created = as_user(CONTRIBUTOR, "create", "-n", ns, "-f", "-", group=CONTRIBUTORS, input=json.dumps(body))
    assert created.returncode == 0, created.stderr


PASS = json.dumps({"spec": {"review": {"decision": "Pass", "comment": "ok"}}})


def pass_review(ns: str, name: str) -> None:
    kube.eventually(
        lambda: kube.get("pipelinerun", name, ns)["status"].get("phase") == "AwaitingReview",
        timeout=240,
        interval=1,
        what=f"{name} AwaitingReview",
    )
    kube.eventually(
        lambda: (
            as_user(ADMIN, "patch", "pipelinerun", name, "-n", ns, "--type=merge", "-p", PASS).returncode == 0
        ),
        timeout=30,
        interval=1,
        what="the admin's decision accepted",
    )


def test_records_outlive_the_wip_deleted_by_hand_by_the_disposal_window_by_the_closure_and_the_run(
    project_ns, runs
):
    ns = project_ns
    media = Workspace(ns, "media")
    media.write_media({"media/clip.mp4": b"a clip\n"})
    # The project's webhook: a CloudEvents receiver pod in its namespace.
    apply(receiver_objects(RECEIVER, app_image(RECEIVER), {"http": 5000}), ns)
    kube.wait(f"pod/{RECEIVER}", "condition=Ready", ns, timeout=120)
    apply(pipeline("reviewed", [step("text", "textgen")], claim_name="media", review={"required": True}), ns)
    for name in ("r1", "r2"):
        create_reviewed_run(ns, name)
    patch = PASS
    for name in ("r1", "r2"):
        kube.eventually(
            lambda name=name: kube.get("pipelinerun", name, ns)["status"].get("phase") == "AwaitingReview",
            timeout=240,
            interval=1,
            what=f"{name} AwaitingReview",
        )
        kube.eventually(
            lambda name=name: (
                as_user(ADMIN, "patch", "pipelinerun", name, "-n", ns, "--type=merge", "-p", patch).returncode
                == 0
            ),
            timeout=30,
            interval=1,
            what="the admin's decision accepted",
        )
    finals, records = {}, {}
    for name in ("r1", "r2"):
        done = runs.wait_to_finish(ns, name, timeout=180)
        assert runs.condition(done)["reason"] == "Succeeded", runs.diagnostics(ns, name)
        (records[name],) = json.loads(media.read_file(done["status"]["manifestPath"]))["published"]["records"]
        finals[name] = media.read_file(f"{done['status']['outputPath']}/items/00000/final.mmif")

    def the_record_is_there(name: str) -> None:
        got = mmif_as_contributor("record", records[name]["id"], "--mmif", namespace=ns)
        assert got.returncode == 0, got.stderr
        assert got.stdout.encode() in (finals[name], finals[name] + b"\n")
        found = mmif_as_contributor("records", "--run", name, "-o", "json", namespace=ns)
        assert found.returncode == 0 and [r["id"] for r in json.loads(found.stdout)] == [records[name]["id"]]

    # By hand. A contributor may not delete WIP (the project's admins do).
    denied = mmif_as(CONTRIBUTOR, CONTRIBUTORS, "wip", "delete", "r1", namespace=ns)
    assert denied.returncode == 4 and "forbidden" in denied.stderr.lower(), denied.stderr
    deleted = mmif_as(ADMIN, "system:authenticated", "wip", "delete", "r1", "--timeout", "120", namespace=ns)
    assert deleted.returncode == 0 and "work in progress Deleted" in deleted.stdout, (
        deleted.stdout,
        deleted.stderr,
    )
    assert media.list_files("mmif-runs/r1") == []
    the_record_is_there("r1")
    gone = as_user(ADMIN, "delete", "pipelinerun", "r1", "-n", ns, "--wait=true", "--timeout=120s")
    assert gone.returncode == 0, gone.stderr
    the_record_is_there("r1")

    # By the project's disposal window (seconds here): a notice first, then the WIP deleted.
    # The window counts from r2's finish, some time ago now: due 25 s from now, told 20 s before.
    finished = parse_time(kube.get("pipelinerun", "r2", ns)["status"]["completionTime"])
    after = int((datetime.now(UTC) - finished).total_seconds()) + 25
    target = {
        "name": "hook",
        "events": ["DisposalNotice", "ProjectClosed"],
        "webhook": {"url": f"http://{RECEIVER}.{ns}.svc:5000/"},
        "retry": {"backoffSeconds": 1},
    }
    window = json.dumps(
        {"spec": {"disposal": {"after": f"PT{after}S", "notice": "PT20S"}, "notifications": [target]}}
    )
    kube.kubectl("patch", "project", ns, "--type=merge", "-p", window)
    try:
        kube.eventually(lambda: events(ns, "r2", "DisposalNotice"), timeout=30, interval=1, what="the notice")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{runs.operator_logs(80)}") from None
    assert "set spec.workInProgress: Keep" in events(ns, "r2", "DisposalNotice")[0]
    assert wip_condition(ns, "r2") == {}, "not deleted yet at the notice"
    assert "mmif-runs/r2/items/00000/final.mmif" in media.list_files("mmif-runs/r2")
    kube.eventually(
        lambda: wip_condition(ns, "r2").get("reason") == "Deleted", timeout=90, interval=1, what="r2 disposed"
    )
    assert kube.get("pipelinerun", "r2", ns)["spec"]["workInProgress"] == "Delete"
    assert media.list_files("mmif-runs/r2") == []
    the_record_is_there("r2")
    # The notice reached the project's webhook, once, naming the run.
    kube.eventually(
        lambda: project_events(ns, "disposal-notice"),
        timeout=60,
        interval=1,
        what="the DisposalNotice CloudEvent",
    )
    (notice,) = project_events(ns, "disposal-notice")
    assert notice["attributes"]["source"] == f"/apis/mmif.dev/v1alpha1/projects/{ns}"
    assert notice["data"]["project"] == ns and "r2 at " in notice["data"]["message"]

    # By the project's closure. No window now: r3's work in progress is left for the closure.
    kube.kubectl("patch", "project", ns, "--type=merge", "-p", '{"spec":{"disposal":null}}')
    create_reviewed_run(ns, "r3")
    kube.eventually(
        lambda: kube.get("pipelinerun", "r3", ns)["status"].get("phase") == "AwaitingReview",
        timeout=240,
        interval=1,
        what="r3 AwaitingReview",
    )
    # Closing is refused while a run awaits review, naming it.
    refused = kube.kubectl(
        "patch", "project", ns, "--type=merge", "-p", '{"spec":{"state":"Closed"}}', check=False
    )
    assert refused.returncode != 0, refused.stdout
    assert f"project {ns} cannot be closed" in refused.stderr and "r3 (AwaitingReview)" in refused.stderr
    assert kube.get("project", ns)["spec"].get("state", "Open") == "Open"
    pass_review(ns, "r3")
    done = runs.wait_to_finish(ns, "r3", timeout=180)
    assert runs.condition(done)["reason"] == "Succeeded", runs.diagnostics(ns, "r3")
    (records["r3"],) = json.loads(media.read_file(done["status"]["manifestPath"]))["published"]["records"]
    finals["r3"] = media.read_file(f"{done['status']['outputPath']}/items/00000/final.mmif")
    assert "mmif-runs/r3/items/00000/final.mmif" in media.list_files("mmif-runs/r3")
    kube.eventually(
        lambda: kube.kubectl(
            "patch", "project", ns, "--type=merge", "-p", '{"spec":{"state":"Closed"}}', check=False
        ).returncode == 0,
        timeout=30,
        interval=1,
        what="the closure accepted once r3 is over (the webhook's index follows it)",
    )  # fmt: skip

    def closed_condition() -> dict:
        conds = (kube.get("project", ns).get("status") or {}).get("conditions") or ()
        return next((c for c in conds if c["type"] == "Closed"), {})

    try:
        kube.eventually(
            lambda: kube.get("project", ns)["status"].get("phase") == "Closed",
            timeout=120,
            interval=1,
            what="the project Closed",
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\nClosed: {closed_condition()}\n{runs.operator_logs(80)}") from None
    closed = kube.get("project", ns)
    assert closed["status"]["closedAt"]
    cond = closed_condition()
    assert (cond["status"], cond["reason"]) == ("True", "ProjectClosed"), cond
    assert "its records are kept" in cond["message"]
    assert wip_condition(ns, "r3").get("reason") == "Deleted"
    assert kube.get("pipelinerun", "r3", ns)["metadata"]["annotations"]["mmif.dev/disposed-by"] == ns
    assert media.list_files("mmif-runs/r3") == []
    for name in ("r1", "r2", "r3"):
        the_record_is_there(name)
    got = kube.kubectl(
        "get", "events", "-A", "-o", "json",
        "--field-selector", f"involvedObject.kind=Project,involvedObject.name={ns},reason=ProjectClosed",
    )  # fmt: skip
    assert json.loads(got.stdout)["items"], "a ProjectClosed Event on the Project"
    kube.eventually(
        lambda: project_events(ns, "closed"), timeout=60, interval=1, what="the ProjectClosed CloudEvent"
    )
    (event,) = project_events(ns, "closed")
    assert event["attributes"]["source"] == f"/apis/mmif.dev/v1alpha1/projects/{ns}"
    assert event["attributes"]["subject"] == ns
    assert event["data"]["event"] == "ProjectClosed" and event["data"]["phase"] == "Closed"
    kube.eventually(
        lambda: (kube.get("project", ns)["status"].get("notifications") or {}).get("delivered") == 2,
        timeout=30,
        interval=1,
        what="the project's outbox: DisposalNotice and ProjectClosed delivered",
    )
    # Closed: no new run.
    late = run("late", "reviewed", [item("media/clip.mp4", name="clip")], claim_name="media")
    refused = as_user(CONTRIBUTOR, "create", "-n", ns, "-f", "-", group=CONTRIBUTORS, input=json.dumps(late))
    assert refused.returncode != 0 and f"project {ns} is Closed" in refused.stderr
