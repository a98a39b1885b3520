"""What a runner pod reads besides its environment: a ConfigMap, mounted read-only.

Large values never travel in an environment variable (Linux refuses to start a process with one
environment string over 128 KiB; 1,000 items of 6 documents are 573 KB): a run's inline items
(`<run>-items-<uid[:8]>`, read by the prepare Job) and the final item states
(`<run>-states-<uid[:8]>`, read by the manifest Job; `<analysis>-astates-<uid[:8]>` for an
AnalysisJob's) go into a ConfigMap owned by the run or AnalysisJob (controller ownerReference,
the standard labels), as one key of `binaryData`: the zlib-compressed JSON
`{"owner": <owner uid>, ...}`. The UID in the name keeps a new run apart from the leftovers of a
deleted one of the same name; the runner checks the owner UID, so a ConfigMap of that name made
by someone else is never read as this run's (runner/inputs.py): the run fails, saying so.

A ConfigMap holds at most 1 MiB (`MAX_CONFIGMAP_BYTES`, the API server's bound on its data);
what does not fit fails the run with `PrepareFailed` and says so.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from mmif_operator.runner.inputs import encode  # noqa: F401 - the payload's one definition

#: where the ConfigMap is mounted in the runner container (read-only)
MOUNT_PATH = "/etc/mmif-runner"
VOLUME = "runner-input"
ITEMS_KEY = "items.json.z"
STATES_KEY = "item-states.json.z"
#: the API server refuses a ConfigMap whose data and binaryData hold more than 1 MiB
MAX_CONFIGMAP_BYTES = 1024 * 1024


class TooLarge(ValueError):
    """The value does not fit in a ConfigMap; the message says by how much."""


def config_map(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner_reference: Mapping[str, Any],
    key: str,
    payload: bytes,
    what: str,
) -> dict[str, Any]:
    """A ConfigMap dict holding `payload` under `key` (TooLarge when it cannot hold it)."""
    if len(payload) > MAX_CONFIGMAP_BYTES:
        raise TooLarge(
            f"{what} take {len(payload)} bytes compressed, more than the {MAX_CONFIGMAP_BYTES} "
            f"bytes (1 MiB) a ConfigMap holds"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [dict(owner_reference)],
        },
        "immutable": True,
        "binaryData": {key: base64.b64encode(payload).decode("ascii")},
    }


def mount(pod_spec: dict[str, Any], container: dict[str, Any], config_map_name: str, key: str) -> str:
    """Mount `key` of the ConfigMap read-only into `container`; the file's path in the pod."""
    # The whole ConfigMap, not `items`: a ConfigMap of that name without the key (not ours) is
    # then a missing file the runner reports, not a volume the kubelet cannot mount.
    pod_spec.setdefault("volumes", []).append({"name": VOLUME, "configMap": {"name": config_map_name}})
    container.setdefault("volumeMounts", []).append(
        {"name": VOLUME, "mountPath": MOUNT_PATH, "readOnly": True}
    )
    return f"{MOUNT_PATH}/{key}"
