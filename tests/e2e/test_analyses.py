"""AnalysisJobs end to end, as the users of a visit drive them (kubectl --as alice/bob/carol):
triggered analyses, Live and AfterRun, who asked, who may, and what an analysis pod can touch.

The visit is the test's namespace, with the roles of docs/examples/visit-roles.yaml and the
members of docs/examples/visit-a1-members.yaml (alice: member; carol: runs pipelines only).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import pytest
from mmif import Mmif

from tests import kube

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def visit(namespace: str) -> None:
    """The roles and members of docs/examples, in this namespace."""
    for name in ("visit-roles.yaml", "visit-a1-members.yaml"):
        kube.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / name))


def as_user(user: str, *args: str, input: str | None = None, check: bool = True):
    return kube.kubectl("--as", user, *args, input=input, check=check)


def create_as(user: str, obj: dict, namespace: str, check: bool = True):
    return as_user(user, "create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=check)


def analysis(name: str, run: str, app: dict, trigger: str = "AfterRun", parallelism: int = 4) -> dict:
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "AnalysisJob",
        "metadata": {"name": name},
        "spec": {"runRef": {"name": run}, "app": app, "trigger": trigger, "parallelism": parallelism},
    }


def app(build, image_app: str, **fields) -> dict:
    body = {"image": build.app_image(image_app), "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}]}
    body.update(fields)
    return body


def wait_analysis(namespace: str, name: str, timeout: float = 300) -> dict:
    def finished():
        aj = kube.get("analysisjob", name, namespace)
        cond = next(
            (c for c in (aj.get("status") or {}).get("conditions") or () if c["type"] == "Succeeded"), {}
        )
        return aj if cond.get("status") in ("True", "False") else None

    try:
        return kube.eventually(finished, timeout=timeout, interval=2, what=f"analysisjob/{name} to finish")
    except AssertionError as exc:
        details = kube.kubectl("get", "analysisjob", name, "-n", namespace, "-o", "yaml", check=False).stdout
        events = kube.kubectl(
            "get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False
        ).stdout
        raise AssertionError(f"{exc}\n{details[-3000:]}\n{events[-3000:]}") from None


def condition(obj: dict, type_: str = "Succeeded") -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_), {})


def media(workspace, count: int) -> list[str]:
    files = {f"media/clip-{i}.mp4": f"clip {i}\n".encode() for i in range(count)}
    workspace.write_media(files)
    return list(files)


# --- 1 + 3. a visit: alice's run triggers a Live analysis; bob sees nothing; carol gets no analysis ---


def test_a_visit_alice_gets_a_live_analysis_bob_nothing_carol_no_analysis(
    operator_deployed, namespace, workspace, build, runs
):
    visit(namespace)
    items = 4
    locations = media(workspace, items)
    pipeline = build.pipeline(
        "transcribe",
        [build.step("transcript", "textgen"), build.step("nap", "sleeper", parameters={"seconds": "2"})],
        claim_name=workspace.claim_name,
        analyses=[
            {
                "name": "seg",
                "trigger": "Live",
                "parallelism": 2,
                "app": app(build, "timeframes", parameters={"count": "2"}),
            }
        ],
    )
    create_as("alice", pipeline, namespace)
    run = build.run(
        "alice-run",
        "transcribe",
        [build.item(loc, name=f"clip-{i}") for i, loc in enumerate(locations)],
        claim_name=workspace.claim_name,
        parallelism=1,
    )
    create_as("alice", run, namespace)

    # The run and its analysis record alice, as the API server authenticated her.
    recorded = kube.get("pipelinerun", "alice-run", namespace)["spec"]["requester"]
    assert recorded["username"] == "alice" and "system:authenticated" in recorded["groups"]
    aj = kube.eventually(
        lambda: kube.get_list("analysisjobs", namespace) or None,
        timeout=120,
        what="the triggered AnalysisJob",
    )
    assert [a["metadata"]["name"] for a in aj] == ["alice-run-seg"]
    assert aj[0]["spec"]["requester"] == recorded
    assert aj[0]["metadata"]["ownerReferences"][0]["name"] == "alice-run"
    listed = as_user("alice", "get", "analysisjobs", "-n", namespace).stdout
    assert "alice-run-seg" in listed and "Live" in listed

    run = runs.wait_to_finish(namespace, "alice-run", timeout=420)
    assert runs.condition(run)["status"] == "True", runs.diagnostics(namespace, "alice-run")
    assert condition(run, "AnalysesCreated")["status"] == "True"
    done = wait_analysis(namespace, "alice-run-seg")
    assert condition(done)["status"] == "True", done["status"]
    assert done["status"]["progress"] == f"{items}/{items}" and done["status"]["itemsSucceeded"] == items

    # Live: the first item's processed MMIF was written before the run's last item finished.
    run_manifest = json.loads(workspace.read_file(run["status"]["manifestPath"]))
    aj_manifest = json.loads(workspace.read_file(done["status"]["manifestPath"]))
    last_item_done = max(e["finishedAt"] for e in run_manifest["items"])
    first_processed = min(e["finishedAt"] for e in aj_manifest["items"])
    assert first_processed < last_item_done, (first_processed, last_item_done)
    assert [(e["index"], e["state"]) for e in aj_manifest["items"]] == [
        (i, "Succeeded") for i in range(items)
    ]
    pipeline_views = [build.app_identifier("textgen"), build.app_identifier("sleeper")]
    for entry in aj_manifest["items"]:
        out = Mmif(
            workspace.read_file(posixpath.join(done["status"]["outputPath"], entry["output"])).decode()
        )
        assert [v.metadata.app for v in out.views] == pipeline_views + [build.app_identifier("timeframes")]

    # alice reads both outputs through a pod of her own on the visit's volume.
    reader = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "alice-reader"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "cat",
                    "image": "mmif.local/debian-python:bookworm",
                    "command": ["cat", run["status"]["manifestPath"], done["status"]["manifestPath"]],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": workspace.claim_name}}],
        },
    }
    create_as("alice", reader, namespace)
    kube.eventually(
        lambda: kube.get("pod", "alice-reader", namespace)["status"].get("phase") == "Succeeded",
        timeout=120,
        what="alice's reader pod",
    )
    text = as_user("alice", "logs", "alice-reader", "-n", namespace).stdout
    assert '"run": "alice-run"' in text and '"analysisJob": "alice-run-seg"' in text

    # bob is no member: he can neither see nor create anything in the visit.
    for args in (["get", "pipelineruns", "-n", namespace], ["get", "analysisjobs", "-n", namespace]):
        denied = as_user("bob", *args, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    bob_run = build.run("bob-run", "transcribe", [build.item(locations[0])], claim_name=workspace.claim_name)
    denied = create_as("bob", bob_run, namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr

    # carol may run pipelines but not analyses: her run goes on, with no analysis, and says why.
    denied = create_as(
        "carol", analysis("carol-aj", "alice-run", app(build, "timeframes")), namespace, check=False
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    carol_run = build.run(
        "carol-run", "transcribe", [build.item(locations[0], name="clip-0")], claim_name=workspace.claim_name
    )
    create_as("carol", carol_run, namespace)
    refused = kube.eventually(
        lambda: condition(kube.get("pipelinerun", "carol-run", namespace), "AnalysesCreated") or None,
        timeout=120,
        what="carol's run to decide its analyses",
    )
    assert (refused["status"], refused["reason"]) == ("False", "AnalysisNotAuthorized"), refused
    assert "carol" in refused["message"] and "seg" in refused["message"]
    carol_done = runs.wait_to_finish(namespace, "carol-run", timeout=300)
    assert runs.condition(carol_done)["status"] == "True"
    assert [(a["name"], a["state"]) for a in carol_done["status"]["analyses"]] == [("seg", "NotAuthorized")]
    names = [a["metadata"]["name"] for a in kube.get_list("analysisjobs", namespace)]
    assert names == ["alice-run-seg"], names
    events = kube.get_list("events", namespace)
    assert any(
        e["reason"] == "AnalysisNotAuthorized" and e["involvedObject"]["name"] == "carol-run" for e in events
    )


# --- 2. AfterRun: starts after the run, processes exactly the succeeded items --------------------


def test_after_run_starts_when_the_run_ends_and_takes_only_succeeded_items(
    operator_deployed, namespace, workspace, build, runs
):
    locations = media(workspace, 4)
    build.apply(
        build.pipeline(
            "maybe",
            [
                build.step("nap", "sleeper", parameters={"seconds": "2"}),
                build.step("check", "failer", parameters={"failOn": "clip-2"}),
            ],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.run(
            "mixed",
            "maybe",
            [build.item(loc) for loc in locations],
            claim_name=workspace.claim_name,
            parallelism=2,
        ),
        namespace,
    )
    kube.create(analysis("mixed-after", "mixed", app(build, "timeframes"), trigger="AfterRun"), namespace)

    waiting = kube.eventually(
        lambda: condition(kube.get("analysisjob", "mixed-after", namespace)) or None,
        timeout=60,
        what="the analysis to report",
    )
    run = kube.get("pipelinerun", "mixed", namespace)
    if run["status"].get("phase") not in ("Succeeded", "Failed"):
        assert waiting["reason"] == "WaitingForRun", waiting
    run = runs.wait_to_finish(namespace, "mixed", timeout=300)
    assert (run["status"]["itemsSucceeded"], run["status"]["itemsFailed"]) == (3, 1)
    done = wait_analysis(namespace, "mixed-after")
    assert condition(done)["status"] == "True", done["status"]
    assert done["status"]["startTime"] >= run["status"]["completionTime"]
    assert done["status"]["progress"] == "3/3"
    manifest = json.loads(workspace.read_file(done["status"]["manifestPath"]))
    assert [e["index"] for e in manifest["items"]] == [0, 1, 3]
    assert manifest["counts"] == {"total": 3, "succeeded": 3, "failed": 0}
    me = kube.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout.strip()
    assert done["spec"]["requester"]["username"] == me


# --- 4. a forged or changed requester ------------------------------------------------------------


def test_a_forged_or_changed_requester_is_rejected_at_admission(
    operator_deployed, namespace, workspace, build
):
    build.apply(build.pipeline("p", [build.step("t", "textgen")], claim_name=workspace.claim_name), namespace)
    forged = build.run(
        "forged",
        "p",
        [build.item("media/x.mp4")],
        claim_name=workspace.claim_name,
        requester={"username": "alice", "groups": ["visit-a1"]},
    )
    proc = kube.create(forged, namespace, check=False)
    assert proc.returncode != 0 and "spec.requester is set by the API server" in proc.stderr, proc.stderr

    honest = build.run("honest", "p", [build.item("media/x.mp4")], claim_name=workspace.claim_name)
    kube.create(honest, namespace)
    me = kube.get("pipelinerun", "honest", namespace)["spec"]["requester"]["username"]
    patch = json.dumps({"spec": {"requester": {"username": "alice"}}})
    proc = kube.kubectl(
        "patch", "pipelinerun", "honest", "-n", namespace, "--type=merge", "-p", patch, check=False
    )
    assert proc.returncode != 0 and "spec.requester cannot be changed" in proc.stderr, proc.stderr
    assert kube.get("pipelinerun", "honest", namespace)["spec"]["requester"]["username"] == me

    aj = analysis("forged-aj", "honest", app(build, "timeframes"))
    aj["spec"]["requester"] = {"username": "alice"}
    proc = kube.create(aj, namespace, check=False)
    assert proc.returncode != 0 and "spec.requester is set by the API server" in proc.stderr, proc.stderr


# --- 5. what an analysis pod can touch -------------------------------------------------------------


def test_an_analysis_app_cannot_read_another_run_or_write_into_its_source(
    operator_deployed, namespace, workspace, build, runs
):
    locations = media(workspace, 1)
    build.apply(build.pipeline("p", [build.step("t", "textgen")], claim_name=workspace.claim_name), namespace)
    for name in ("source", "other"):
        build.apply(
            build.run(name, "p", [build.item(locations[0])], claim_name=workspace.claim_name), namespace
        )
    for name in ("source", "other"):
        assert runs.condition(runs.wait_to_finish(namespace, name))["status"] == "True"
    other_items = "/data/mmif-runs/other/items.jsonl"
    into_source = "/data/mmif-runs/source/items/00000/planted.txt"
    spy = app(build, "spy", parameters={"readPath": other_items, "writePath": into_source})
    kube.create(analysis("snoop", "source", spy), namespace)
    done = wait_analysis(namespace, "snoop")
    assert condition(done)["status"] == "True", done["status"]
    out = Mmif(
        workspace.read_file(
            posixpath.join(done["status"]["outputPath"], "items/00000/analysis.mmif")
        ).decode()
    )
    spy_view = out.views[-1]
    assert spy_view.metadata.app == build.app_identifier("spy")
    attempts = {
        a.get_property("op"): a for a in spy_view.get_annotations() if a.get_property("op") != "identity"
    }
    assert attempts["read"].get_property("outcome") == "denied"
    assert attempts["read"].get_property("errnoName") == "ENOENT"  # the other run is not in the pod
    assert attempts["write"].get_property("outcome") == "denied"
    assert attempts["write"].get_property("errnoName") == "EROFS"  # the source is read-only
    assert not [p for p in workspace.list_files("mmif-runs") if p.endswith("planted.txt")]
    # The runner wrote the analysis's own folder.
    assert "mmif-runs/source/analyses/snoop/items/00000/analysis.mmif" in workspace.list_files(
        "mmif-runs/source/analyses/snoop/items/00000"
    )


# --- 6. the operator killed mid-analysis -----------------------------------------------------------


def test_the_operator_killed_mid_analysis_processes_each_item_once(
    operator_deployed, namespace, workspace, build, runs
):
    items = 6
    locations = media(workspace, items)
    build.apply(build.pipeline("p", [build.step("t", "textgen")], claim_name=workspace.claim_name), namespace)
    build.apply(
        build.run(
            "base",
            "p",
            [build.item(loc) for loc in locations],
            claim_name=workspace.claim_name,
            parallelism=3,
        ),
        namespace,
    )
    assert runs.condition(runs.wait_to_finish(namespace, "base", timeout=300))["status"] == "True"
    kube.create(
        analysis("slow", "base", app(build, "sleeper", parameters={"seconds": "4"}), parallelism=2), namespace
    )
    kube.eventually(
        lambda: (
            (kube.get("analysisjob", "slow", namespace).get("status") or {}).get("itemsSucceeded", 0) >= 1
        ),
        timeout=180,
        what="a first item analysed",
    )
    ns_op = operator_deployed.namespace
    old = [
        p["metadata"]["name"] for p in kube.get_list("pods", ns_op, "app.kubernetes.io/name=mmif-operator")
    ]
    kube.kubectl("delete", "pod", *old, "-n", ns_op, "--grace-period=0", "--force")

    done = wait_analysis(namespace, "slow", timeout=300)
    assert condition(done)["status"] == "True", done["status"]
    manifest = json.loads(workspace.read_file(done["status"]["manifestPath"]))
    assert [(e["index"], e["state"]) for e in manifest["items"]] == [(i, "Succeeded") for i in range(items)]
    for i in range(items):
        rec = json.loads(workspace.read_file(f"mmif-runs/base/analyses/slow/items/{i:05d}/analysis.json"))
        assert (rec["state"], rec["attempt"]) == ("Succeeded", 1), rec
    created: dict[str, int] = {}
    for ev in kube.get_list("events", namespace):
        obj = ev.get("involvedObject", {})
        if (
            obj.get("kind") == "Job"
            and ev.get("reason") == "SuccessfulCreate"
            and obj["name"].startswith("slow-a0")
        ):
            created[obj["name"]] = created.get(obj["name"], 0) + int(ev.get("count") or 1)
    assert created == {f"slow-a{i:05d}": 1 for i in range(items)}, created
