"""Where an app's pods run: its `nodeSelector` and `tolerations` on a pod spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def place_pod(pod_spec: dict[str, Any], step: Mapping[str, Any]) -> None:
    """Put the step's `nodeSelector` and `tolerations` on `pod_spec`: every item's pod at the
    step (whatever its mode) and, in Service mode, the app's replicas. The prepare and manifest
    pods of a run never get them."""
    if step.get("nodeSelector"):
        pod_spec["nodeSelector"] = dict(step["nodeSelector"])
    if step.get("tolerations"):
        pod_spec["tolerations"] = [dict(t) for t in step["tolerations"]]
