"""Issue 10, cases 2, 8 and 9 (i, ii), end to end on the real cluster, with users by impersonation:

- 2: a run's or analysis's folder never lies inside another's, nor holds one: bob's runs aimed
  into alice's run folder fail `OutputConflict`, and alice's run and AnalysisJob succeed with
  their own outputs; in the reverse order, alice's run fails `OutputConflict` naming bob's folder
  and writes nothing into it;
- 8: document locations are percent-encoded `file://` URIs; a file CLAMS apps would open as
  another path is refused at prepare (`InvalidItems`), one whose name is full of URI characters
  goes through and the app reads that very file;
- 9 (i): an app answering 3 GiB fails the item `OutputTooLarge` (never retried, no OOM-killed
  runner); (ii) a run that failed at prepare reports no outputPath nor manifestPath.
"""

from __future__ import annotations

import hashlib
import json
import posixpath

import pytest
from mmif import Mmif

from tests import kube
from tests.e2e.test_analyses import app, condition, create_as, visit, wait_analysis
from tests.e2e.test_run_behaviour import job_pod_creations

pytestmark = pytest.mark.cluster

RUNS = "mmif-runs"


def members(namespace: str) -> None:
    """docs/examples' roles: alice a member (pipelines, runs, analyses), bob may run pipelines."""
    visit(namespace)
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "bob-runner"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "mmif-runner"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
        },
        namespace,
    )


def alices_pipeline(build, workspace, nap: str = "0"):
    return build.pipeline(
        "transcribe",
        [build.step("transcript", "textgen"), build.step("nap", "sleeper", parameters={"seconds": nap})],
        claim_name=workspace.claim_name,
        analyses=[{"name": "seg", "trigger": "AfterRun", "app": app(build, "timeframes")}],
    )


def wait_output_path(namespace: str, name: str, timeout: float = 120) -> dict:
    """The run once its prepare Job claimed its folder (status.outputPath is reported then)."""
    return kube.eventually(
        lambda: (lambda r: r if (r.get("status") or {}).get("outputPath") else None)(
            kube.get("pipelinerun", name, namespace)
        ),
        timeout=timeout,
        what=f"pipelinerun/{name} to claim its folder",
    )


def markers_under(workspace, folder: str) -> list[str]:
    return [p for p in workspace.list_files(folder) if p.endswith((".run-uid", ".analysis-uid"))]


# --- 2. nested folders, bob after alice ----------------------------------------------------------

ATTACKS = [  # (bob's run, its outputDir): the three of issue 10, case 2
    ("manifest.json", f"{RUNS}/alice-run"),
    ("final.mmif", f"{RUNS}/alice-run/items/00000"),
    ("alice-run-seg", f"{RUNS}/alice-run/analyses"),
]


def test_bobs_runs_aimed_into_alices_folder_fail_and_alice_keeps_her_outputs(
    operator_deployed, namespace, workspace, build, runs
):
    members(namespace)
    workspace.write_media({"media/a.mp4": "clip a\n", "media/b.mp4": "clip b\n"})
    create_as("alice", alices_pipeline(build, workspace, nap="15"), namespace)
    create_as(
        "alice",
        build.run(
            "alice-run",
            "transcribe",
            [build.item("media/a.mp4", name="a"), build.item("media/b.mp4", name="b")],
            claim_name=workspace.claim_name,
            parallelism=1,
        ),
        namespace,
    )
    alice = wait_output_path(namespace, "alice-run")
    alice_folder = f"/data/{RUNS}/alice-run"
    assert alice["status"]["outputPath"] == alice_folder

    for name, output_dir in ATTACKS:
        run = build.run(name, "transcribe", [build.item("media/a.mp4")], claim_name=workspace.claim_name)
        run["spec"]["workspace"]["outputDir"] = output_dir
        create_as("bob", run, namespace)
    for name, output_dir in ATTACKS:
        done = runs.wait_to_finish(namespace, name, timeout=180)
        cond = runs.condition(done)
        assert (done["status"]["phase"], cond["reason"]) == ("Failed", "OutputConflict"), done["status"]
        assert (
            f"/data/{output_dir}/{name} lies inside {alice_folder}, the folder of run "
            f"{alice['metadata']['uid']}"
        ) in cond["message"], cond
        assert "outputPath" not in done["status"] and "manifestPath" not in done["status"]

    # alice's run and her analysis end as if bob had done nothing, with their own outputs.
    alice = runs.wait_to_finish(namespace, "alice-run", timeout=300)
    assert runs.condition(alice)["status"] == "True", runs.diagnostics(namespace, "alice-run")
    assert alice["status"]["manifestPath"] == f"{alice_folder}/manifest.json"
    manifest = json.loads(workspace.read_file(alice["status"]["manifestPath"]))
    assert manifest["run"] == "alice-run" and manifest["counts"]["succeeded"] == 2
    final = Mmif(workspace.read_file(f"{alice_folder}/items/00000/final.mmif").decode())
    assert [v.metadata.app for v in final.views] == [
        build.app_identifier("textgen"),
        build.app_identifier("sleeper"),
    ]
    seg = wait_analysis(namespace, "alice-run-seg")
    assert condition(seg)["status"] == "True", seg["status"]
    assert seg["status"]["manifestPath"] == f"{alice_folder}/analyses/alice-run-seg/manifest.json"
    seg_manifest = json.loads(workspace.read_file(seg["status"]["manifestPath"]))
    assert seg_manifest["analysisJob"] == "alice-run-seg" and seg_manifest["counts"]["succeeded"] == 2
    assert seg["spec"]["requester"]["username"] == "alice"
    # and nothing of bob's was made inside her folder
    assert markers_under(workspace, f"{RUNS}/alice-run") == [
        f"{RUNS}/alice-run/.run-uid",
        f"{RUNS}/alice-run/analyses/alice-run-seg/.analysis-uid",
    ]


# --- 2. nested folders, bob first ----------------------------------------------------------------


def test_alices_run_after_bobs_nested_runs_fails_naming_them_and_touches_nothing(
    operator_deployed, namespace, workspace, build, runs
):
    """Bob claims folders where alice's run folder will be, before alice's run exists. The first
    claim wins: alice's run fails OutputConflict at once, naming what her folder holds; bob's runs,
    which lie in no one else's folder, go on."""
    members(namespace)
    workspace.write_media({"media/a.mp4": "clip a\n"})
    create_as("alice", alices_pipeline(build, workspace), namespace)
    for name, output_dir in ATTACKS:
        run = build.run(name, "transcribe", [build.item("media/a.mp4")], claim_name=workspace.claim_name)
        run["spec"]["workspace"]["outputDir"] = output_dir
        create_as("bob", run, namespace)
    bobs = {name: wait_output_path(namespace, name) for name, _ in ATTACKS}

    create_as(
        "alice",
        build.run("alice-run", "transcribe", [build.item("media/a.mp4")], claim_name=workspace.claim_name),
        namespace,
    )
    alice = runs.wait_to_finish(namespace, "alice-run", timeout=120)
    cond = runs.condition(alice)
    assert (alice["status"]["phase"], cond["reason"]) == ("Failed", "OutputConflict"), alice["status"]
    held = [
        (f"{output_dir}/{name}"[len(f"{RUNS}/alice-run/") :], bobs[name]["metadata"]["uid"])
        for name, output_dir in ATTACKS
    ]
    assert f"/data/{RUNS}/alice-run already exists and holds " in cond["message"], cond
    assert any(f"holds {where}, the folder of run {uid}" in cond["message"] for where, uid in held), cond
    assert "(and 2 more)" in cond["message"]
    if kube.get_list("analysisjobs", namespace):  # triggered at start: it has nothing to process
        assert condition(wait_analysis(namespace, "alice-run-seg"))["reason"] == "NothingToProcess"
    for name, _ in ATTACKS:
        done = runs.wait_to_finish(namespace, name, timeout=300)
        assert runs.condition(done)["status"] == "True", runs.diagnostics(namespace, name)
    # alice's run wrote nothing: the only markers are bob's, each in its own folder
    assert markers_under(workspace, f"{RUNS}/alice-run") == sorted(
        f"{output_dir}/{name}/.run-uid" for name, output_dir in ATTACKS
    )


# --- 8. file names with '#' or '?' ---------------------------------------------------------------

NASTY = "media/sp ace/ü #1?.mp4"
URI_CHARACTERS = "media/take(1)+mix&cut=2,final;v'1@x:y!$~.mp4"


def test_a_file_apps_would_open_as_another_path_is_refused_and_a_uri_safe_name_reads_the_right_file(
    operator_deployed, namespace, workspace, build, runs
):
    nasty, safe = b"the nasty one\n", b"the right file\n"
    workspace.write_media(
        {
            NASTY: nasty,
            URI_CHARACTERS: safe,
            # where an app reading the verbatim location would stop: at '#'
            "media/sp ace/ü ": b"a decoy\n",
        }
    )
    build.apply(
        build.pipeline(
            "read",
            [build.step("spy", "spy", parameters={"readDocuments": "true"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )

    build.apply(
        build.run("nasty", "read", [build.item(NASTY, name="clip")], claim_name=workspace.claim_name),
        namespace,
    )
    refused = runs.wait_to_finish(namespace, "nasty", timeout=120)
    cond = runs.condition(refused)
    assert (refused["status"]["phase"], cond["reason"]) == ("Failed", "PrepareFailed"), refused["status"]
    assert cond["message"].startswith(
        f"item 0 (clip): documents[0].location {NASTY!r}: CLAMS apps would open "
        "'/data/media/sp%20ace/%C3%BC%20%231%3F.mp4' instead"
    ), cond
    assert "outputPath" not in refused["status"] and "manifestPath" not in refused["status"], (
        "neither exists after PrepareFailed"
    )
    assert not kube.get_list("jobs", namespace, "app.kubernetes.io/component=step"), "no app ever saw it"

    build.apply(
        build.run("safe", "read", [build.item(URI_CHARACTERS, name="clip")], claim_name=workspace.claim_name),
        namespace,
    )
    done = runs.wait_to_finish(namespace, "safe", timeout=180)
    assert runs.condition(done)["status"] == "True", runs.diagnostics(namespace, "safe")
    out = Mmif(
        workspace.read_file(posixpath.join(done["status"]["outputPath"], "items/00000/final.mmif")).decode()
    )
    assert out.documents[0].location == f"file:///data/{URI_CHARACTERS}"
    [read] = [a for a in out.views[-1].get_annotations() if a.get_property("op") == "readDocument"]
    assert (
        read.get_property("path") == f"/data/{URI_CHARACTERS}" and read.get_property("outcome") == "allowed"
    )
    assert read.get_property("sha256") == hashlib.sha256(safe).hexdigest(), "the app read that very file"


# --- 9 (i). an answer of 3 GiB ---------------------------------------------------------------------


def test_an_app_answering_3_gib_fails_the_item_output_too_large_without_retries(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/a.mp4": "clip a\n"})
    build.apply(
        build.pipeline("loud", [build.step("talk", "bigmouth", retries=2)], claim_name=workspace.claim_name),
        namespace,
    )
    build.apply(
        build.run("loud", "loud", [build.item("media/a.mp4", name="clip")], claim_name=workspace.claim_name),
        namespace,
    )
    done = runs.wait_to_finish(namespace, "loud", timeout=240)
    assert (done["status"]["phase"], runs.condition(done)["reason"]) == ("Failed", "ItemsFailed"), done[
        "status"
    ]
    [failure] = done["status"]["failures"]
    assert (failure["item"], failure["step"], failure["reason"]) == ("clip", "talk", "OutputTooLarge"), (
        failure
    )
    assert "is longer than the 32 MiB the runner reads" in failure["message"], failure
    # a final failure (exit 3, the runner's own summary): one pod, never a retry after an OOM kill
    assert job_pod_creations(namespace, "loud")["loud-00000-0"] == 1
    record = json.loads(
        workspace.read_file(posixpath.join(done["status"]["outputPath"], "items/00000/00-talk.json"))
    )
    assert record["reason"] == "OutputTooLarge" and record["retriable"] is False
