"""`mmif-runner prepare|step|manifest|publish|analyze|analysis-manifest`: configured by environment variables (see `env`), it exits
with the codes of `exitcodes` (docs/design.md, "Runner exit codes"). `mmif-runner show ...` reads a
run's outputs for the `kubectl mmif` plugin (mmif_operator/results/show.py)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Literal, overload

from mmif_operator.runner import env, files
from mmif_operator.runner.exitcodes import (  # noqa: F401
    APP_ERROR,
    FAIL_JOB,
    INFRA,
    INVALID_CONFIG,
    INVALID_INPUT,
    INVALID_OUTPUT,
    OK,
    OUTPUT_CONFLICT,
    ExitCode,
    Reason,
)

if TYPE_CHECKING:
    from mmif_operator.records.publisher import RecordsContext

log = logging.getLogger("mmif-runner")


class ConfigError(Exception):
    pass


# A variable with a default, or a required one, is a str; only an optional one without a default can be None.
@overload
def _get(name: str, default: str, required: bool = ...) -> str: ...
@overload
def _get(name: str, default: None = None, required: Literal[True] = True) -> str: ...
@overload
def _get(name: str, default: None = None, *, required: bool) -> str | None: ...
def _get(name: str, default: str | None = None, required: bool = True) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None and required:
            raise ConfigError(f"environment variable {name} is not set")
        return default
    return value


def _int(name: str) -> int:
    value = _get(name)
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    if number < 0:
        raise ConfigError(f"{name}={value!r} is negative")
    return number


def _float(name: str, default: float, positive: bool = False) -> float:
    value = _get(name, required=False)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if number < 0 or (positive and number == 0):
        raise ConfigError(f"{name}={value!r} must be {'> 0' if positive else '>= 0'}")
    return number


def _abs(name: str) -> str:
    value = _get(name)
    if not os.path.isabs(value):
        raise ConfigError(f"{name}={value!r} is not an absolute path")
    return os.path.normpath(value)


def _steps() -> list[str]:
    steps = [s.strip() for s in (_get(env.STEPS) or "").split(",")]
    if not all(steps):
        raise ConfigError(f"{env.STEPS} must be comma-separated step names")
    return steps


def cmd_prepare() -> int:
    from mmif_operator.runner.prepare import run_prepare

    items_file, items_from = _get(env.ITEMS_FILE, required=False), _get(env.ITEMS_FROM, required=False)
    if (items_file is None) == (items_from is None):
        raise ConfigError(f"set exactly one of {env.ITEMS_FILE} and {env.ITEMS_FROM}")
    return run_prepare(
        _abs(env.WORKSPACE),
        _abs(env.RUN_DIR),
        _get(env.RUN_UID),
        items_file,
        items_from,
        _termination_log(),
        _get(env.RECORDS_DIR, required=False),
    )


def _manifest_inputs(owner_uid: str | None) -> tuple[str, dict | None]:
    """status.itemStates, and why items failed where no pod wrote it
    (`failurereasons.payload`), from the mounted ConfigMap the operator made for this owner."""
    from mmif_operator.runner.inputs import InputFileError, read

    path = _abs(env.ITEM_STATES_FILE)
    try:
        data = read(path, owner_uid, "the item states")
    except InputFileError as e:
        raise ConfigError(str(e)) from None
    states, reasons = data.get("itemStates"), data.get("failureReasons")
    if not isinstance(states, str):
        raise ConfigError(f"the item states at {path} hold no itemStates text")
    if reasons is not None and not isinstance(reasons, dict):
        raise ConfigError(f"the failure reasons at {path} are not an object")
    return states, reasons


def _served_by() -> dict | None:
    text = _get(env.SERVED_BY, required=False)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{env.SERVED_BY} is not JSON: {e}") from None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{env.SERVED_BY} must be a JSON object with a name")
    return {k: str(v) for k, v in value.items() if k in ("name", "image", "url") and v}


def _step_calls(text: str) -> list[tuple[str, dict, float]]:
    """MMIF_STEP_CALLS: (url, params, http timeout) of each step the pod runs in turn."""
    from mmif_operator.runner.step import parse_params

    try:
        calls = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{env.STEP_CALLS} is not JSON: {e}") from None
    if not isinstance(calls, list) or not calls or not all(isinstance(c, dict) for c in calls):
        raise ConfigError(f"{env.STEP_CALLS} must be a non-empty JSON list of objects")
    out = []
    for n, call in enumerate(calls):
        url = call.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{env.STEP_CALLS}[{n}].url={url!r} is not an http(s) URL")
        try:
            params = parse_params(json.dumps(call.get("params") or {}))
        except ValueError as e:
            raise ConfigError(f"{env.STEP_CALLS}[{n}].params: {e}") from None
        timeout = call.get("timeout", env.DEFAULT_HTTP_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"{env.STEP_CALLS}[{n}].timeout={timeout!r} must be a number > 0")
        out.append((url, params, float(timeout)))
    return out


def cmd_step() -> int:
    from mmif_operator.runner.step import StepConfig, run_steps

    steps = _steps()
    step_index = _int(env.STEP_INDEX)
    shared = _get(env.STEP_CALLS, required=False)
    if shared is not None:
        calls = _step_calls(shared)
    else:
        url, params = _app_config()
        calls = [(url, params, _float(env.HTTP_TIMEOUT, env.DEFAULT_HTTP_TIMEOUT, positive=True))]
    if step_index + len(calls) > len(steps):
        raise ConfigError(
            f"{env.STEP_INDEX}={step_index} with {len(calls)} step(s) to run but {env.STEPS} has "
            f"{len(steps)} step(s)"
        )
    cfgs = [
        StepConfig(
            workspace=_abs(env.WORKSPACE),
            run_dir=_abs(env.RUN_DIR),
            item_index=_int(env.ITEM_INDEX),
            step_index=step_index + n,
            steps=tuple(steps),
            app_url=url,
            params=params,
            http_timeout=timeout,
            app_wait=_float(env.APP_WAIT, env.DEFAULT_APP_WAIT),
            termination_log=_termination_log(),
            run_uid=_get(env.RUN_UID, required=False),
            app_startup=_app_startup(),
            served_by=_served_by(),
        )
        for n, (url, params, timeout) in enumerate(calls)
    ]
    return run_steps(cfgs)


def cmd_manifest() -> int:
    from mmif_operator.runner.manifest import run_manifest

    run_uid = _get(env.RUN_UID, required=False)
    states, reasons = _manifest_inputs(run_uid)
    return run_manifest(
        _abs(env.RUN_DIR),
        _get(env.RUN_NAME, ""),
        _get(env.RUN_PHASE, ""),
        _steps(),
        states,
        _termination_log(),
        failure_reasons=reasons,
        run_uid=run_uid,
    )


def cmd_publish() -> int:
    from mmif_operator.runner.publish import PublishConfig, run_publish

    decision = _get(env.REVIEW_DECISION)
    if decision != "Pass":
        raise ConfigError(f"{env.REVIEW_DECISION}={decision!r}: only a passed run is published")
    cfg = PublishConfig(
        run_dir=_abs(env.RUN_DIR),
        run_name=_get(env.RUN_NAME),
        run_namespace=_get(env.RUN_NAMESPACE),
        run_uid=_get(env.RUN_UID, required=False),
        manifest_path=_abs(env.MANIFEST_PATH),
        decision=decision,
        comment=_get(env.REVIEW_COMMENT, required=False),
        reviewer=_get(env.REVIEWER, required=False),
        decided_at=_get(env.REVIEW_DECIDED_AT, required=False),
        termination_log=_termination_log(),
        records=_records_context(),
    )
    return run_publish(cfg)


def _records_context() -> RecordsContext | None:
    from mmif_operator.records.publisher import RecordsContext

    text = _get(env.RECORDS, required=False)
    if not text:
        return None
    try:
        return RecordsContext.from_json(text)
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{env.RECORDS}: {e}") from None


def _app_config() -> tuple[str, dict]:
    from mmif_operator.runner.step import parse_params

    try:
        params = parse_params(_get(env.APP_PARAMS, required=False))
    except ValueError as e:
        raise ConfigError(f"{env.APP_PARAMS}: {e}") from None
    url = _get(env.APP_URL)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{env.APP_URL}={url!r} is not an http(s) URL")
    return url, params


def _app_startup() -> float | None:
    if _get(env.APP_STARTUP_TIMEOUT, required=False) is None:
        return None
    return _float(env.APP_STARTUP_TIMEOUT, 0.0, positive=True)


def cmd_analyze() -> int:
    from mmif_operator.runner.analysis import AnalyzeConfig, run_analyze

    url, params = _app_config()
    cfg = AnalyzeConfig(
        run_dir=_abs(env.RUN_DIR),
        analysis_dir=_abs(env.ANALYSIS_DIR),
        item_index=_int(env.ITEM_INDEX),
        app_url=url,
        params=params,
        http_timeout=_float(env.HTTP_TIMEOUT, env.DEFAULT_HTTP_TIMEOUT, positive=True),
        app_wait=_float(env.APP_WAIT, env.DEFAULT_APP_WAIT),
        termination_log=_termination_log(),
        analysis_uid=_get(env.ANALYSIS_UID, required=False),
        run_uid=_get(env.RUN_UID, required=False),
        app_startup=_app_startup(),
    )
    return run_analyze(cfg)


def cmd_analysis_manifest() -> int:
    from mmif_operator.runner.analysis import run_analysis_manifest

    analysis_uid = _get(env.ANALYSIS_UID, required=False)
    states, reasons = _manifest_inputs(analysis_uid)
    return run_analysis_manifest(
        _abs(env.RUN_DIR),
        _abs(env.ANALYSIS_DIR),
        _get(env.ANALYSIS_NAME, ""),
        _get(env.RUN_PHASE, ""),
        states,
        _termination_log(),
        failure_reasons=reasons,
        analysis_uid=analysis_uid,
        run_uid=_get(env.RUN_UID, required=False),
    )


def cmd_dispose() -> int:
    from mmif_operator.runner.dispose import ARCHIVE, DELETE, DisposeConfig, run_dispose

    action = _get(env.WIP_ACTION)
    if action not in (DELETE, ARCHIVE):
        raise ConfigError(f"{env.WIP_ACTION}={action!r}: expected {DELETE} or {ARCHIVE}")
    cfg = DisposeConfig(
        workspace=_abs(env.WORKSPACE),
        run_dir=_abs(env.RUN_DIR),
        archive_dir=_abs(env.ARCHIVE_DIR),
        run_uid=_get(env.RUN_UID, required=False),
        action=action,
        termination_log=_termination_log(),
    )
    return run_dispose(cfg)


COMMANDS = {
    "prepare": cmd_prepare,
    "step": cmd_step,
    "manifest": cmd_manifest,
    "publish": cmd_publish,
    "analyze": cmd_analyze,
    "analysis-manifest": cmd_analysis_manifest,
    "dispose": cmd_dispose,
}


def _termination_log() -> str:
    return os.environ.get(env.TERMINATION_LOG) or env.DEFAULT_TERMINATION_LOG


def _on_sigterm(signum, frame):  # the Job is being deleted (cancel, timeout): clean up and go
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["show"]:  # the plugin's reader pod: arguments, not the step pods' environment
        from mmif_operator.results import show

        return show.main(argv[1:])
    parser = argparse.ArgumentParser(prog="mmif-runner", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2, which would read as "infrastructure, retry"
        return int(ExitCode.INVALID_CONFIG) if e.code else int(ExitCode.OK)
    logging.basicConfig(
        level=os.environ.get("MMIF_LOG_LEVEL", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command]()
    except ConfigError as e:
        files.write_termination(_termination_log(), {"reason": Reason.INVALID_CONFIG, "message": str(e)})
        return int(ExitCode.INVALID_CONFIG)
    except Exception as e:  # noqa: BLE001 - never exit 1 (= app error) by accident
        log.error("unexpected error: %s", traceback.format_exc())
        files.write_termination(
            _termination_log(), {"reason": Reason.RUNNER_ERROR, "message": f"{type(e).__name__}: {e}"}
        )
        return int(ExitCode.INFRA)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
