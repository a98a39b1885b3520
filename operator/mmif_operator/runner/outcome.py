"""Classify a CLAMS app's answer: success, app error, or invalid output.

CLAMS apps sign the views they write (`view.metadata.app` = the app's identifier). A step
succeeded when the answer is valid MMIF (mmif-python) holding a NEW view signed by the step's app
and no error from it. An app error is HTTP 500 + MMIF with an error view, or a 200 answer holding
an error view from the app. Because the SDK reuses an app's latest view for its error when the
same app already ran earlier in the chain, errors are found by comparing the app's views with the
input, not by counting views.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from mmif import Mmif, View

from mmif_operator.runner.exitcodes import ExitCode, Reason


class Kind(enum.Enum):
    SUCCEEDED = "Succeeded"
    APP_ERROR = "AppError"
    INVALID = "InvalidOutput"


@dataclass
class Outcome:
    kind: Kind
    message: str
    output: bytes | None = None  # the MMIF to keep (success, or the failed MMIF of an app error)
    new_views: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return {
            Kind.SUCCEEDED: Reason.SUCCEEDED,
            Kind.APP_ERROR: Reason.APP_ERROR,
            Kind.INVALID: Reason.INVALID_OUTPUT,
        }[self.kind]

    @property
    def exit_code(self) -> ExitCode:
        return {
            Kind.SUCCEEDED: ExitCode.OK,
            Kind.APP_ERROR: ExitCode.APP_ERROR,
            Kind.INVALID: ExitCode.INVALID_OUTPUT,
        }[self.kind]


def same_app(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().rstrip("/") == b.strip().rstrip("/"))


def error_text(view: View) -> str:
    err = view.metadata.error
    message = getattr(err, "message", None) if not isinstance(err, dict) else err.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    return (view.get_error() or "error view without a message").strip()


def _error_dict(view: View) -> str:
    return (
        view.metadata.error.serialize()
        if hasattr(view.metadata.error, "serialize")
        else json.dumps(view.metadata.error, sort_keys=True)
    )


def _first_line(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return " ".join(text.split())[:limit] or "(empty body)"


def parse_mmif(body: bytes | str) -> Mmif:
    """Parse and validate with mmif-python. Any failure raises ValueError: besides schema errors,
    mmif-python can raise TypeError/KeyError/ValueError while reading odd but schema-valid MMIF
    (e.g. an `Annotation`-typed annotation without a `document` property)."""
    try:
        return Mmif(body)
    except Exception as e:  # noqa: BLE001 - every reason the SDK cannot read it
        detail = getattr(e, "message", None) or str(e) or type(e).__name__
        raise ValueError(f"{type(e).__name__}: {' '.join(str(detail).split())[:500]}") from None


@dataclass(frozen=True)
class InputViews:
    """What `classify` needs of the input MMIF: its views' ids and error dicts (None: no error).
    Kept instead of the parsed input, so the input's objects are freed before the answer is
    parsed (the runner's memory holds one parsed MMIF at a time)."""

    errors: dict[str, str | None]

    @classmethod
    def of(cls, mmif: Mmif) -> InputViews:
        return cls({v.id: (_error_dict(v) if v.has_error() else None) for v in mmif.views})


def classify(
    status: int, content_type: str, body: bytes, input_mmif: Mmif | InputViews, app_id: str
) -> Outcome:
    """Decide the step's outcome from the app's answer (retriable statuses never get here)."""
    if status not in (200, 500):
        return Outcome(
            Kind.INVALID, f"the app answered HTTP {status} ({content_type or 'no type'}): {_first_line(body)}"
        )
    try:
        json.loads(body)
    except ValueError:
        if status == 500:
            return Outcome(
                Kind.INVALID,
                f"the app answered HTTP 500 {content_type or ''} "
                f"(it rejected its input): {_first_line(body)}",
            )
        return Outcome(
            Kind.INVALID, f"the app's answer is not JSON ({content_type or 'no type'}): {_first_line(body)}"
        )
    try:
        out = parse_mmif(body)
    except ValueError as e:
        return Outcome(Kind.INVALID, f"the app's answer (HTTP {status}) is not valid MMIF: {e}")

    before = (input_mmif if isinstance(input_mmif, InputViews) else InputViews.of(input_mmif)).errors
    mine = [v for v in out.views if same_app(v.metadata.app, app_id)]
    new = [v for v in mine if v.id not in before]
    # an error is "from this step" when its view is new, or was rewritten with an error
    fresh_errors = [
        v
        for v in mine
        if v.has_error() and (v.id not in before or before[v.id] is None or before[v.id] != _error_dict(v))
    ]
    warnings = [w for v in new for w in (v.metadata.warnings or [])]
    new_ids = [v.id for v in new]

    if status == 500:
        errors = fresh_errors or [v for v in mine if v.has_error()]
        if not errors:
            return Outcome(
                Kind.INVALID, f"the app answered HTTP 500 with MMIF but no error view signed by {app_id}"
            )
        return Outcome(
            Kind.APP_ERROR, error_text(errors[-1]), output=body, new_views=new_ids, warnings=warnings
        )
    if fresh_errors:
        return Outcome(
            Kind.APP_ERROR, error_text(fresh_errors[-1]), output=body, new_views=new_ids, warnings=warnings
        )
    lost = [vid for vid in before if vid not in {v.id for v in out.views}]
    if lost:
        return Outcome(Kind.INVALID, f"the app's answer lost view(s) of earlier steps: {', '.join(lost)}")
    if not new:
        others = sorted({v.metadata.app for v in out.views if v.id not in before})
        hint = f" (new views are signed by {', '.join(others)})" if others else ""
        return Outcome(Kind.INVALID, f"the app's answer holds no new view signed by {app_id}{hint}")
    return Outcome(
        Kind.SUCCEEDED,
        f"new view(s) {', '.join(new_ids)} from {app_id}",
        output=body,
        new_views=new_ids,
        warnings=warnings,
    )
