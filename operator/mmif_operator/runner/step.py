"""`mmif-runner step`: run one (item, step): input MMIF -> app -> checked output on the volume."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from mmif_operator.runner import appclient, claims, files, source, steplog
from mmif_operator.runner.appcall import Failure, call_app
from mmif_operator.runner.exitcodes import ExitCode, Reason
from mmif_operator.runner.items import Item, read_item, resolve_in_workspace
from mmif_operator.runner.outcome import InputViews, Kind, parse_mmif
from mmif_operator.runner.paths import RUN_UID_FILE, RunLayout, step_log

log = logging.getLogger("mmif-runner")


@dataclass(frozen=True)
class StepConfig:
    workspace: str
    run_dir: str
    item_index: int
    step_index: int
    steps: tuple[str, ...]
    app_url: str
    params: dict
    http_timeout: float
    app_wait: float
    termination_log: str
    run_uid: str | None = None
    app_startup: float | None = None  # the app is this pod's sidecar: seconds it may take to listen
    served_by: dict | None = None  # the step has alternatives: the app chosen ({name, image?, url?})

    @property
    def step(self) -> str:
        return self.steps[self.step_index]

    @property
    def last(self) -> bool:
        return self.step_index == len(self.steps) - 1


class InputError(Exception):
    """The item's input MMIF is missing or invalid (exit 4)."""


class ConflictError(Exception):
    """The run folder belongs to another run (exit 5)."""


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def read_input(path: str, limit: int | None = None) -> bytes:
    """An input MMIF, at most as long as an answer the runner would take (ValueError otherwise:
    the runner could not parse it within its memory, and no app answer could be kept)."""
    limit = appclient.MAX_ANSWER_BYTES if limit is None else limit
    size = os.path.getsize(path)
    if size > limit:
        raise ValueError(
            f"{path} is {size} bytes long, more than the {appclient.mib(limit)} the runner reads"
        )
    return _read(path)


def input_path(cfg: StepConfig, layout: RunLayout, item: Item) -> str:
    """Step 0 reads the source MMIF (built here from the documents once, or the record prepare
    copied there) or the item's own MMIF;
    step k reads the MMIF of step k-1. When that one was never written (step k-1 gave invalid
    output and the run continues on failure), the newest earlier MMIF is used."""
    for k in range(cfg.step_index - 1, -1, -1):
        path = layout.step_mmif(item.index, k, cfg.steps[k])
        if os.path.isfile(path):
            return path
        log.warning("no output of step %d (%s); looking further back", k, cfg.steps[k])
    if item.mmif is not None:
        return resolve_in_workspace(cfg.workspace, item.mmif)
    path = layout.source_mmif(item.index)
    if item.record is not None:  # prepare copied the record there (FileNotFoundError if not)
        return path
    if not os.path.isfile(path):
        files.atomic_write(path, source.serialize(source.build_source(item, cfg.workspace)))
    return path


def _done_before(cfg: StepConfig, layout: RunLayout, item: Item, out_path: str, rec_path: str) -> dict | None:
    """The result record when this step already succeeded (same output, intact): a retry or a
    restarted operator must not call the app again."""
    rec = files.read_json(rec_path)
    if not isinstance(rec, dict) or rec.get("state") != "Succeeded" or not rec.get("sha256"):
        return None
    if files.sha256_file(out_path) != rec["sha256"]:
        return None
    if cfg.last and files.sha256_file(layout.final_mmif(item.index)) != rec["sha256"]:
        files.atomic_write(layout.final_mmif(item.index), _read(out_path))
    return rec


def check_owner(cfg: StepConfig, layout: RunLayout) -> None:
    """The run folder must be this run's (prepare claimed it): a step never writes elsewhere."""
    if not cfg.run_uid:
        return
    try:
        claims.verify(layout.root, claims.Owner(RUN_UID_FILE, cfg.run_uid))
    except FileNotFoundError:
        raise InputError(f"{layout.run_uid} is missing: the run was not prepared") from None
    except claims.ClaimConflict as e:
        raise ConflictError(str(e)) from None


def run_step(cfg: StepConfig) -> int:
    layout = RunLayout(cfg.run_dir)
    started = files.utcnow()
    item_name = ""
    record: dict = {}
    rec_path: str | None = None  # known once the item is

    def finish(code: int, reason: str, message: str, **extra) -> int:
        state = "Succeeded" if code == ExitCode.OK else "Failed"
        record.update(
            state=state,
            reason=reason,
            message=message,
            exitCode=int(code),
            retriable=code == ExitCode.INFRA,
            startedAt=started,
            finishedAt=files.utcnow(),
            **extra,
        )
        log.log(
            logging.INFO if code == ExitCode.OK else logging.ERROR,
            "finished: %s (%s, exit %d): %s",
            state,
            reason,
            int(code),
            message,
        )
        if rec_path is not None:
            files.atomic_write_json(rec_path, record)
        files.write_termination(
            cfg.termination_log,
            {
                "item": cfg.item_index,
                "name": item_name,
                "step": cfg.step,
                "reason": reason,
                "message": message,
            },
        )
        return int(code)

    try:
        check_owner(cfg, layout)
        item = read_item(layout.items, cfg.item_index) if os.path.isfile(layout.items) else None
        if item is None:
            raise InputError(f"{layout.items} has no item {cfg.item_index}")
    except ConflictError as e:
        return finish(ExitCode.OUTPUT_CONFLICT, Reason.OUTPUT_CONFLICT, str(e))
    except InputError as e:
        return finish(ExitCode.INVALID_INPUT, Reason.INVALID_INPUT, str(e))

    item_name = item.name
    out_path = layout.step_mmif(item.index, cfg.step_index, cfg.step)
    rec_path = layout.step_record(item.index, cfg.step_index, cfg.step)
    # From here the folder is the run's own: the runner's log of this item-step goes beside its record.
    handler = steplog.attach(log, step_log(layout, item.index, cfg.step_index, cfg.step))
    log.info(
        "item %d (%s) step %d (%s): started (app %s, parameters %s)",
        item.index,
        item.name,
        cfg.step_index,
        cfg.step,
        cfg.app_url,
        json.dumps(cfg.params, sort_keys=True),
    )
    try:
        done = _done_before(cfg, layout, item, out_path, rec_path)
        if done is not None:
            log.info(
                "step %s of item %d already succeeded (sha256 %s): nothing to do",
                cfg.step,
                item.index,
                done["sha256"],
            )
            files.write_termination(
                cfg.termination_log,
                {
                    "item": item.index,
                    "name": item.name,
                    "step": cfg.step,
                    "reason": Reason.SUCCEEDED,
                    "message": "already done",
                },
            )
            return int(ExitCode.OK)
        previous = files.read_json(rec_path)
        attempt = (previous.get("attempt", 0) if isinstance(previous, dict) else 0) + 1
        record.update(
            item=item.index,
            name=item.name,
            step=cfg.step,
            stepIndex=cfg.step_index,
            attempt=attempt,
            pod=os.environ.get("HOSTNAME") or None,  # which pod ran it (steps may share one)
            appUrl=cfg.app_url,
            **({"servedBy": dict(cfg.served_by)} if cfg.served_by else {}),
            app=None,
            httpStatus=None,
            input=None,
            output=None,
            sha256=None,
        )

        if item.record_problem is not None:  # prepare could not read the item's record
            return finish(ExitCode.INVALID_INPUT, *item.record_problem)
        try:
            in_path = input_path(cfg, layout, item)
            record["input"] = in_path
            in_bytes = read_input(in_path)
            in_views = InputViews.of(parse_mmif(in_bytes))  # the parsed input is freed here
        except (FileNotFoundError, IsADirectoryError, PermissionError, ValueError) as e:
            # other OSErrors (EIO, ENOSPC...) are the volume's: RunnerError, exit 2, retried
            return finish(ExitCode.INVALID_INPUT, Reason.INVALID_INPUT, f"cannot use the input MMIF: {e}")

        what = (
            f"item {item.index} ({item.name}) step {cfg.step_index} ({cfg.step}), {os.path.basename(in_path)}"
        )
        outcome = call_app(cfg, in_bytes, in_views, record, what)
        del in_bytes
        if isinstance(outcome, Failure):
            return finish(outcome.code, outcome.reason, outcome.message)
        extra: dict[str, object] = {"newViews": outcome.new_views, "warnings": outcome.warnings}
        if outcome.output is not None:  # success, or the failed MMIF of an app error: keep it
            files.atomic_write(out_path, outcome.output)
            extra.update(output=out_path, sha256=files.sha256_bytes(outcome.output))
            if outcome.kind is Kind.SUCCEEDED and cfg.last:
                files.atomic_write(layout.final_mmif(item.index), outcome.output)
        return finish(outcome.exit_code, outcome.reason, outcome.message, **extra)

    finally:
        steplog.detach(log, handler)


def run_steps(cfgs: Sequence[StepConfig]) -> int:
    """Run the item's steps in `cfgs` in turn (steps sharing the item's pod), stopping at the
    first that does not succeed; its exit code is the pod's. Before each step of several, the
    termination message names it, so that a pod killed meanwhile (its deadline, a delete) tells
    the operator at which step it stopped; each step's own summary replaces it as it ends."""
    code = int(ExitCode.OK)
    for cfg in cfgs:
        if len(cfgs) > 1:
            files.write_termination(cfg.termination_log, {"item": cfg.item_index, "step": cfg.step})
        code = run_step(cfg)
        if code != ExitCode.OK:
            break
    return code


def parse_params(text: str | None) -> dict:
    """MMIF_APP_PARAMS: a JSON object string -> string (a list gives a repeated key)."""
    if not text:
        return {}
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("must be a JSON object")
    out: dict = {}
    for k, v in obj.items():
        if isinstance(v, list):
            out[k] = [_scalar(x) for x in v]
        else:
            out[k] = _scalar(v)
    return out


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None or isinstance(v, (dict, list)):
        raise ValueError(f"parameter values must be strings, not {json.dumps(v)}")
    return str(v)
