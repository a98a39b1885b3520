"""A Project with a record store and its users, for the e2e tests of records and of work in
progress (moved here from tests/e2e/test_records.py): the users (by impersonation), `kubectl
mmif` as one of them, and the Project itself."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests import kube
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


def create_project(prefix: str = "rec") -> str:
    """A Project with a record store (claim `records`), Ready; its namespace holds a workspace
    (`media`, with its volume pod) and the store. Its name (= its namespace)."""
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

    kube.eventually(ready, timeout=60, what=f"project {name} Ready")
    for claim in ("media", "records"):
        pvc = sample("workspace-pvc.yaml")
        pvc["metadata"]["name"] = claim
        pvc["spec"]["resources"]["requests"]["storage"] = "1Gi"
        apply(pvc, name)
    ensure_volume_pod(name, "media")  # the store is read through kubectl mmif (read-only) only
    return name


def delete_project(name: str) -> None:
    kube.kubectl("delete", "project", name, "--wait=false", check=False)
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
