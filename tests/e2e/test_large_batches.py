"""Issue 10, case 7, end to end on the real cluster: batches the API accepts, the operator handles.

- 1,000 inline items of 6 documents (the items reach the prepare Job in a ConfigMap, never in an
  environment variable) run to the end;
- a run of about 700 KB (1,000 items with long locations) takes every later update: kopf's
  finalizer, ttlSecondsAfterFinished, a label, cancel (the webhook sees only what touches
  spec.requester);
- a user in 100 groups (by impersonation) creates a run, and the SubjectAccessReview for its
  analysis sees the groups beyond the first 64.
"""

from __future__ import annotations

import json
import time

import pytest

from tests import kube
from tests.e2e.test_analyses import app, as_user, condition, create_as, visit

pytestmark = pytest.mark.cluster


def create_large(obj: dict, namespace: str, user: str | None = None) -> None:
    """`kubectl create` (not apply: a client-side apply keeps a copy of the object in an
    annotation, which Kubernetes bounds to 256 KiB)."""
    if user:
        create_as(user, obj, namespace)
    else:
        kube.create(obj, namespace)


# --- 1,000 items x 6 documents ------------------------------------------------------------------


def test_a_run_of_1000_inline_items_of_6_documents_runs_to_the_end(
    operator_deployed, namespace, workspace, build, runs
):
    folder = "media/collection-2026/box-0001/tape-archive"
    files = {
        f"{folder}/item-{i:04d}/camera-{d}-recording-{i:04d}-part-{d}.mp4": f"{i}/{d}\n"
        for i in range(1000)
        for d in range(6)
    }
    workspace.write_media(files)
    locations = sorted(files)
    items = [
        {
            "name": f"item-{i:04d}",
            "documents": [{"location": loc, "mimeType": "video/mp4"} for loc in locations[6 * i : 6 * i + 6]],
        }
        for i in range(1000)
    ]
    textgen = build.step(
        "transcript",
        "textgen",
        mode="Service",
        replicas=2,
        env=[{"name": "CLAMS_GUNICORN_WORKERS", "value": "3"}],
    )
    build.apply(build.pipeline("bulk", [textgen], claim_name=workspace.claim_name), namespace)
    run = build.run("bulk", "bulk", items, claim_name=workspace.claim_name, parallelism=60)
    size = len(json.dumps(run))
    assert size > 570_000, size  # the issue's 573 KB that failed "argument list too long"
    started = time.monotonic()
    create_large(run, namespace)
    done = runs.wait_to_finish(namespace, "bulk", timeout=1500)
    took = time.monotonic() - started
    print(f"\n1,000 items x 6 documents ({size} bytes of run): {done['status'].get('phase')} in {took:.0f} s")
    assert runs.condition(done)["status"] == "True", runs.diagnostics(namespace, "bulk")
    assert done["status"]["progress"] == "1000/1000" and done["status"]["itemsSucceeded"] == 1000
    manifest = json.loads(workspace.read_file(done["status"]["manifestPath"]))
    assert manifest["counts"]["succeeded"] == 1000
    assert [e["name"] for e in manifest["items"]] == [f"item-{i:04d}" for i in range(1000)]
    # the items never travelled in an environment variable, and their ConfigMap is gone once read
    assert not kube.get_list("configmaps", namespace, "mmif.dev/run=bulk"), "the runner inputs are deleted"


# --- updates of a 700 KB run --------------------------------------------------------------------


def long_locations(workspace, count: int) -> list[str]:
    """`count` files whose locations are about 700 characters long (folders of 240 characters:
    a file name may not be longer than 255 bytes)."""
    top = "media/" + "/".join(("long-folder-name-" * 15)[:240] + f"-{n}" for n in range(2))
    files = {f"{top}/{('file-' * 40)[:190]}-{i:04d}.mp4": f"{i}\n" for i in range(count)}
    workspace.write_media(files)
    return sorted(files)


def test_every_later_update_of_a_700_kb_run_succeeds(operator_deployed, namespace, workspace, build, runs):
    visit(namespace)
    locations = long_locations(workspace, 1000)
    assert all(len(loc) > 650 for loc in locations)
    create_as(
        "alice",
        build.pipeline(
            "slow",
            [build.step("nap", "sleeper", parameters={"seconds": "60"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    run = build.run(
        "big",
        "slow",
        [build.item(loc, name=f"i{i}") for i, loc in enumerate(locations)],
        claim_name=workspace.claim_name,
        parallelism=1,
    )
    size = len(json.dumps(run))
    assert size > 690_000, size
    create_large(run, namespace, user="alice")

    # kopf's finalizer: an update by the operator, of the whole 700 KB object
    kube.eventually(
        lambda: (
            "mmif.dev/finalizer"
            in (kube.get("pipelinerun", "big", namespace)["metadata"].get("finalizers") or ())
        ),
        timeout=60,
        what="kopf's finalizer on the run",
    )
    kube.eventually(
        lambda: kube.get("pipelinerun", "big", namespace)["status"].get("phase") == "Running",
        timeout=120,
        what="the run to start",
    )
    # a label and the TTL, by alice
    as_user("alice", "label", "pipelinerun", "big", "-n", namespace, "visit=a1")
    as_user(
        "alice",
        "patch",
        "pipelinerun",
        "big",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"ttlSecondsAfterFinished": 5}}),
    )
    # a changed requester is still refused, however large the object
    changed = as_user(
        "alice",
        "patch",
        "pipelinerun",
        "big",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"requester": {"username": "mallory"}}}),
        check=False,
    )
    assert changed.returncode != 0 and "spec.requester cannot be changed" in changed.stderr, changed.stderr
    # cancel
    as_user(
        "alice",
        "patch",
        "pipelinerun",
        "big",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"status": "Cancelled"}}),
    )
    done = runs.wait_to_finish(namespace, "big", timeout=180)
    assert (done["status"]["phase"], runs.condition(done)["reason"]) == ("Cancelled", "Cancelled"), done[
        "status"
    ]
    assert done["metadata"]["labels"]["visit"] == "a1" and done["spec"]["requester"]["username"] == "alice"
    # and the TTL deletes it (kopf's finalizer removed: one more update)
    kube.eventually(
        lambda: (
            not kube.kubectl(
                "get", "pipelinerun", "big", "-n", namespace, "--ignore-not-found", "-o", "name"
            ).stdout.strip()
        ),
        timeout=60,
        what="the TTL to delete the run",
    )


# --- a user in 100 groups -----------------------------------------------------------------------


def test_a_user_in_100_groups_creates_a_run_and_its_analysis_is_authorised_by_a_group_past_64(
    operator_deployed, namespace, workspace, build, runs
):
    rules = {
        "run-maker": [
            {
                "apiGroups": ["mmif.dev"],
                "resources": ["pipelineruns"],
                "verbs": ["create", "get", "list", "watch", "patch"],
            },
            {"apiGroups": ["mmif.dev"], "resources": ["pipelines"], "verbs": ["get"]},
        ],
        "analysis-maker": [
            {"apiGroups": ["mmif.dev"], "resources": ["analysisjobs"], "verbs": ["create", "get", "list"]}
        ],
    }
    # runs through a group among the first 64, analyses only through the 100th group
    for role, group in (("run-maker", "team-010"), ("analysis-maker", "team-099")):
        kube.apply(
            [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": role},
                    "rules": rules[role],
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": role},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
                },
            ],
            namespace,
        )
    workspace.write_media({"media/a.mp4": "clip a\n"})
    build.apply(
        build.pipeline(
            "p",
            [build.step("t", "textgen")],
            claim_name=workspace.claim_name,
            analyses=[{"name": "seg", "app": app(build, "timeframes")}],
        ),
        namespace,
    )

    def as_member(user: str, groups: list[str], *args: str, **kw):
        flags = [f"--as-group={g}" for g in groups]
        return kube.kubectl("--as", user, *flags, *args, **kw)

    groups = [f"team-{i:03d}" for i in range(100)]
    others = groups[:99] + ["team-100"]  # the same, but not the 100th group
    for user, member_of in (("dana", groups), ("erin", others)):
        run = build.run(f"{user}-run", "p", [build.item("media/a.mp4")], claim_name=workspace.claim_name)
        as_member(user, member_of, "create", "-n", namespace, "-f", "-", input=json.dumps(run))

    recorded = kube.get("pipelinerun", "dana-run", namespace)["spec"]["requester"]
    from mmif_operator.core.requester import all_groups

    assert recorded["username"] == "dana" and len(recorded["groups"]) == 64 and recorded["moreGroups"]
    assert set(all_groups(recorded)) == set(groups) | {"system:authenticated"}

    def decided(name):
        return condition(kube.get("pipelinerun", name, namespace), "AnalysesCreated") or None

    dana = kube.eventually(lambda: decided("dana-run"), timeout=120, what="dana's run to decide its analysis")
    assert (dana["status"], dana["reason"]) == ("True", "Created"), dana
    aj = kube.get("analysisjob", "dana-run-seg", namespace)
    assert aj["spec"]["requester"] == recorded
    erin = kube.eventually(lambda: decided("erin-run"), timeout=120, what="erin's run to decide its analysis")
    assert (erin["status"], erin["reason"]) == ("False", "AnalysisNotAuthorized"), erin
    for user, member_of in (("dana", groups), ("erin", others)):
        as_member(
            user,
            member_of,
            "patch",
            "pipelinerun",
            f"{user}-run",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"status": "Cancelled"}}),
        )
    for name in ("dana-run", "erin-run"):
        assert runs.wait_to_finish(namespace, name, timeout=180)["status"]["phase"] in (
            "Cancelled",
            "Succeeded",
        )
