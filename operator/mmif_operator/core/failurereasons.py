"""Why items failed when no pod wrote it down, shared by the operator and the runner.

An item's step usually fails inside its pod, and the runner's result record on the volume says
why; the manifest reads it. Some failures happen before any pod runs: the pod could not start
(an image that cannot be pulled, an unschedulable pod, a refused Pod Security level) or the Job
could not be created. The operator decides those, so it keeps them in the owner's status, small
and bounded, for the manifest Job to write:

* `failureReasons`: at most `MAX_REASONS` distinct entries `{step, reason, message}` (one per
  step and reason: the first message seen, e.g. the kubelet's);
* `itemFailureReasons`: one byte per item, zlib-compressed and base64-encoded as `itemStates`:
  0 = none, n = `failureReasons[n - 1]`.

The manifest Job gets both in `MMIF_FAILURE_REASONS` (JSON) and prefers them over a result
record (which may be an earlier attempt's) for the item's failed step.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from typing import Any

MAX_REASONS = 64


def encode(codes: list[int]) -> str:
    return base64.b64encode(zlib.compress(bytes(codes), 9)).decode("ascii")


def decode(text: str | None, count: int) -> list[int]:
    if not text:
        return [0] * count
    codes = list(zlib.decompress(base64.b64decode(text)))
    if len(codes) != count:
        raise ValueError(f"itemFailureReasons holds {len(codes)} items, expected {count}")
    return codes


def record(
    reasons: list[dict[str, Any]], codes: list[int], index: int, step: str | None, reason: str, message: str
) -> None:
    """Remember why item `index` failed (in place). An item keeps its first such failure; a
    reason table that is full records nothing more (the manifest then says what the records
    say)."""
    if not 0 <= index < len(codes) or codes[index]:
        return
    for n, entry in enumerate(reasons, start=1):
        if entry.get("step") == step and entry.get("reason") == reason:
            codes[index] = n
            return
    if len(reasons) >= MAX_REASONS:
        return
    entry = {"reason": reason, "message": message}
    if step is not None:
        entry = {"step": step, **entry}
    reasons.append(entry)
    codes[index] = len(reasons)


def payload(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the manifest Job gets (in its item-states ConfigMap, beside the item states) to tell
    why items failed where no pod wrote it, from the owner's status (None: nothing)."""
    if not status.get("failureReasons") or not status.get("itemFailureReasons"):
        return None
    return {"reasons": status["failureReasons"], "items": status["itemFailureReasons"]}


def lookup(data: Mapping[str, Any] | None, count: int) -> list[dict[str, Any] | None]:
    """Per item, its failure reason entry (`{step, reason, message}`) or None, from `payload`."""
    if not data:
        return [None] * count
    reasons = data.get("reasons") or []
    return [reasons[c - 1] if 0 < c <= len(reasons) else None for c in decode(data.get("items"), count)]
