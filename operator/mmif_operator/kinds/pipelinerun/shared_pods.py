"""Which consecutive steps of a pipeline share one pod per item (`Step.ownPod`, docs/design.md).

A step's app runs outside the item's pod in Service mode, at a `url` or in a warm Job-mode
step's pool (pools.py): the item's pod only runs the runner, which POSTs the MMIF. Consecutive such steps that would be placed alike and retried
alike gain nothing from pods of their own, and each pod costs the cluster about fifteen writes
(the Job, its pod, their status, events, deletes). So they share one: the runner calls each app
in turn. Every decision of that lives here, as pure functions of the pipeline's steps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mmif_operator.kinds.pipeline.app import StepMode
from mmif_operator.kinds.pipeline.model import Step


def shares_pod(step: Step) -> bool:
    """Whether the step may share an item's pod with its neighbours: its app runs outside the
    pod (Service mode, `url`, or a warm Job-mode step's pool), it has no alternatives (each
    item's app is chosen when it is launched) and it does not ask for a pod of its own."""
    outside = step.mode is StepMode.SERVICE or (step.mode is StepMode.JOB and step.warm)
    return outside and not step.alternatives and not step.own_pod


def _pod_key(step: Step) -> str:
    """What two neighbours must have alike to share a pod: where it is placed and how it is
    retried and bounded."""
    return json.dumps(
        {
            "nodeSelector": dict(step.node_selector),
            "tolerations": [t.model_dump(mode="json", exclude_none=True) for t in step.tolerations],
            "retries": step.retries,
            "deadline": step.timeout_seconds is not None,
        },
        sort_keys=True,
    )


def pod_spans(steps: Sequence[Step]) -> tuple[int, ...]:
    """For each step index k: the last step the item's pod started at k runs (k itself when
    the step has a pod of its own). A pod started inside a run of shared steps (an item that
    went on after a failed step) runs to the end of that run."""
    n = len(steps)
    last = list(range(n))
    for k in range(n - 2, -1, -1):
        a, b = steps[k], steps[k + 1]
        if shares_pod(a) and shares_pod(b) and _pod_key(a) == _pod_key(b):
            last[k] = last[k + 1]
    return tuple(last)


def span_deadline(steps: Sequence[Step]) -> int | None:
    """The deadline of a pod running `steps`: the sum of their `timeoutSeconds` (None when they
    have none: steps share a pod only when all of them set one or none does)."""
    timeouts = [s.timeout_seconds for s in steps]
    if not timeouts or any(t is None for t in timeouts):
        return None
    return sum(t for t in timeouts if t is not None)


def failed_step(first: int, last: int, step_names: Sequence[str], message: dict[str, Any]) -> int:
    """The step at which a pod running steps `first`..`last` failed: the one its runner named
    (termination message `step`), else the first (nothing ran, or the pod could not start)."""
    named = message.get("step")
    for k in range(first, last + 1):
        if k < len(step_names) and step_names[k] == named:
            return k
    return first
