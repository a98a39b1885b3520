"""Records on the real cluster: in a Project with a record store, a contributor runs a reviewed
pipeline of the real test apps, an admin passes it, and the publish Job makes a record of the
item: byte-identical to the run's final.mmif, content-addressed, with a lineage that validates
against the shipped schema and carries the project's default legal tags, the requester and the
reviewer; a contributor cannot use the record store as a workspace. Users by impersonation."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from mmif_operator.records import lineage as LIN
from tests import kube
from tests.objects import apply, item, pipeline, run, step
from tests.projects import (
    ADMIN,
    CONTRIBUTOR,
    CONTRIBUTORS,
    as_user,
    create_as_contributor,
    mmif_as,
    mmif_as_contributor,
    record_project,
)
from tests.volume import Workspace

pytestmark = pytest.mark.cluster


def store_pod(name: str, read_only: bool, command: str) -> dict:
    """A pod of the contributor's that mounts the record store (hardened, so only the mount matters)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
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
                    "name": "c",
                    "image": "mmif.local/debian-python:bookworm",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", command],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "r", "mountPath": "/records", "readOnly": read_only}],
                }
            ],
            "volumes": [{"name": "r", "persistentVolumeClaim": {"claimName": "records"}}],
        },
    }


@pytest.fixture
def project_ns(cluster, operator_deployed):
    """A Project with a record store, Ready; its namespace holds a workspace and the store."""
    with record_project() as name:
        yield name


def test_a_passed_run_makes_records_with_lineage_and_the_store_is_no_workspace(project_ns, runs):
    ns = project_ns
    media = Workspace(ns, "media")
    media.write_media({"media/clip.mp4": b"not really a video\n"})
    apply(
        pipeline(
            "reviewed",
            [step("text", "textgen"), step("frames", "timeframes")],
            claim_name="media",
            review={"required": True},
        ),
        ns,
    )
    body = run("r1", "reviewed", [item("media/clip.mp4", name="clip")], claim_name="media")
    create_as_contributor(body, ns)

    def awaiting():
        obj = kube.get("pipelinerun", "r1", ns)
        if runs.condition(obj).get("status") == "False":
            raise AssertionError(runs.diagnostics(ns, "r1"))
        return obj["status"].get("phase") == "AwaitingReview"

    kube.eventually(awaiting, timeout=240, interval=1, what="r1 AwaitingReview")
    # The project cannot be closed while r1 awaits its review (the cluster admin neither).
    closing = json.dumps({"spec": {"state": "Closed"}})
    refused = kube.kubectl("patch", "project", ns, "--type=merge", "-p", closing, check=False)
    assert refused.returncode != 0 and "await review: r1 (AwaitingReview)." in refused.stderr, refused.stderr
    assert kube.get("project", ns)["spec"].get("state", "Open") == "Open"
    patch = json.dumps({"spec": {"review": {"decision": "Pass", "comment": "checked"}}})
    decided = kube.eventually(
        lambda: (
            as_user(ADMIN, "patch", "pipelinerun", "r1", "-n", ns, "--type=merge", "-p", patch).returncode
            == 0
        ),
        timeout=30,
        interval=1,
        what="the admin's decision accepted",
    )
    assert decided
    done = runs.wait_to_finish(ns, "r1", timeout=180)
    cond = runs.condition(done)
    assert (cond["status"], cond["reason"]) == ("True", "Succeeded"), runs.diagnostics(ns, "r1")

    manifest = json.loads(media.read_file(done["status"]["manifestPath"]))
    (record,) = manifest["published"]["records"]
    final = media.read_file(f"{done['status']['outputPath']}/items/00000/final.mmif")
    sha = hashlib.sha256(final).hexdigest()
    assert record == {"item": 0, "name": "clip", "id": f"sha256:{sha}"}
    got = mmif_as_contributor("record", f"sha256:{sha}", "--mmif", namespace=ns)
    assert got.returncode == 0, got.stderr
    # Byte for byte (the plugin ends what it prints with a newline).
    assert got.stdout.encode() in (final, final + b"\n")
    shown = mmif_as_contributor("record", f"sha256:{sha}", namespace=ns)
    assert shown.returncode == 0, shown.stderr
    lineage = json.loads(shown.stdout)
    LIN.validate(lineage)
    assert lineage["record"]["id"] == f"sha256:{sha}"
    assert lineage["legalTags"] == ["internal-research"]  # the project's default, set at admission
    assert lineage["acl"] == {"viewers": ["staff"]}
    assert lineage["run"]["requester"]["username"] == CONTRIBUTOR
    assert (lineage["review"]["reviewer"], lineage["review"]["comment"]) == (ADMIN, "checked")
    assert [s["step"] for s in lineage["steps"]] == ["text", "frames"]
    assert lineage["steps"][0]["image"].endswith("clams-textgen:dev")
    # The digest each step's app ran from, as the node resolved it (read from the step's pod).
    digests = [s["imageDigest"] for s in lineage["steps"]]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d or "") for d in digests), digests
    assert digests[0] != digests[1], digests  # two different apps
    ran = {e["step"]: e["imageID"] for e in kube.get("pipelinerun", "r1", ns)["status"]["appImages"]}
    assert [ran[s] for s in ("text", "frames")] == digests, ran
    assert lineage["inputs"][0]["location"] == "media/clip.mp4"
    assert lineage["inputs"][0]["sha256"] == hashlib.sha256(b"not really a video\n").hexdigest()
    assert lineage["project"] == {"name": ns, "projectId": ns}

    # Search them with the plugin, as the contributor (reader pods, the store read-only).
    found = mmif_as_contributor("records", "--run", "r1", "-o", "json", namespace=ns)
    assert found.returncode == 0, found.stderr
    assert [r["id"] for r in json.loads(found.stdout)] == [f"sha256:{sha}"]
    none = mmif_as_contributor("records", "--legal-tag", "public-domain", "-o", "json", namespace=ns)
    assert none.returncode == 0 and json.loads(none.stdout) == []

    # An outsider reads nothing of it: not the runs, not the records, not a lineage.
    for args in (("records",), ("record", f"sha256:{sha}"), ("record", f"sha256:{sha}", "--mmif")):
        refused = mmif_as("mallory", "outsiders", *args, namespace=ns)
        assert refused.returncode != 0, refused.stdout
        assert "forbidden" in refused.stderr.lower() and sha not in refused.stdout, refused.stderr
    runs_seen = as_user("mallory", "get", "pipelineruns", "-n", ns, group="outsiders")
    assert runs_seen.returncode != 0 and "forbidden" in runs_seen.stderr.lower(), runs_seen.stderr

    # Nobody but the publisher writes the store: a pod mounting it read-write is refused by the
    # API server; one mounting it read-only cannot write (EROFS).
    rw = as_user(CONTRIBUTOR, "create", "-n", ns, "-f", "-", group=CONTRIBUTORS,
                 input=json.dumps(store_pod("writer", False, "true")))  # fmt: skip
    assert rw.returncode != 0
    assert "record store: pods may mount it only with readOnly: true" in rw.stderr
    ro = as_user(CONTRIBUTOR, "create", "-n", ns, "-f", "-", group=CONTRIBUTORS,
                 input=json.dumps(store_pod("tamper", True, "echo forged >> /records/index.jsonl")))  # fmt: skip
    assert ro.returncode == 0, ro.stderr
    kube.eventually(
        lambda: kube.get("pod", "tamper", ns)["status"].get("phase") == "Failed",
        timeout=60,
        what="tamper pod ends",
    )
    assert "Read-only file system" in kube.kubectl("logs", "tamper", "-n", ns).stdout
    again = mmif_as_contributor("records", "-o", "json", namespace=ns)
    assert [r["id"] for r in json.loads(again.stdout)] == [f"sha256:{sha}"]  # the index unchanged

    # The record store is written only by the publisher: no run may take it as its workspace.
    squat = run("r2", "reviewed", [item("media/clip.mp4")], claim_name="records")
    refused = as_user(CONTRIBUTOR, "create", "-n", ns, "-f", "-", group=CONTRIBUTORS, input=json.dumps(squat))
    assert refused.returncode != 0
    assert f"spec.workspace.claimName: records is project {ns}'s record store" in refused.stderr

    # Nothing awaits review any more: the project closes, its records stay, no new run is taken.
    kube.kubectl("patch", "project", ns, "--type=merge", "-p", closing)
    kube.eventually(
        lambda: kube.get("project", ns)["status"].get("phase") == "Closed", timeout=60, what="project Closed"
    )
    late = as_user(
        CONTRIBUTOR, "create", "-n", ns, "-f", "-", group=CONTRIBUTORS,
        input=json.dumps(run("late", "reviewed", [item("media/clip.mp4")], claim_name="media")),
    )  # fmt: skip
    assert late.returncode != 0 and "closed" in late.stderr.lower(), late.stderr
    kept = mmif_as_contributor("records", "-o", "json", namespace=ns)
    assert kept.returncode == 0 and [r["id"] for r in json.loads(kept.stdout)] == [f"sha256:{sha}"]
