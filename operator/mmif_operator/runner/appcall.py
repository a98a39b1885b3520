"""Call the app for one item, the same way for a step and for an analysis: wait for it (the
pod's sidecar, or a Service), ask who it is, POST the input MMIF, and classify the answer.

An infrastructure failure becomes a `Failure` (exit code, reason, message) for the caller's
`finish`; an answer becomes an `Outcome` (runner/outcome.py). The caller's result record gets
the app's identity (`app`) and the HTTP status (`httpStatus`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from mmif_operator.runner import appclient
from mmif_operator.runner.exitcodes import ExitCode, Reason
from mmif_operator.runner.outcome import InputViews, Outcome, classify

log = logging.getLogger("mmif-runner")


class AppTarget(Protocol):
    """What a step's or an analysis's config says about its app."""

    @property
    def app_url(self) -> str: ...
    @property
    def params(self) -> dict: ...
    @property
    def http_timeout(self) -> float: ...
    @property
    def app_wait(self) -> float: ...
    @property
    def app_startup(self) -> float | None: ...  # the app is this pod's sidecar: seconds it may take


@dataclass(frozen=True)
class Failure:
    """The app could not be asked (or answered as no CLAMS app can): the runner exits with it."""

    code: int
    reason: str
    message: str


def call_app(
    target: AppTarget, in_bytes: bytes, in_views: InputViews, record: dict[str, Any], what: str
) -> Outcome | Failure:
    """POST `in_bytes` to the app of `target` and classify its answer; `what` names the item
    and input in the log line."""
    try:
        if target.app_startup is not None:
            appclient.wait_for_sidecar(target.app_url, target.app_startup)
        else:
            appclient.wait_for_app(target.app_url, target.app_wait)
        app_id = appclient.identity(target.app_url, min(target.http_timeout, 60.0))
        record["app"] = app_id
        log.info("%s: POST to %s", what, app_id)
        resp = appclient.annotate(target.app_url, in_bytes, target.params, target.http_timeout)
    except appclient.NotListeningError as e:
        return Failure(ExitCode.APP_NOT_LISTENING, Reason.APP_NOT_LISTENING, str(e))
    except appclient.InfraError as e:
        return Failure(ExitCode.INFRA, e.reason, e.message)
    except appclient.NotAnAppError as e:
        return Failure(ExitCode.INVALID_OUTPUT, Reason.INVALID_OUTPUT, str(e))
    except appclient.TooLargeError as e:
        return Failure(ExitCode.INVALID_OUTPUT, Reason.OUTPUT_TOO_LARGE, str(e))
    record["httpStatus"] = resp.status
    log.info(
        "%s: the app answered HTTP %d (%s, %d bytes)", what, resp.status, resp.content_type, len(resp.body)
    )
    return classify(resp.status, resp.content_type, resp.body, in_views, app_id)
