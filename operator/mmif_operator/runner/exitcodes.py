"""Exit codes and reasons of `mmif-runner` (docs/design.md, "Runner exit codes").

The Job builder's podFailurePolicy uses these: FAIL_JOB codes must end the Job at once (never
retried); any other non-zero code is retried up to the step's `retries` (backoffLimit).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    APP_ERROR = 1  # the app reported an error; the failed MMIF is kept
    INFRA = 2  # connection refused, 502/503/504/429, timeout, app never listened, I/O error
    INVALID_OUTPUT = 3  # not JSON, not valid MMIF, no new view signed by the step's app, too long
    INVALID_INPUT = 4  # prepare: bad items; step: the item's input MMIF is missing or invalid
    OUTPUT_CONFLICT = 5  # the run folder belongs to another run (.run-uid differs)
    INVALID_CONFIG = 6  # the runner's environment is missing or malformed (an operator bug)
    APP_NOT_LISTENING = 7  # the pod's own app (the sidecar) did not listen within its startup timeout


OK = ExitCode.OK
APP_ERROR = ExitCode.APP_ERROR
INFRA = ExitCode.INFRA
INVALID_OUTPUT = ExitCode.INVALID_OUTPUT
INVALID_INPUT = ExitCode.INVALID_INPUT
OUTPUT_CONFLICT = ExitCode.OUTPUT_CONFLICT
INVALID_CONFIG = ExitCode.INVALID_CONFIG
APP_NOT_LISTENING = ExitCode.APP_NOT_LISTENING

#: exit codes that must fail the Job without retry (podFailurePolicy action FailJob)
FAIL_JOB = (APP_ERROR, INVALID_OUTPUT, INVALID_INPUT, OUTPUT_CONFLICT, INVALID_CONFIG, APP_NOT_LISTENING)
#: exit codes the Job retries (anything non-zero not in FAIL_JOB, e.g. 143 after SIGTERM, counts too)
RETRIABLE = (INFRA,)


class Reason:
    """`reason` values of termination messages and step result records."""

    SUCCEEDED = "Succeeded"
    APP_ERROR = "AppError"
    APP_UNREACHABLE = "AppUnreachable"  # refused, reset, DNS, never listened: exit 2
    APP_UNAVAILABLE = "AppUnavailable"  # HTTP 502/503/504/429, and 404/405/421 (not the app yet): exit 2
    APP_TIMEOUT = "AppTimeout"  # no answer within MMIF_HTTP_TIMEOUT: exit 2
    APP_NOT_LISTENING = "AppNotListening"  # the sidecar app never listened on its port: exit 7
    INVALID_OUTPUT = "InvalidOutput"
    OUTPUT_TOO_LARGE = "OutputTooLarge"  # the answer is longer than the runner reads: exit 3
    INVALID_ITEMS = "InvalidItems"  # prepare, exit 4
    INVALID_INPUT = "InvalidInput"  # step, exit 4
    RECORD_NOT_FOUND = "RecordNotFound"  # step 0 of an item whose record prepare could not read: exit 4
    RECORD_CORRUPT = "RecordCorrupt"  # ... whose record's bytes are not its sha256: exit 4
    OUTPUT_CONFLICT = "OutputConflict"
    INVALID_CONFIG = "InvalidConfig"
    RUNNER_ERROR = "RunnerError"  # unexpected exception in the runner (I/O...): exit 2
