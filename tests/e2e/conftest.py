"""Fixtures of the operator's end-to-end tests, on the real cluster, through kubectl:

- `operator_deployed` (session): `make deploy` (CRDs, the operator, its rollout); left running.
- `workspace`: an RWX volume in the test's namespace, made from config/samples/workspace-pvc.yaml,
  with `write_media({...})` and `read_file(path)` going through a pod that mounts it.
- `build`: Pipeline / PipelineRun dicts made from config/samples/ with the test-app images.
- `runs`: wait for a run to finish (without waiting out the timeout when it failed), and the
  diagnostics to print when a run did not do what a test expected.
"""

from __future__ import annotations

import copy
import io
import json
import os
import posixpath
import subprocess
import tarfile
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import kube

REPO = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO / "config" / "samples"
LOCAL_KUBECONFIG = "/var/lib/mmif-cluster/admin.kubeconfig"
OPERATOR_NS = "mmif-system"
OPERATOR_DEPLOYMENT = "mmif-operator"
VOLUME_POD_IMAGE = "mmif.local/debian-python:bookworm"
MOUNT_PATH = "/data"

# The test apps (tests/apps/): image and the identifier that signs their views.
APPS = ("textgen", "timeframes", "sleeper", "failer", "spy", "bigmouth", "flaky")


def app_image(app: str) -> str:
    return f"mmif.local/clams-{app}:dev"


def app_identifier(app: str) -> str:
    return f"http://apps.mmif.dev/{app}/v1"


def apply(obj: dict | list[dict], namespace: str) -> None:
    """`kubectl apply` of objects sent as JSON (kubectl reads YAML 1.1: an unquoted `y` is a bool)."""
    body = {"apiVersion": "v1", "kind": "List", "items": obj} if isinstance(obj, list) else obj
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


# --- the operator -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def operator_deployed(cluster):
    """The operator, installed with `make deploy` (on the local cluster after `make images`, so the
    images hold this checkout's code; set MMIF_E2E_BUILD=0 to skip that). Left running afterwards."""
    targets = ["deploy"]
    local = os.path.realpath(os.environ["KUBECONFIG"]) == os.path.realpath(LOCAL_KUBECONFIG)
    if local and os.environ.get("MMIF_E2E_BUILD", "1") != "0":
        targets.insert(0, "images")
    proc = subprocess.run(
        ["make", "--no-print-directory", *targets], cwd=REPO, capture_output=True, text=True, timeout=1200
    )
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).splitlines()
        pytest.fail(
            f"`make {' '.join(targets)}` failed ({proc.returncode}):\n" + "\n".join(out[-40:]), pytrace=False
        )
    return types.SimpleNamespace(namespace=OPERATOR_NS, deployment=OPERATOR_DEPLOYMENT)


def operator_logs(tail: int = 60) -> str:
    proc = kube.kubectl(
        "logs", f"deployment/{OPERATOR_DEPLOYMENT}", "-n", OPERATOR_NS, f"--tail={tail}", check=False
    )
    return proc.stdout + proc.stderr


# --- the volume ---------------------------------------------------------------------------------


def sample(file_name: str) -> dict[str, Any]:
    """One object of config/samples/ (a fresh copy)."""
    return yaml.safe_load((SAMPLES_DIR / file_name).read_text())


def _volume_pod(claim_name: str) -> str:
    return f"volume-{claim_name}"[:63]


def ensure_volume_pod(namespace: str, claim_name: str = "media") -> str:
    """A pod that keeps the claim mounted at /data, for copying files in and out (as uid 65532,
    the runner's user, so the runner can write next to what the tests wrote)."""
    name = _volume_pod(claim_name)
    if kube.kubectl("get", "pod", name, "-n", namespace, "--ignore-not-found", "-o", "name").stdout.strip():
        return name
    apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "volume-access"}},
            "spec": {
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 0,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "shell",
                        "image": VOLUME_POD_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", "infinity"],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "data", "mountPath": MOUNT_PATH}],
                    }
                ],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
            },
        },
        namespace,
    )
    kube.wait(f"pod/{name}", "condition=Ready", namespace, timeout=120)
    return name


def _volume_path(path: str) -> str:
    """`path` relative to the volume's root; absolute paths as pods see them (/data/...) work too."""
    rel = path[len(MOUNT_PATH) + 1 :] if path.startswith(MOUNT_PATH + "/") else path
    norm = posixpath.normpath(rel)
    if rel.startswith("/") or norm == ".." or norm.startswith("../"):
        raise ValueError(f"{path!r} is not a path on the volume")
    return norm


def write_media(namespace: str, files: dict[str, bytes | str], claim_name: str = "media") -> None:
    """Write `files` (path relative to the volume -> content) onto the claim, through a pod."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(_volume_path(path))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    pod = ensure_volume_pod(namespace, claim_name)
    proc = subprocess.run(
        [
            "kubectl",
            "exec",
            "-i",
            pod,
            "-n",
            namespace,
            "--",
            "tar",
            "-x",
            "--no-same-owner",
            "-C",
            MOUNT_PATH,
            "-f",
            "-",
        ],
        input=buf.getvalue(),
        capture_output=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"writing {sorted(files)} failed: {proc.stderr.decode(errors='replace')}")


def read_file(namespace: str, path: str, claim_name: str = "media") -> bytes:
    """The bytes of a file on the claim (path relative to the volume, or as pods see it: /data/...)."""
    pod = ensure_volume_pod(namespace, claim_name)
    full = posixpath.join(MOUNT_PATH, _volume_path(path))
    proc = subprocess.run(
        ["kubectl", "exec", pod, "-n", namespace, "--", "cat", full], capture_output=True, timeout=120
    )
    if proc.returncode != 0:
        raise FileNotFoundError(f"{full}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def list_files(namespace: str, path: str = ".", claim_name: str = "media") -> list[str]:
    """Every file under `path` on the claim, relative to the volume's root, sorted."""
    pod = ensure_volume_pod(namespace, claim_name)
    root = posixpath.join(MOUNT_PATH, _volume_path(path))
    proc = kube.kubectl("exec", pod, "-n", namespace, "--", "find", root, "-type", "f", check=False)
    return sorted(posixpath.relpath(p, MOUNT_PATH) for p in proc.stdout.split())


class Workspace:
    """An RWX claim in a test's namespace, and its files."""

    def __init__(self, namespace: str, claim_name: str):
        self.namespace, self.claim_name, self.mount_path = namespace, claim_name, MOUNT_PATH

    def write_media(self, files: dict[str, bytes | str]) -> None:
        write_media(self.namespace, files, self.claim_name)

    def read_file(self, path: str) -> bytes:
        return read_file(self.namespace, path, self.claim_name)

    def list_files(self, path: str = ".") -> list[str]:
        return list_files(self.namespace, path, self.claim_name)


@pytest.fixture
def workspace(namespace) -> Workspace:
    """config/samples/workspace-pvc.yaml (1Gi) in the test's namespace, mounted by a helper pod."""
    pvc = sample("workspace-pvc.yaml")
    pvc["spec"]["resources"]["requests"]["storage"] = "1Gi"
    apply(pvc, namespace)
    claim = pvc["metadata"]["name"]
    ensure_volume_pod(namespace, claim)
    kube.wait(f"pvc/{claim}", "jsonpath={.status.phase}=Bound", namespace, timeout=60)
    return Workspace(namespace, claim)


# --- Pipelines and PipelineRuns -----------------------------------------------------------------


def step(name: str, app: str, mode: str = "Job", **fields: Any) -> dict[str, Any]:
    """A step running the test app `app` (one gunicorn worker, as tests/apps/README.md advises)."""
    body = {
        "name": name,
        "image": app_image(app),
        "mode": mode,
        "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}],
    }
    body.update(fields)
    return body


def pipeline(name: str, steps: list[dict], claim_name: str = "media", **spec: Any) -> dict[str, Any]:
    """config/samples/pipeline.yaml with another name and steps."""
    obj = sample("pipeline.yaml")
    obj["metadata"] = {"name": name}
    obj["spec"]["steps"] = copy.deepcopy(steps)
    obj["spec"]["workspace"]["claimName"] = claim_name
    obj["spec"].update(spec)
    return obj


def item(*locations: str, name: str | None = None, mime_type: str = "video/mp4") -> dict[str, Any]:
    body: dict[str, Any] = {"documents": [{"location": loc, "mimeType": mime_type} for loc in locations]}
    if name is not None:
        body["name"] = name
    return body


def pipeline_run(
    name: str, pipeline_name: str, items: list[dict], claim_name: str = "media", **spec: Any
) -> dict[str, Any]:
    """config/samples/pipelinerun.yaml for another pipeline and batch (no params unless given)."""
    obj = sample("pipelinerun.yaml")
    obj["metadata"] = {"name": name}
    obj["spec"].pop("params", None)
    obj["spec"].update(pipelineRef={"name": pipeline_name}, items=copy.deepcopy(items))
    obj["spec"]["workspace"]["claimName"] = claim_name
    obj["spec"].update(spec)
    return obj


@pytest.fixture(scope="session")
def build():
    """The builders, for tests: `build.pipeline(...)`, `build.step(...)`, `build.run(...)`, ..."""
    return types.SimpleNamespace(
        step=step,
        pipeline=pipeline,
        item=item,
        run=pipeline_run,
        app_image=app_image,
        app_identifier=app_identifier,
        apply=apply,
    )


# --- waiting and diagnostics --------------------------------------------------------------------


def succeeded_condition(run: dict) -> dict:
    conditions = (run.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Succeeded"), {})


def wait_for_run_to_finish(namespace: str, name: str, timeout: float = 300) -> dict:
    """Poll until the run's Succeeded condition is True or False (a failed run is not waited on to
    the end of `timeout`); return the run. Raises AssertionError with diagnostics on timeout."""

    def finished():
        run = kube.get("pipelinerun", name, namespace)
        return run if succeeded_condition(run).get("status") in ("True", "False") else None

    try:
        return kube.eventually(finished, timeout=timeout, interval=2, what=f"pipelinerun/{name} to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run_diagnostics(namespace, name)}") from None


def run_diagnostics(namespace: str, name: str) -> str:
    """The run's status, the namespace's Jobs, Pods and Events, and the operator's latest logs."""
    parts = []
    for title, args in [
        ("run status", ["get", "pipelinerun", name, "-n", namespace, "-o", "jsonpath={.status}"]),
        ("pipelines", ["get", "pipelines", "-n", namespace, "-o", "wide"]),
        ("jobs, pods, deployments", ["get", "jobs,pods,deployments,services", "-n", namespace, "-o", "wide"]),
        ("events", ["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"]),
        ("operator pods", ["get", "pods", "-n", OPERATOR_NS, "-o", "wide"]),
    ]:
        proc = kube.kubectl(*args, check=False)
        parts.append(f"--- {title}:\n{(proc.stdout + proc.stderr).strip()[-4000:]}")
    parts.append(f"--- operator logs:\n{operator_logs()[-6000:]}")
    return "\n".join(parts)


@pytest.fixture(scope="session")
def runs():
    """Run helpers, for tests: `runs.wait_to_finish(ns, name)`, `runs.condition(run)`,
    `runs.diagnostics(ns, name)`, `runs.operator_logs()`."""
    return types.SimpleNamespace(
        wait_to_finish=wait_for_run_to_finish,
        condition=succeeded_condition,
        diagnostics=run_diagnostics,
        operator_logs=operator_logs,
    )
