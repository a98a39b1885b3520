"""Projects on the real cluster with the real operator: a Project makes its namespace and binds
its members to the shipped roles; runs created there get the project's default legal tags and
ACL unless they name their own; closing is refused while runs are not finished (named), then
the project closes and refuses new runs; a namespace of the project's
name that the project did not make is never taken. Users act by impersonation."""

from __future__ import annotations

import json
import uuid

import pytest

from tests import kube
from tests.objects import item, run

pytestmark = pytest.mark.cluster

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture
def project_name(cluster):
    """A fresh project name; the Project and its namespace are deleted afterwards."""
    name = f"proj-{uuid.uuid4().hex[:6]}"
    yield name
    kube.kubectl("delete", "project", name, "--ignore-not-found", "--wait=false", check=False)
    kube.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


def project(name: str, **spec) -> dict:
    return {"apiVersion": "mmif.dev/v1alpha1", "kind": "Project", "metadata": {"name": name}, "spec": spec}


def condition(name: str, type_: str) -> dict:
    obj = kube.get("project", name)
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond["type"] == type_:
            return cond
    return {}


def can_i(verb: str, resource: str, namespace: str, user: str, *groups: str) -> bool:
    args = ["auth", "can-i", verb, resource, "-n", namespace, f"--as={user}"]
    args += [f"--as-group={g}" for g in groups]
    return kube.kubectl(*args, check=False).stdout.strip() == "yes"


def create_run_as(user: str, group: str, namespace: str, body: dict):
    return kube.kubectl(
        "create", "-n", namespace, f"--as={user}", f"--as-group={group}", "-f", "-",
        input=json.dumps(body), check=False,
    )  # fmt: skip


def test_a_project_makes_its_namespace_binds_its_members_defaults_its_runs_and_closes(
    operator_deployed, project_name
):
    admin, contributors, outsider = "alice", f"contrib-{project_name}", "mallory"
    kube.create(
        project(
            project_name,
            title="Oral history 2026",
            admins={"users": [admin]},
            contributors={"groups": [contributors]},
            defaults={
                "legalTags": ["internal-research"],
                "acl": {"owners": ["archivists"], "viewers": ["staff"]},
            },
        )
    )
    kube.eventually(
        lambda: condition(project_name, "Ready").get("status") == "True", timeout=60, what="the project Ready"
    )
    obj = kube.get("project", project_name)
    assert obj["status"]["phase"] == "Open"
    assert obj["status"]["namespace"] == project_name
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    table = kube.kubectl("get", "projects", project_name).stdout
    assert "Oral history 2026" in table and "Open" in table and "True" in table

    ns = kube.get("namespace", project_name)
    assert ns["metadata"]["labels"]["mmif.dev/project"] == project_name
    assert ns["metadata"]["annotations"]["mmif.dev/project-uid"] == obj["metadata"]["uid"]

    # Members: what each may do in the project's namespace, as the API server decides it.
    assert can_i("create", "pipelineruns.mmif.dev", project_name, "bob", contributors)
    assert not can_i("review", "pipelineruns.mmif.dev", project_name, "bob", contributors)
    assert not can_i("delete", "pipelineruns.mmif.dev", project_name, "bob", contributors)
    assert can_i("review", "pipelineruns.mmif.dev", project_name, admin)
    assert can_i("delete", "pipelineruns.mmif.dev", project_name, admin)
    assert not can_i("get", "pipelineruns.mmif.dev", project_name, outsider)

    # A contributor's run without legal tags or ACL gets the project's; explicit ones win.
    plain = run("defaulted", "no-such-pipeline", [item("a.mp4")])
    created = create_run_as("bob", contributors, project_name, plain)
    assert created.returncode == 0, created.stderr
    stored = kube.get("pipelinerun", "defaulted", project_name)["spec"]
    assert stored["legalTags"] == ["internal-research"]
    assert stored["acl"] == {"owners": ["archivists"], "viewers": ["staff"]}
    assert stored["requester"]["username"] == "bob"
    own = run(
        "own-tags", "no-such-pipeline", [item("a.mp4")], legalTags=["public-domain"], acl={"owners": ["me"]}
    )
    assert create_run_as("bob", contributors, project_name, own).returncode == 0
    stored = kube.get("pipelinerun", "own-tags", project_name)["spec"]
    assert stored["legalTags"] == ["public-domain"]
    assert stored["acl"] == {"owners": ["me"], "viewers": ["staff"]}
    # An outsider cannot create runs there at all.
    refused = create_run_as(outsider, "nobody", project_name, run("outsider", "p", [item("a.mp4")]))
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()

    # A new contributor: the binding follows the spec.
    kube.kubectl(
        "patch", "project", project_name, "--type=merge",
        "-p", json.dumps({"spec": {"contributors": {"groups": [contributors], "users": ["carol"]}}}),
    )  # fmt: skip
    kube.eventually(
        lambda: can_i("create", "pipelineruns.mmif.dev", project_name, "carol"),
        timeout=60,
        what="carol bound as a contributor",
    )

    # Closing is refused while runs are not finished (here Pending: their Pipeline does not
    # exist), naming them; nothing changes.
    closing = '{"spec":{"state":"Closed"}}'
    refused = kube.kubectl("patch", "project", project_name, "--type=merge", "-p", closing, check=False)
    assert refused.returncode != 0, refused.stdout
    assert f"project {project_name} cannot be closed while 2 PipelineRun(s)" in refused.stderr, refused.stderr
    assert "defaulted (Pending)" in refused.stderr and "own-tags (Pending)" in refused.stderr
    assert kube.get("project", project_name)["spec"].get("state", "Open") == "Open"
    for name in ("defaulted", "own-tags"):
        kube.kubectl(
            "patch", "pipelinerun", name, "-n", project_name, "--type=merge",
            "-p", '{"spec":{"status":"Cancelled"}}',
        )  # fmt: skip
    for name in ("defaulted", "own-tags"):
        kube.eventually(
            lambda name=name: (
                kube.get("pipelinerun", name, project_name)["status"].get("phase") == "Cancelled"
            ),
            timeout=60,
            what=f"{name} Cancelled",
        )

    # Closed (the cancelled runs never made their folders: no work in progress to delete): no
    # new runs, from anyone (the cluster admin included), with the project named.
    kube.eventually(
        lambda: kube.kubectl(
            "patch", "project", project_name, "--type=merge", "-p", closing, check=False
        ).returncode == 0,
        timeout=30,
        what="the closure accepted once the runs are over (the webhook's index follows them)",
    )  # fmt: skip
    kube.eventually(
        lambda: kube.get("project", project_name)["status"].get("phase") == "Closed",
        timeout=120,
        what="the project Closed",
    )
    closed = kube.get("project", project_name)["status"]
    assert closed["closedAt"]
    (cond,) = [c for c in closed["conditions"] if c["type"] == "Closed"]
    assert (cond["status"], cond["reason"]) == ("True", "ProjectClosed"), cond
    assert "Closed" in kube.kubectl("get", "projects", project_name).stdout
    refused = create_run_as("bob", contributors, project_name, run("late", "p", [item("a.mp4")]))
    assert refused.returncode != 0
    assert f"project {project_name} is Closed" in refused.stderr
    refused = kube.create(run("late-admin", "p", [item("a.mp4")]), project_name, check=False)
    assert refused.returncode != 0 and f"project {project_name} is Closed" in refused.stderr
    # Runs of other namespaces are not affected.
    assert "late" not in kube.kubectl("get", "pipelineruns", "-n", project_name, "-o", "name").stdout


def test_a_namespace_of_the_projects_name_that_it_did_not_make_is_not_taken(operator_deployed, project_name):
    kube.kubectl("create", "namespace", project_name)
    kube.create(project(project_name, contributors={"users": ["bob"]}, state="Closed"))
    kube.eventually(
        lambda: condition(project_name, "Ready").get("reason") == "NameConflict",
        timeout=60,
        what="Ready=False NameConflict",
    )
    ready = condition(project_name, "Ready")
    assert ready["status"] == "False"
    assert f"namespace {project_name} already exists and is not this project's" in ready["message"]
    assert condition(project_name, "Stalled")["status"] == "True"
    ns = kube.get("namespace", project_name)
    assert "mmif.dev/project" not in (ns["metadata"].get("labels") or {})
    assert kube.get_list("rolebindings", project_name) == [] or all(
        rb["metadata"]["name"] not in ("mmif-project-admins", "mmif-project-contributors")
        for rb in kube.get_list("rolebindings", project_name)
    )
    # Not the project's namespace: the closed project does not refuse runs there.
    assert kube.create(run("allowed", "p", [item("a.mp4")]), project_name, check=False).returncode == 0
