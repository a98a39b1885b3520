"""The reader pod's body and answer, shared by the `kubectl mmif` plugin (cli/reader.py) and the
web console's MMIF viewer (console/viewer.py): a pod that runs `mmif-runner show ...`
(results/show.py) from the operator's image with a run's claim mounted read-only, hardened like
the step pods (no service account token, non-root 65532, no privilege escalation, every
capability dropped, seccomp RuntimeDefault, read-only root), bounded by activeDeadlineSeconds,
labelled. Whoever creates it (with their own identity) deletes it after use. All pure."""

from __future__ import annotations

import json
import os
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core import security
from mmif_operator.kinds.pipelinerun.children import run_output_path
from mmif_operator.kinds.pipelinerun.model import RunWorkspace
from mmif_operator.results.show import MARKER


class ReaderError(Exception):
    """The reader pod gave no answer, or an answer that is an error: the message says which."""


DEFAULT_IMAGE = "mmif.local/mmif-operator:dev"
IMAGE_ENV = "MMIF_READER_IMAGE"  # another operator image (same version as the cluster's operator)
DEADLINE_SECONDS = 120  # the pod's activeDeadlineSeconds, and how long the plugin waits for it
COMPONENT_READER = "reader"
NAME_READER = "kubectl-mmif"
READS_RUN = "mmif.dev/reads-run"  # not `mmif.dev/run`: the operator's selectors must never see it
# Waiting reasons that will not heal within the deadline: report them at once.
STUCK = (
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
)


def run_location(run: dict[str, Any]) -> tuple[str, str, str]:
    """(claim, mount path, run folder as pods see it) of a PipelineRun object."""
    workspace = RunWorkspace.from_obj((run.get("spec") or {}).get("workspace"))
    name = run["metadata"]["name"]
    folder = (run.get("status") or {}).get("outputPath") or run_output_path(name, workspace)
    return workspace.claim_name, workspace.mount_path, folder


def run_steps(run: dict[str, Any]) -> list[str]:
    """The run's step names, from its Pipeline snapshot (empty before it took one)."""
    snapshot = (run.get("status") or {}).get("pipelineSpec") or {}
    return [s["name"] for s in snapshot.get("steps") or [] if s.get("name")]


def reader_pod(run: dict[str, Any], args: list[str], image: str | None = None) -> dict[str, Any]:
    """The reader pod for `mmif-runner show ARGS` over run `run`'s folder."""
    claim, mount, _ = run_location(run)
    return volume_reader_pod(claim, mount, run["metadata"]["name"], args, image)


def volume_reader_pod(
    claim: str, mount: str, instance: str, args: list[str], image: str | None = None
) -> dict[str, Any]:
    """A reader pod for `mmif-runner show ARGS`, with `claim` mounted read-only at `mount`
    (`instance`: what it reads, a run's name or the record store's claim, for its labels)."""
    labels = L.common_labels(COMPONENT_READER, name=NAME_READER, instance=instance)
    labels[L.MANAGED_BY] = NAME_READER
    labels[READS_RUN] = L.label_value(instance)
    container = {
        "name": "reader",
        "image": image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["mmif-runner", "show", *args],
        "env": [{"name": "PYTHONWARNINGS", "value": "ignore"}],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "securityContext": security.runner_security_context(),
        "volumeMounts": [
            {"name": "workspace", "mountPath": mount, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": DEADLINE_SECONDS,
        "terminationGracePeriodSeconds": 0,
        "containers": [container],
        "volumes": [
            {"name": "workspace", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    security.secure_pod_spec(spec)
    spec["securityContext"].update(
        {"runAsNonRoot": True, "runAsUser": security.RUNNER_UID, "runAsGroup": security.RUNNER_GID}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": f"{instance[:40]}-reader-", "labels": labels},
        "spec": spec,
    }


def show_args(run: dict[str, Any], what: str, item: str | None = None) -> list[str]:
    """The arguments of `mmif-runner show WHAT` over run `run`'s folder (one item when named)."""
    _, _, folder = run_location(run)
    args = [what, "--run-dir", folder, "--steps", ",".join(run_steps(run))]
    return args + (["--item", item] if item is not None else [])


def stuck(waiting: list[tuple[str | None, str | None]]) -> str | None:
    """Why the pod cannot start, from its containers' waiting (reason, message), or None."""
    for reason, message in waiting:
        if reason in STUCK:
            return f"{reason}: {message or ''}".strip()
    return None


def parse_answer(log: str) -> dict[str, Any]:
    """The JSON answer in the reader pod's log (the line after MARKER)."""
    for line in reversed(log.splitlines()):
        if line.startswith(MARKER):
            try:
                answer = json.loads(line[len(MARKER) :])
            except ValueError:
                raise ReaderError(
                    "the reader's answer is cut short: it is larger than the kubelet keeps of a pod's "
                    "log (containerLogMaxSize, 10 MiB by default)"
                ) from None
            if not answer.get("ok"):
                raise ReaderError(str(answer.get("error") or "the reader found nothing"))
            return answer["result"]
    tail = "\n".join(log.splitlines()[-5:])
    raise ReaderError(f"the reader pod printed no answer; its log ends with:\n{tail}")
