"""Where an app's pods run: its `nodeSelector` and `tolerations` on a pod spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmif_operator.kinds.pipeline.app import App


def place_pod(pod_spec: dict[str, Any], step: App) -> None:
    """Put the step's `nodeSelector` and `tolerations` on `pod_spec`: every item's pod at the
    step (whatever its mode) and, in Service mode, the app's replicas. The prepare and manifest
    pods of a run never get them. Tolerations as the user wrote them (no model default added:
    a field the live object lacks would read as drift)."""
    if step.node_selector:
        pod_spec["nodeSelector"] = dict(step.node_selector)
    if step.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_unset=True, exclude_none=True, mode="json")
            for t in step.tolerations
        ]
