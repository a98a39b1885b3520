"""Projects with a record store, for e2e tests: make one (Ready, with a media workspace and the
store's claim), act as its admin, contributor or an outsider (impersonation), and take a reviewed
run through to Passed. Import them (`from tests import projects`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import kube
from tests import runs as runs_module
from tests.objects import apply, sample
from tests.volume import ensure_volume_pod

ADMIN, CONTRIBUTOR, CONTRIBUTORS = "alice", "bob", "archive-team"
BIN = Path(sys.executable).parent  # the venv's bin: kubectl-mmif


def mmif_as(user: str, group: str, *args: str, namespace: str) -> subprocess.CompletedProcess:
    """`kubectl mmif ARGS` as `user` of `group`, as they type it."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["kubectl", "mmif", *args, "-n", namespace, "--as", user, "--as-group", group],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip


def mmif_as_contributor(*args: str, namespace: str) -> subprocess.CompletedProcess:
    return mmif_as(CONTRIBUTOR, CONTRIBUTORS, *args, namespace=namespace)


def as_user(user: str, *args: str, group: str | None = None, input: str | None = None):
    who = [f"--as={user}"] + ([f"--as-group={group}"] if group else [])
    return kube.kubectl(*who, *args, input=input, check=False)


def create_project(prefix: str = "rec", store_of: str | None = None) -> str:
    """A Project with a record store (claim `records`), Ready; its namespace holds a workspace
    claim `media` with its volume pod and the store's claim. Its name (= its namespace); delete it
    with `delete_project` (or use `record_project`, which does). `store_of`: another project whose
    store this one's claim `records` mounts too (`share_store`), instead of a new volume."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube.create(
        {
            "apiVersion": "mmif.dev/v1alpha1",
            "kind": "Project",
            "metadata": {"name": name},
            "spec": {
                "admins": {"users": [ADMIN]},
                "contributors": {"groups": [CONTRIBUTORS]},
                "defaults": {"legalTags": ["internal-research"], "acl": {"viewers": ["staff"]}},
                "records": {"claimName": "records"},
            },
        }
    )

    def ready():
        conds = (kube.get("project", name).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    try:
        kube.eventually(ready, timeout=60, what=f"project {name} Ready")
        if store_of is not None:
            share_store(store_of, name)
        for claim in ("media", "records") if store_of is None else ("media",):
            pvc = sample("workspace-pvc.yaml")
            pvc["metadata"]["name"] = claim
            pvc["spec"]["resources"]["requests"]["storage"] = "1Gi"
            apply(pvc, name)
        ensure_volume_pod(name, "media")  # the store is read through kubectl mmif (read-only) only
    except BaseException:
        delete_project(name)
        raise
    return name


def shared_store_volume(namespace: str) -> str:
    return f"{namespace}-shared-records"


def share_store(source: str, namespace: str) -> None:
    """Give `namespace` a claim `records` on the same directory as project `source`'s store: a
    PersistentVolume of its own (Retain, no class) with the source volume's hostPath or local
    path, bound to that claim. Two projects then read and publish records in one store (an
    organisation's archive), so a record made in one is a record of both."""
    pvc = kube.get("pvc", "records", source)
    pv = kube.get("pv", pvc["spec"]["volumeName"])
    source_spec = {k: pv["spec"][k] for k in ("hostPath", "local", "nodeAffinity") if k in pv["spec"]}
    volume = shared_store_volume(namespace)
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                **source_spec,
                "capacity": pv["spec"]["capacity"],
                "accessModes": pv["spec"]["accessModes"],
                "persistentVolumeReclaimPolicy": "Retain",  # the directory is the source's
                "storageClassName": "",
                "claimRef": {"namespace": namespace, "name": "records"},
            },
        }
    )
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "records", "namespace": namespace},
            "spec": {
                "accessModes": pv["spec"]["accessModes"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": pv["spec"]["capacity"]["storage"]}},
            },
        }
    )


def delete_project(name: str) -> None:
    kube.kubectl("delete", "project", name, "--wait=false", check=False)
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
    kube.kubectl("delete", "pv", shared_store_volume(name), "--wait=false", "--ignore-not-found", check=False)


@contextmanager
def record_project(prefix: str = "rec", store_of: str | None = None) -> Iterator[str]:
    """`create_project`, deleted after."""
    name = create_project(prefix, store_of)
    try:
        yield name
    finally:
        delete_project(name)


def create_as_contributor(body: dict[str, Any], namespace: str) -> None:
    created = as_user(
        CONTRIBUTOR, "create", "-n", namespace, "-f", "-", group=CONTRIBUTORS, input=json.dumps(body)
    )
    assert created.returncode == 0, created.stderr


def pass_review(namespace: str, name: str, comment: str = "checked", timeout: float = 240) -> dict:
    """Wait for the reviewed run to await review, pass it as the admin, and wait for it to
    finish; returns the finished run (its Succeeded condition checked by the caller)."""
    runs = runs_module

    def awaiting():
        obj = kube.get("pipelinerun", name, namespace)
        if runs.succeeded_condition(obj).get("status") == "False":
            raise AssertionError(runs.run_diagnostics(namespace, name))
        return obj["status"].get("phase") == "AwaitingReview"

    kube.eventually(awaiting, timeout=timeout, interval=1, what=f"{name} AwaitingReview")
    patch = json.dumps({"spec": {"review": {"decision": "Pass", "comment": comment}}})
    decided = kube.eventually(
        lambda: (
            as_user(
                ADMIN, "patch", "pipelinerun", name, "-n", namespace, "--type=merge", "-p", patch
            ).returncode
            == 0
        ),
        timeout=30,
        interval=1,
        what="the admin's decision accepted",
    )
    assert decided
    return runs.wait_for_run_to_finish(namespace, name, timeout=180)
