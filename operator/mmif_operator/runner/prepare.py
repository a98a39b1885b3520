"""`mmif-runner prepare`: validate the batch, claim the run folder, write items.jsonl."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from typing import Any

from mmif_operator.records import store
from mmif_operator.runner import claims, files, inputs
from mmif_operator.runner.exitcodes import ExitCode, Reason
from mmif_operator.runner.items import (
    Item,
    ItemsError,
    dump_jsonl,
    parse_jsonl,
    parse_list,
    resolve_in_workspace,
    validate_all,
)
from mmif_operator.runner.paths import RUN_UID_FILE, RunLayout

log = logging.getLogger("mmif-runner")


def claim(workspace: str, layout: RunLayout, run_uid: str) -> None:
    """Claim the run folder with `.run-uid` by the rule of `claims` (never inside another run's
    or analysis's folder, never holding one): ClaimConflict when it cannot be this run's."""
    claims.claim(workspace, layout.root, claims.Owner(RUN_UID_FILE, run_uid))


def inline_items(items_file: str, run_uid: str) -> list:
    """spec.items, from the ConfigMap the operator made for this run (mounted read-only)."""
    try:
        raw = inputs.read(items_file, run_uid, "the inline items").get("items")
    except inputs.InputFileError as e:
        raise ItemsError(str(e)) from None
    return parse_list(raw)


NO_RECORD_STORE = (
    "the run's namespace is not a Project's with a record store (spec.records): no record can be read"
)


def copy_records(items: list[Item], layout: RunLayout, records_dir: str | None) -> list[Item]:
    """Each item naming a record gets the record's MMIF (sha256 checked) as its source MMIF;
    an item whose record cannot be read keeps why (`record_problem`, naming the id): its first
    step fails with it, the other items go on. Once copied, a retried prepare copies nothing."""
    out = []
    for item in items:
        if item.record is None:
            out.append(item)
            continue
        target = layout.source_mmif(item.index)
        problem: tuple[str, str] | None = None
        if os.path.isfile(target) and files.sha256_file(target) == item.record.removeprefix("sha256:"):
            pass  # a retried prepare: copied already
        elif records_dir is None:
            problem = (Reason.RECORD_NOT_FOUND, f"record {item.record}: {NO_RECORD_STORE}")
        else:
            try:
                data = store.read(records_dir, item.record)
            except store.RecordUnavailable as e:
                problem = (e.reason, str(e))
            else:
                files.atomic_write(target, data)
        if problem is not None:
            log.warning("item %d (%s): %s: %s", item.index, item.name, *problem)
        out.append(dataclasses.replace(item, record_problem=problem))
    return out


def run_prepare(
    workspace: str,
    run_dir: str,
    run_uid: str,
    items_file: str | None,
    items_from: str | None,
    termination_log: str,
    records_dir: str | None = None,
) -> int:
    layout = RunLayout(run_dir)
    raws: Iterable[tuple[str, Any]]
    try:
        if items_from is not None:
            raws = parse_jsonl(resolve_in_workspace(workspace, items_from))
        else:
            raws = inline_items(items_file or "", run_uid)
        items, problems = validate_all(raws, workspace)
    except (ItemsError, ValueError) as e:
        where = f"itemsFrom {items_from!r}: " if items_from is not None else ""
        files.write_termination(termination_log, {"reason": Reason.INVALID_ITEMS, "message": where + str(e)})
        return int(ExitCode.INVALID_INPUT)
    if problems:
        files.write_termination(
            termination_log,
            {
                "reason": Reason.INVALID_ITEMS,
                "message": problems.message(),
                "problems": problems.first,
                "problemCount": problems.count,
            },
        )
        return int(ExitCode.INVALID_INPUT)
    try:
        claim(workspace, layout, run_uid)
    except claims.ClaimConflict as e:
        files.write_termination(termination_log, {"reason": Reason.OUTPUT_CONFLICT, "message": str(e)})
        return int(ExitCode.OUTPUT_CONFLICT)
    items = copy_records(items, layout, records_dir)
    files.atomic_write(layout.items, dump_jsonl(items))
    log.info("prepared %d item(s) in %s", len(items), layout.items)
    files.write_termination(termination_log, {"items": len(items)})
    return int(ExitCode.OK)
