"""`mmif-runner manifest`: `<run dir>/manifest.json`, every item's outcome, from the item states the
operator passes (status.itemStates) and the step result records on the volume."""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping
from typing import Any

from mmif_operator.core import failurereasons, itemstates
from mmif_operator.core.itemstates import ItemPhase
from mmif_operator.runner import claims, files
from mmif_operator.runner.exitcodes import ExitCode, Reason
from mmif_operator.runner.items import Item, read_items
from mmif_operator.runner.paths import RUN_UID_FILE, RunLayout

log = logging.getLogger("mmif-runner")

STATE_NAMES = {
    ItemPhase.PENDING: "Pending",
    ItemPhase.RUNNING: "Running",  # should not happen once a run is finished
    ItemPhase.SUCCEEDED: "Succeeded",
    ItemPhase.FAILED: "Failed",
    ItemPhase.CANCELLED: "Cancelled",
}


def item_entry(
    layout: RunLayout,
    item: Item,
    state: itemstates.ItemState,
    steps: list[str],
    unwritten: dict | None = None,
) -> dict:
    """One item's manifest entry; `unwritten`: why it failed when no pod wrote it (the operator's
    `failureReasons` entry), which wins over the step's record (an earlier attempt's)."""
    records = [files.read_json(layout.step_record(item.index, k, s)) for k, s in enumerate(steps)]
    records = [r if isinstance(r, dict) else None for r in records]
    name = STATE_NAMES[state.phase]
    entry: dict = {
        "index": item.index,
        "name": item.name,
        "state": name,
        "failedStep": None,
        "reason": None,
        "message": None,
        "output": None,
        "sha256": None,
        "finishedAt": None,
    }
    served = [
        {"step": s, **r["servedBy"]}
        for s, r in zip(steps, records, strict=True)
        if r is not None and isinstance(r.get("servedBy"), dict)
    ]
    if served:  # a step with alternatives: which app served the item there
        entry["servedBy"] = served
    at = state.step
    if state.phase is ItemPhase.FAILED:  # with onItemFailure=Continue the item went on: first failure
        at = next((k for k, r in enumerate(records) if r is not None and r.get("state") == "Failed"), at)
        if unwritten is not None and unwritten.get("step") in steps:
            at = min(at, steps.index(unwritten["step"]))
    if state.phase in (ItemPhase.FAILED, ItemPhase.CANCELLED) and at < len(steps):
        rec = records[at]
        entry["failedStep"] = steps[at]
        if unwritten is not None and unwritten.get("step") == steps[at] and state.phase is ItemPhase.FAILED:
            entry["reason"], entry["message"] = unwritten.get("reason"), unwritten.get("message")
        elif rec is not None:
            entry["reason"], entry["message"] = rec.get("reason"), rec.get("message")
        if state.phase is ItemPhase.CANCELLED and entry["reason"] in (None, Reason.SUCCEEDED):
            entry["reason"], entry["message"] = "Cancelled", "cancelled before this step finished"
    elif state.phase is ItemPhase.FAILED:
        entry["reason"] = "Failed"
    # the output: final.mmif, else the newest step MMIF written, else the source MMIF
    final = layout.final_mmif(item.index)
    if os.path.isfile(final) and records[-1] is not None:
        entry.update(
            output=layout.relative(final),
            sha256=records[-1].get("sha256"),
            finishedAt=records[-1].get("finishedAt"),
        )
    else:
        for k in range(len(steps) - 1, -1, -1):
            path = layout.step_mmif(item.index, k, steps[k])
            if os.path.isfile(path):
                rec = records[k] or {}
                entry.update(
                    output=layout.relative(path),
                    sha256=rec.get("sha256") or files.sha256_file(path),
                    finishedAt=rec.get("finishedAt"),
                )
                break
        else:
            if os.path.isfile(layout.source_mmif(item.index)):
                entry["output"] = layout.relative(layout.source_mmif(item.index))
    if entry["finishedAt"] is None:  # e.g. failed without an output: when the failing step ended
        done = [r.get("finishedAt") for r in records if r is not None and r.get("finishedAt")]
        entry["finishedAt"] = max(done) if done else None
    return entry


def build_manifest(
    run_dir: str,
    run_name: str,
    phase: str,
    steps: list[str],
    states_text: str | None,
    failure_reasons: Mapping[str, Any] | None = None,
) -> dict:
    layout = RunLayout(run_dir)
    items = read_items(layout.items) if os.path.isfile(layout.items) else []
    states = itemstates.decode(states_text, count=len(items))
    unwritten = failurereasons.lookup(failure_reasons, len(items))
    entries = [
        item_entry(layout, item, st, steps, why)
        for item, st, why in zip(items, states, unwritten, strict=True)
    ]
    counts = {"total": len(entries)}
    for state_name in STATE_NAMES.values():
        counts[state_name[0].lower() + state_name[1:]] = sum(e["state"] == state_name for e in entries)
    return {
        "run": run_name,
        "phase": phase,
        "generatedAt": files.utcnow(),
        "runDir": run_dir,
        "steps": steps,
        "counts": counts,
        "items": entries,
    }


def run_manifest(
    run_dir: str,
    run_name: str,
    phase: str,
    steps: list[str],
    states_text: str | None,
    termination_log: str,
    failure_reasons: Mapping[str, Any] | None = None,
    run_uid: str | None = None,
) -> int:
    layout = RunLayout(run_dir)
    if run_uid:  # never write into a folder that is not this run's
        try:
            claims.verify(layout.root, claims.Owner(RUN_UID_FILE, run_uid))
        except claims.ClaimConflict as e:
            files.write_termination(termination_log, {"reason": Reason.OUTPUT_CONFLICT, "message": str(e)})
            return int(ExitCode.OUTPUT_CONFLICT)
        except FileNotFoundError as e:
            files.write_termination(termination_log, {"reason": Reason.INVALID_INPUT, "message": str(e)})
            return int(ExitCode.INVALID_INPUT)
    try:
        manifest = build_manifest(run_dir, run_name, phase, steps, states_text, failure_reasons)
    except (ValueError, zlib.error) as e:  # item states unreadable or not matching items.jsonl
        files.write_termination(termination_log, {"reason": Reason.INVALID_CONFIG, "message": str(e)})
        return int(ExitCode.INVALID_CONFIG)
    files.atomic_write_json(layout.manifest, manifest)
    log.info("wrote %s (%d items)", layout.manifest, manifest["counts"]["total"])
    files.write_termination(termination_log, {"manifest": layout.manifest, **manifest["counts"]})
    return int(ExitCode.OK)
