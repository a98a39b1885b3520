"""`mmif-runner analyze` and `mmif-runner analysis-manifest`: an AnalysisJob's item and manifest.

`analyze` sends one item's final MMIF (`<run>/items/<i>/final.mmif`, read-only in the pod) to the
app and keeps the checked output in the AnalysisJob's own folder (`<run>/analyses/<name>/`, the
only folder its pod may write). Same contract, exit codes and result record as `step`: a record
that says Succeeded with the output's sha256 intact means "already done" (no second app call).
"""

from __future__ import annotations

import errno
import logging
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmif_operator.core import failurereasons, itemstates
from mmif_operator.core.itemstates import ItemPhase
from mmif_operator.runner import claims, files
from mmif_operator.runner.appcall import Failure, call_app
from mmif_operator.runner.exitcodes import ExitCode, Reason
from mmif_operator.runner.items import read_item, read_items
from mmif_operator.runner.outcome import InputViews, Kind, parse_mmif
from mmif_operator.runner.paths import ANALYSIS_UID_FILE, RUN_UID_FILE, AnalysisLayout, RunLayout
from mmif_operator.runner.step import read_input

log = logging.getLogger("mmif-runner")


@dataclass(frozen=True)
class AnalyzeConfig:
    run_dir: str
    analysis_dir: str
    item_index: int
    app_url: str
    params: dict
    http_timeout: float
    app_wait: float
    termination_log: str
    analysis_uid: str | None = None
    app_startup: float | None = None  # the app is this pod's sidecar: seconds it may take to listen
    run_uid: str | None = None  # the source run's UID: its folder must hold it


def claim_folder(run_dir: str, layout: AnalysisLayout, uid: str | None, run_uid: str | None) -> None:
    """Claim the AnalysisJob's folder with `.analysis-uid` by the rule of `claims`: under its
    source run's folder (which must hold that run's `.run-uid`), never inside another analysis's
    or run's folder, never holding one, and never a folder another AnalysisJob (e.g. a deleted
    one of the same name) claimed: its outputs are never overwritten."""
    if not uid:
        return
    if not run_uid:  # a Job made before MMIF_RUN_UID was passed: the run folder's own marker
        run_uid = claims.read_markers(run_dir).get(RUN_UID_FILE) or ""
    claims.claim(
        run_dir, layout.root, claims.Owner(ANALYSIS_UID_FILE, uid), allowed={run_dir: (RUN_UID_FILE, run_uid)}
    )


def _done_before(layout: AnalysisLayout, index: int) -> dict | None:
    rec = files.read_json(layout.record(index))
    if not isinstance(rec, dict) or rec.get("state") != "Succeeded" or not rec.get("sha256"):
        return None
    return rec if files.sha256_file(layout.output(index)) == rec["sha256"] else None


def run_analyze(cfg: AnalyzeConfig) -> int:
    run = RunLayout(cfg.run_dir)
    layout = AnalysisLayout(cfg.analysis_dir)
    started = files.utcnow()
    record: dict = {"item": cfg.item_index, "name": None}
    write_record = False

    def finish(code: int, reason: str, message: str, **extra) -> int:
        record.update(
            state="Succeeded" if code == ExitCode.OK else "Failed",
            reason=reason,
            message=message,
            exitCode=int(code),
            retriable=code == ExitCode.INFRA,
            startedAt=started,
            finishedAt=files.utcnow(),
            **extra,
        )
        if write_record:
            files.atomic_write_json(layout.record(cfg.item_index), record)
        files.write_termination(
            cfg.termination_log,
            {"item": cfg.item_index, "name": record["name"], "reason": reason, "message": message},
        )
        return int(code)

    try:
        claim_folder(cfg.run_dir, layout, cfg.analysis_uid, cfg.run_uid)
    except claims.ClaimConflict as e:
        return finish(ExitCode.OUTPUT_CONFLICT, Reason.OUTPUT_CONFLICT, str(e))
    item = read_item(run.items, cfg.item_index) if os.path.isfile(run.items) else None
    if item is None:
        return finish(
            ExitCode.INVALID_INPUT, Reason.INVALID_INPUT, f"{run.items} has no item {cfg.item_index}"
        )
    record["name"] = item.name
    write_record = True
    done = _done_before(layout, item.index)
    if done is not None:
        log.info("item %d already analysed (sha256 %s): nothing to do", item.index, done["sha256"])
        files.write_termination(
            cfg.termination_log,
            {"item": item.index, "name": item.name, "reason": Reason.SUCCEEDED, "message": "already done"},
        )
        return int(ExitCode.OK)
    previous = files.read_json(layout.record(item.index))
    record.update(
        attempt=(previous.get("attempt", 0) if isinstance(previous, dict) else 0) + 1,
        appUrl=cfg.app_url,
        app=None,
        httpStatus=None,
        input=run.final_mmif(item.index),
        output=None,
        sha256=None,
    )
    try:
        in_bytes = read_input(run.final_mmif(item.index))
        in_views = InputViews.of(parse_mmif(in_bytes))
    except (FileNotFoundError, IsADirectoryError, PermissionError, ValueError) as e:
        return finish(ExitCode.INVALID_INPUT, Reason.INVALID_INPUT, f"cannot use the item's final MMIF: {e}")

    outcome = call_app(cfg, in_bytes, in_views, record, f"item {item.index} ({item.name}), final.mmif")
    del in_bytes
    if isinstance(outcome, Failure):
        return finish(outcome.code, outcome.reason, outcome.message)
    extra: dict[str, object] = {"newViews": outcome.new_views, "warnings": outcome.warnings}
    if outcome.output is not None and outcome.kind is Kind.SUCCEEDED:
        files.atomic_write(layout.output(item.index), outcome.output)
        extra.update(output=layout.output(item.index), sha256=files.sha256_bytes(outcome.output))
    return finish(outcome.exit_code, outcome.reason, outcome.message, **extra)


# -- the manifest -------------------------------------------------------------------------------

_STATE_NAMES = {ItemPhase.SUCCEEDED: "Succeeded", ItemPhase.FAILED: "Failed"}


def build_analysis_manifest(
    run_dir: str,
    analysis_dir: str,
    name: str,
    phase: str,
    states_text: str | None,
    failure_reasons: Mapping[str, Any] | None = None,
) -> dict:
    """Every item the analysis processed (succeeded or failed), from the analysis's item states
    (status.itemStates) and the result records; items it never took are not listed."""
    run = RunLayout(run_dir)
    layout = AnalysisLayout(analysis_dir)
    items = read_items(run.items) if os.path.isfile(run.items) else []
    states = itemstates.decode(states_text, count=len(items))
    unwritten = failurereasons.lookup(failure_reasons, len(items))
    entries = []
    for item, state, why in zip(items, states, unwritten, strict=True):
        if state.phase not in _STATE_NAMES:
            continue
        rec = files.read_json(layout.record(item.index))
        rec = rec if isinstance(rec, dict) else {}
        if why is not None and state.phase is ItemPhase.FAILED:  # no pod wrote why: the operator's
            rec = {**rec, "reason": why.get("reason"), "message": why.get("message")}
        succeeded = state.phase is ItemPhase.SUCCEEDED
        output = layout.output(item.index)
        entries.append(
            {
                "index": item.index,
                "name": item.name,
                "state": _STATE_NAMES[state.phase],
                "source": run.relative(run.final_mmif(item.index)),
                "output": layout.relative(output) if succeeded and os.path.isfile(output) else None,
                "sha256": rec.get("sha256") if succeeded else None,
                "reason": None if succeeded else rec.get("reason"),
                "message": None if succeeded else rec.get("message"),
                "finishedAt": rec.get("finishedAt"),
            }
        )
    counts = {
        "total": len(entries),
        "succeeded": sum(e["state"] == "Succeeded" for e in entries),
        "failed": sum(e["state"] == "Failed" for e in entries),
    }
    return {
        "analysisJob": name,
        "phase": phase,
        "generatedAt": files.utcnow(),
        "runDir": run_dir,
        "analysisDir": analysis_dir,
        "counts": counts,
        "items": entries,
    }


def run_analysis_manifest(
    run_dir: str,
    analysis_dir: str,
    name: str,
    phase: str,
    states_text: str | None,
    termination_log: str,
    failure_reasons: Mapping[str, Any] | None = None,
    analysis_uid: str | None = None,
    run_uid: str | None = None,
) -> int:
    layout = AnalysisLayout(analysis_dir)
    try:  # the first writer when no item was processed: it claims the folder as `analyze` does
        claim_folder(run_dir, layout, analysis_uid, run_uid)
    except claims.ClaimConflict as e:
        files.write_termination(termination_log, {"reason": Reason.OUTPUT_CONFLICT, "message": str(e)})
        return int(ExitCode.OUTPUT_CONFLICT)
    try:
        manifest = build_analysis_manifest(run_dir, analysis_dir, name, phase, states_text, failure_reasons)
    except (ValueError, zlib.error) as e:
        files.write_termination(termination_log, {"reason": Reason.INVALID_CONFIG, "message": str(e)})
        return int(ExitCode.INVALID_CONFIG)
    try:
        files.atomic_write_json(layout.manifest, manifest)
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES):
            files.write_termination(termination_log, {"reason": Reason.INVALID_CONFIG, "message": str(e)})
            return int(ExitCode.INVALID_CONFIG)
        raise
    log.info("wrote %s (%d items)", layout.manifest, manifest["counts"]["total"])
    files.write_termination(termination_log, {"manifest": layout.manifest, **manifest["counts"]})
    return int(ExitCode.OK)
