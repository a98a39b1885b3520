"""What the pages draw, from a PipelineRun's or a Pipeline's status. Pure: objects in, dicts out
(JSON for the browser, which renders them as they are).

A bar is `done` of `total` with `percent` (floored: 100 only when every item is done). The overall
bar counts a run's items done (succeeded, failed or cancelled) of `status.itemCount`; a step's bar
counts the items that passed or failed it of the items that reach it (`status.steps[]`: pending +
running + succeeded + failed; an item stopped at an earlier step never reaches it).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from mmif_operator.core import failurereasons, itemstates
from mmif_operator.core.itemstates import ItemPhase
from mmif_operator.kinds.pipelinerun.planning import decode_failed_steps

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})


def percent(done: int, total: int, finished: bool = False) -> int:
    """`done` of `total` in whole percent, floored so that 100 means all done. Nothing to do: 100
    once `finished`, else 0."""
    if total <= 0:
        return 100 if finished else 0
    done = max(0, min(done, total))
    return 100 if done == total else done * 100 // total


def _condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return {k: c.get(k) for k in ("status", "reason", "message")}
    return {}


def step_bars(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    finished = status.get("phase") in TERMINAL_PHASES
    bars = []
    for s in status.get("steps") or ():
        counts = {k: int(s.get(k) or 0) for k in ("pending", "running", "succeeded", "failed")}
        total = sum(counts.values())
        done = counts["succeeded"] + counts["failed"]
        bars.append(
            {
                "name": s.get("name", ""),
                **counts,
                "done": done,
                "total": total,
                "percent": percent(done, total, finished),
            }
        )
    return bars


def overall_bar(status: Mapping[str, Any]) -> dict[str, Any]:
    finished = status.get("phase") in TERMINAL_PHASES
    succeeded = int(status.get("itemsSucceeded") or 0)
    failed = int(status.get("itemsFailed") or 0)
    cancelled = int(status.get("itemsCancelled") or 0)
    total = int(status.get("itemCount") or 0)
    done = succeeded + failed + cancelled
    return {
        "succeeded": succeeded,
        "failed": failed,
        "cancelled": cancelled,
        "done": done,
        "total": total,
        "percent": percent(done, total, finished),
    }


def review(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The review as a page shows it: required or not, the decision (status first, then the one
    set in spec and not yet acted on), who and when."""
    status = obj.get("status") or {}
    required = bool(((status.get("pipelineSpec") or {}).get("review") or {}).get("required"))
    decided = {**((obj.get("spec") or {}).get("review") or {}), **(status.get("review") or {})}
    keys = ("decision", "comment", "reviewer", "decidedAt", "requestedAt", "deadline")
    return {"required": required, **{k: decided.get(k) for k in keys}}


def run_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One run as the runs page lists it."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
        "created": meta.get("creationTimestamp"),
        "pipeline": (spec.get("pipelineRef") or {}).get("name"),
        "phase": status.get("phase") or "Pending",
        "stage": status.get("stage"),
        "succeeded": _condition(status, "Succeeded"),
        "startTime": status.get("startTime"),
        "completionTime": status.get("completionTime"),
        "overall": overall_bar(status),
        "steps": step_bars(status),
        "review": review(obj),
    }


# --- the item table -----------------------------------------------------------------------------


def item_label(spec: Mapping[str, Any], index: int) -> str:
    """An item's name in the table: its `name`, else its first document or MMIF path; items of
    `itemsFrom` are known by position only (the manifest names them)."""
    items = spec.get("items") or []
    if index < len(items):
        item = items[index] or {}
        if item.get("name"):
            return str(item["name"])
        docs = item.get("documents") or []
        if docs:
            return str(docs[0].get("location", f"#{index}"))
        if item.get("mmif"):
            return str(item["mmif"])
    return f"#{index}"


def item_rows(obj: Mapping[str, Any], limit: int) -> tuple[list[dict[str, Any]], str]:
    """The first `limit` items of a run: position, name, state, step, reason, message; and a note
    (why the table is short or empty, else "")."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    count = status.get("itemCount")
    if count is None:
        return [], "The items are listed once the run is prepared."
    step_names = [s.get("name", "") for s in status.get("steps") or ()] or [
        s.get("name", "") for s in (status.get("pipelineSpec") or {}).get("steps") or ()
    ]
    try:
        states = itemstates.decode(status.get("itemStates"), count)
        masks = decode_failed_steps(status.get("itemFailedSteps"), count)
        reasons = failurereasons.lookup(failurereasons.payload(status), count)
    except (ValueError, zlib.error) as exc:
        return [], f"The item states in status cannot be read: {exc}"
    latest: dict[int, Mapping[str, Any]] = {}
    for f in status.get("failures") or ():  # oldest first: the latest failure of an item wins
        latest[int(f.get("index", -1))] = f

    def step_name(k: int) -> str | None:
        return step_names[k] if 0 <= k < len(step_names) else None

    rows = []
    for i, (st, mask) in enumerate(zip(states[:limit], masks[:limit], strict=True)):
        failed_steps = [n for k, n in enumerate(step_names) if mask >> k & 1]
        row: dict[str, Any] = {
            "index": i,
            "item": item_label(spec, i),
            "state": st.phase.name.capitalize(),
            "step": None,
            "reason": None,
            "message": None,
        }
        if st.phase is ItemPhase.RUNNING:
            row["step"] = step_name(st.step)
        elif st.phase in (ItemPhase.FAILED, ItemPhase.CANCELLED):
            row["step"] = failed_steps[0] if failed_steps else step_name(st.step)
        failure = latest.get(i)
        entry = reasons[i]
        if failure is not None:
            row.update(
                step=failure.get("step") or row["step"],
                reason=failure.get("reason"),
                message=failure.get("message"),
            )
        elif entry is not None:
            row.update(
                step=entry.get("step") or row["step"],
                reason=entry.get("reason"),
                message=entry.get("message"),
            )
        elif st.phase is ItemPhase.FAILED:
            row["message"] = "See the run's manifest for this item's failure (status keeps the latest ones)."
        rows.append(row)
    note = (
        f"Showing the first {limit} of {count} items; the manifest lists them all." if count > limit else ""
    )
    return rows, note


def run_detail(obj: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """One run as its page shows it: the summary, the item table, conditions and history."""
    status = obj.get("status") or {}
    rows, note = item_rows(obj, limit)
    return {
        **run_summary(obj),
        "items": rows,
        "itemsNote": note,
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime")}
            for c in status.get("conditions") or ()
        ],
        "history": list(status.get("history") or ()),
        "outputPath": status.get("outputPath"),
        "manifestPath": status.get("manifestPath"),
        "requester": ((obj.get("spec") or {}).get("requester") or {}).get("username"),
    }


# --- Pipelines ----------------------------------------------------------------------------------


def pipeline_summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A Pipeline as the pipelines page shows it: Ready / Reconciling / Stalled and each step's
    readiness (in spec order; a step the operator has not reported yet is not ready)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    observed = {s.get("name"): s for s in status.get("steps") or ()}
    steps = []
    for s in spec.get("steps") or ():
        seen = observed.get(s.get("name")) or {}
        seen_alternatives = {a.get("name"): a for a in seen.get("alternatives") or ()}
        steps.append(
            {
                "name": s.get("name"),
                "mode": seen.get("mode") or s.get("mode") or "Job",
                "image": s.get("image"),
                "url": seen.get("url") or s.get("url"),
                "ready": bool(seen.get("ready")),
                "replicas": seen.get("replicas"),
                "readyReplicas": seen.get("readyReplicas"),
                # The other apps that may serve the step (chosen per item by the Monitors).
                "alternatives": [
                    {
                        "name": a.get("name"),
                        "mode": a.get("mode") or "Job",
                        "image": a.get("image"),
                        "url": a.get("url"),
                        "ready": bool((seen_alternatives.get(a.get("name")) or {}).get("ready")),
                    }
                    for a in s.get("alternatives") or ()
                ],
            }
        )
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "generation": meta.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "ready": _condition(status, "Ready"),
        "reconciling": _condition(status, "Reconciling"),
        "stalled": _condition(status, "Stalled"),
        "reviewRequired": bool((spec.get("review") or {}).get("required")),
        "steps": steps,
    }
