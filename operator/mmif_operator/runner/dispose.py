"""`mmif-runner dispose`: delete or archive a finished run's work in progress, its folder
`<mountPath>/<outputDir>/<run>/` (kinds/pipelinerun/wip.py decides when; docs/design.md, "Work in
progress").

- `Delete`: the run's folder and its archived copy (`<outputDir>/.archive/<run>/`) are removed.
- `Archive`: the run's folder is renamed to the archive folder (same volume: one atomic rename).

Only a folder that holds this run's marker (`.run-uid` = MMIF_RUN_UID) is touched: a folder of
another run of the same name (or none) is left alone (exit 5, OutputConflict). Idempotent: a
second run finds nothing left to do and succeeds, so the Job may be retried or replayed.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass

from mmif_operator.runner import files
from mmif_operator.runner.exitcodes import ExitCode, Reason
from mmif_operator.runner.paths import RUN_UID_FILE

log = logging.getLogger(__name__)

DELETE = "Delete"
ARCHIVE = "Archive"


@dataclass(frozen=True)
class DisposeConfig:
    workspace: str
    run_dir: str
    archive_dir: str
    run_uid: str | None
    action: str
    termination_log: str


class Refused(Exception):
    """The folder is not this run's: nothing is touched."""


def _inside(path: str, top: str) -> bool:
    path, top = os.path.realpath(path), os.path.realpath(top)
    return path != top and os.path.commonpath([path, top]) == top


def _check_owner(folder: str, run_uid: str | None) -> None:
    if run_uid is None:
        return
    marker = os.path.join(folder, RUN_UID_FILE)
    try:
        with open(marker, encoding="utf-8") as f:
            found = f.read().strip()
    except FileNotFoundError:
        raise Refused(f"{folder} holds no {RUN_UID_FILE}: not this run's folder, left as it is") from None
    if found != run_uid:
        raise Refused(f"{folder} belongs to another run ({RUN_UID_FILE} {found}): left as it is")


def dispose(cfg: DisposeConfig) -> str:
    """Do it; the outcome's message (raises Refused)."""
    for folder in (cfg.run_dir, cfg.archive_dir):
        if not _inside(folder, cfg.workspace):
            raise Refused(f"{folder} is not inside the workspace {cfg.workspace}")
    if cfg.action == DELETE:
        gone = []
        for folder in (cfg.run_dir, cfg.archive_dir):
            if os.path.isdir(folder):
                _check_owner(folder, cfg.run_uid)
                shutil.rmtree(folder)
                gone.append(folder)
        return f"deleted {', '.join(gone)}" if gone else f"{cfg.run_dir}: nothing left to delete"
    if cfg.action == ARCHIVE:
        if not os.path.isdir(cfg.run_dir):
            if os.path.isdir(cfg.archive_dir):
                _check_owner(cfg.archive_dir, cfg.run_uid)
                return f"already archived in {cfg.archive_dir}"
            return f"{cfg.run_dir}: nothing to archive"
        _check_owner(cfg.run_dir, cfg.run_uid)
        if os.path.exists(cfg.archive_dir):
            raise Refused(f"{cfg.archive_dir} exists already: {cfg.run_dir} is not moved over it")
        os.makedirs(os.path.dirname(cfg.archive_dir), exist_ok=True)
        os.rename(cfg.run_dir, cfg.archive_dir)
        return f"archived {cfg.run_dir} in {cfg.archive_dir}"
    raise ValueError(f"unknown action {cfg.action!r}")


def run_dispose(cfg: DisposeConfig) -> int:
    try:
        message = dispose(cfg)
    except Refused as e:
        log.error("%s", e)
        files.write_termination(cfg.termination_log, {"reason": Reason.OUTPUT_CONFLICT, "message": str(e)})
        return int(ExitCode.OUTPUT_CONFLICT)
    log.info("%s", message)
    files.write_termination(cfg.termination_log, {"reason": Reason.SUCCEEDED, "message": message})
    return int(ExitCode.OK)
