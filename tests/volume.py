"""The test volume: an RWX claim in a test's namespace, and its files, read and written
through a pod that mounts it (as uid 65532, the runner's user)."""

from __future__ import annotations

import io
import posixpath
import subprocess
import tarfile
import time

from tests import kube
from tests.objects import apply

VOLUME_POD_IMAGE = "mmif.local/debian-python:bookworm"
MOUNT_PATH = "/data"


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
