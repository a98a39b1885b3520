"""`mmif-runner publish`: publish a reviewed run's outputs once a review passed it.

It writes `<run dir>/review.json` (the decision, the comment, who decided and when, the run and
its manifest) and marks the outputs published: a `published` block in `manifest.json` naming
`review.json` and the decision. Both writes are atomic (a temporary file, then a rename), and
nothing here depends on the time it runs, so a retried or repeated publish (the operator died,
the Job's pod was retried) writes the same bytes again.

In a project with a record store (`MMIF_RECORDS`, records/publisher.py), each Succeeded item
first becomes a record: its final MMIF and its lineage in the store, content-addressed, never
overwritten; the `published` block lists the records made.

It never overwrites what is not its own: the run folder must be this run's (`.run-uid`), and a
`review.json` or a `published` block that exists with other content (another decision, another
run, a file someone put there) fails the Job with OutputConflict (exit 5), leaving them as they
are.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from mmif_operator.records.lineage import LineageError
from mmif_operator.records.publisher import RecordsContext, publication, publish_records
from mmif_operator.records.store import RecordConflict
from mmif_operator.runner import claims, files
from mmif_operator.runner.exitcodes import ExitCode, Reason
from mmif_operator.runner.paths import REVIEW_FILE, RUN_UID_FILE, RunLayout

log = logging.getLogger("mmif-runner")


@dataclass(frozen=True)
class PublishConfig:
    run_dir: str
    run_name: str
    run_namespace: str
    run_uid: str | None
    manifest_path: str
    decision: str
    comment: str | None
    reviewer: str | None
    decided_at: str | None
    termination_log: str
    records: RecordsContext | None = None  # a project's record store: each passed item becomes a record


def review_record(cfg: PublishConfig) -> dict[str, Any]:
    """The content of review.json (deterministic: the same inputs give the same record)."""
    return {
        "decision": cfg.decision,
        "comment": cfg.comment,
        "reviewer": cfg.reviewer,
        "decidedAt": cfg.decided_at,
        "run": {"name": cfg.run_name, "namespace": cfg.run_namespace, "uid": cfg.run_uid},
        "manifest": cfg.manifest_path,
    }


def published_block(cfg: PublishConfig, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What `manifest.json` gains under `published` (with the records made, when there is a store)."""
    block: dict[str, Any] = {
        "review": REVIEW_FILE,
        "decision": cfg.decision,
        "reviewer": cfg.reviewer,
        "decidedAt": cfg.decided_at,
    }
    if records is not None:
        block["records"] = records
    return block


def _conflict(cfg: PublishConfig, message: str) -> int:
    files.write_termination(cfg.termination_log, {"reason": Reason.OUTPUT_CONFLICT, "message": message})
    return int(ExitCode.OUTPUT_CONFLICT)


def run_publish(cfg: PublishConfig) -> int:
    layout = RunLayout(cfg.run_dir)
    if cfg.run_uid:  # never write into a folder that is not this run's
        try:
            claims.verify(layout.root, claims.Owner(RUN_UID_FILE, cfg.run_uid))
        except claims.ClaimConflict as e:
            return _conflict(cfg, str(e))
        except FileNotFoundError as e:
            files.write_termination(cfg.termination_log, {"reason": Reason.INVALID_INPUT, "message": str(e)})
            return int(ExitCode.INVALID_INPUT)
    manifest = files.read_json(cfg.manifest_path)
    if not isinstance(manifest, dict):
        files.write_termination(
            cfg.termination_log,
            {
                "reason": Reason.INVALID_INPUT,
                "message": f"{cfg.manifest_path} is missing or not a JSON object",
            },
        )
        return int(ExitCode.INVALID_INPUT)
    record = review_record(cfg)
    if os.path.lexists(layout.review):
        existing = files.read_json(layout.review) if os.path.isfile(layout.review) else None
        if existing != record:
            return _conflict(
                cfg,
                f"{layout.review} exists with other content (not this run's review decision): "
                "it is left as it is, and the outputs are not published",
            )
    records: list[dict[str, Any]] | None = None
    if cfg.records is not None:
        pub = publication(
            cfg.records,
            run_name=cfg.run_name,
            run_namespace=cfg.run_namespace,
            run_uid=cfg.run_uid,
            review=record,
        )
        try:
            records = publish_records(layout, manifest, cfg.records, pub)
        except RecordConflict as e:
            return _conflict(cfg, str(e))
        except LineageError as e:
            files.write_termination(cfg.termination_log, {"reason": Reason.INVALID_OUTPUT, "message": str(e)})
            return int(ExitCode.INVALID_OUTPUT)
    block = published_block(cfg, records)
    if manifest.get("published") not in (None, block):
        return _conflict(
            cfg, f"{cfg.manifest_path} is already marked published by another decision: left as it is"
        )
    if not os.path.lexists(layout.review):
        files.atomic_write_json(layout.review, record)
    if manifest.get("published") != block:
        files.atomic_write_json(cfg.manifest_path, {**manifest, "published": block})
    log.info("published %s: %s", cfg.run_dir, layout.review)
    summary: dict[str, Any] = {"review": layout.review, "decision": cfg.decision}
    if records is not None:
        summary["records"] = len(records)
    files.write_termination(cfg.termination_log, summary)
    return int(ExitCode.OK)
