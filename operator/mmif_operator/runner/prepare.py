"""`mmif-runner prepare`: validate the batch, claim the run folder, write items.jsonl."""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from typing import Any

from . import files
from .exitcodes import ExitCode, Reason
from .items import ItemsError, dump_jsonl, parse_inline, parse_jsonl, resolve_in_workspace, validate_all
from .paths import RUN_UID_FILE, RunLayout

log = logging.getLogger("mmif-runner")


class Conflict(Exception):
    pass


def claim(layout: RunLayout, run_uid: str) -> None:
    """Mark the run folder as this run's with `.run-uid` (created exclusively, so two runs racing
    for one folder cannot both win). Same UID: nothing to do (a retried prepare). Another UID, or
    a non-empty folder without a marker: Conflict, and nothing of it is touched."""
    os.makedirs(layout.root, exist_ok=True)
    for _ in range(2):
        try:
            with open(layout.run_uid, encoding="utf-8") as f:
                owner = f.read().strip()
        except FileNotFoundError:
            owner = None
        if owner is not None:
            if owner != run_uid:
                raise Conflict(f"{layout.root} belongs to another run (UID {owner}); "
                               f"a run never writes into another run's folder")
            return
        leftovers = [n for n in os.listdir(layout.root) if not n.startswith(f".{RUN_UID_FILE}.tmp-")]
        if leftovers:
            raise Conflict(f"{layout.root} already exists, is not empty and is not marked as a run's "
                           f"folder (holds {', '.join(sorted(leftovers)[:3])})")
        tmp = os.path.join(layout.root, f".{RUN_UID_FILE}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(run_uid + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, layout.run_uid)   # fails if the marker appeared meanwhile
            return
        except FileExistsError:
            continue                       # someone else claimed it: compare UIDs again
        except OSError:
            # a filesystem without hard links: fall back to an exclusive create
            try:
                fd = os.open(layout.run_uid, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(run_uid + "\n")
            return
        finally:
            os.unlink(tmp)
    raise Conflict(f"cannot claim {layout.root}")


def run_prepare(workspace: str, run_dir: str, run_uid: str, inline: str | None,
                items_from: str | None, termination_log: str) -> int:
    layout = RunLayout(run_dir)
    raws: Iterable[tuple[str, Any]]
    try:
        if items_from is not None:
            raws = parse_jsonl(resolve_in_workspace(workspace, items_from))
        else:
            raws = parse_inline(inline or "")
        items, problems = validate_all(raws, workspace)
    except (ItemsError, ValueError) as e:
        where = f"itemsFrom {items_from!r}: " if items_from is not None else ""
        files.write_termination(termination_log, {"reason": Reason.INVALID_ITEMS, "message": where + str(e)})
        return int(ExitCode.INVALID_INPUT)
    if problems:
        files.write_termination(termination_log, {
            "reason": Reason.INVALID_ITEMS, "message": problems.message(),
            "problems": problems.first, "problemCount": problems.count})
        return int(ExitCode.INVALID_INPUT)
    try:
        claim(layout, run_uid)
    except Conflict as e:
        files.write_termination(termination_log, {"reason": Reason.OUTPUT_CONFLICT, "message": str(e)})
        return int(ExitCode.OUTPUT_CONFLICT)
    files.atomic_write(layout.items, dump_jsonl(items))
    log.info("prepared %d item(s) in %s", len(items), layout.items)
    files.write_termination(termination_log, {"items": len(items)})
    return int(ExitCode.OK)
