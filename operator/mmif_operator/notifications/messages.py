"""What a delivery sends: the CloudEvent of a webhook, the email of an email target. Pure.

The CloudEvent (specversion 1.0, built with the `cloudevents` SDK):
* `id`: the delivery's id (the same on every attempt); `type`: `dev.mmif.pipelinerun.<event>`
  (`succeeded`, `failed`, `awaiting-review`, `review-passed`, `review-failed`,
  `publish-failed`, `conflicts-found`); `source`: `/apis/mmif.dev/v1alpha1/namespaces/<ns>/pipelineruns/<name>`;
  `subject`: the run's name; `time`: when the transition happened;
* `data` (JSON): `run`, `namespace`, `uid`, `pipeline`, `event`, `phase`, `reason`, `message`,
  `manifestPath`, and `review` (`decision`, `comment`, `reviewer`, `decidedAt`) once decided.
* a Monitor's `HealthChanged`: `type` `dev.mmif.monitor.health-changed`, `source`
  `/apis/mmif.dev/v1alpha1/namespaces/<ns>/monitors/<name>`; `data`: `monitor`, `namespace`,
  `uid`, `event`, `health`, `previousHealth`, `message` (the test and its failed activity).
* a Project's events: `type` `dev.mmif.project.<event>` (`disposal-notice`, `closed`,
  `shared-records`), `source` `/apis/mmif.dev/v1alpha1/projects/<name>` (cluster-scoped);
  `data`: `project`, `namespace` (the project's), `uid`, `event`, `phase`, `reason`, `message`.

An HMAC signature covers the exact body bytes sent: `X-Mmif-Signature: sha256=<hex>`.
"""

from __future__ import annotations

import email.message
import email.utils
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from mmif_operator.core.model import API_VERSION
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.notifications.model import (
    CLOUDEVENT_TYPE_PREFIX,
    DEFAULT_BODY,
    DEFAULT_MONITOR_BODY,
    DEFAULT_PROJECT_BODY,
    DEFAULT_SUBJECTS,
    MONITOR_CLOUDEVENT_TYPE_PREFIX,
    PLACEHOLDERS,
    PROJECT_CLOUDEVENT_TYPE_PREFIX,
    PROJECT_EVENTS,
    SIGNATURE_HEADER,
    CloudEventMode,
    Delivery,
    EmailTarget,
    NotificationEvent,
)
from mmif_operator.notifications.outbox import Outcome

EVENT_TYPES: dict[NotificationEvent, str] = {
    NotificationEvent.RUN_SUCCEEDED: "succeeded",
    NotificationEvent.RUN_FAILED: "failed",
    NotificationEvent.AWAITING_REVIEW: "awaiting-review",
    NotificationEvent.REVIEW_PASSED: "review-passed",
    NotificationEvent.REVIEW_FAILED: "review-failed",
    NotificationEvent.PUBLISH_FAILED: "publish-failed",
    NotificationEvent.CONFLICTS_FOUND: "conflicts-found",
    NotificationEvent.HEALTH_CHANGED: "health-changed",
    NotificationEvent.DISPOSAL_NOTICE: "disposal-notice",
    NotificationEvent.PROJECT_CLOSED: "closed",
    NotificationEvent.SHARED_RECORDS: "shared-records",
}
MONITOR_KIND, MONITOR_PLURAL = "Monitor", "monitors"  # kinds/monitor/model.py (imports this package)
PROJECT_KIND, PROJECT_PLURAL = "Project", "projects"  # kinds/project/model.py (cluster-scoped)
RETRIED_4XX = (408, 425, 429)  # a client error that says "later"


def event_type(event: NotificationEvent) -> str:
    if event is NotificationEvent.HEALTH_CHANGED:
        return MONITOR_CLOUDEVENT_TYPE_PREFIX + EVENT_TYPES[event]
    if event in PROJECT_EVENTS:
        return PROJECT_CLOUDEVENT_TYPE_PREFIX + EVENT_TYPES[event]
    return CLOUDEVENT_TYPE_PREFIX + EVENT_TYPES[event]


def event_source(namespace: str, name: str, plural: str = RUN_PLURAL) -> str:
    """The object's API path (namespace "": a cluster-scoped object, a Project)."""
    if not namespace:
        return f"/apis/{API_VERSION}/{plural}/{name}"
    return f"/apis/{API_VERSION}/namespaces/{namespace}/{plural}/{name}"


def _is_monitor(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == MONITOR_KIND


def _is_project(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == PROJECT_KIND


def secrets_namespace(obj: Mapping[str, Any]) -> str:
    """Where the Secrets an object's targets name are: its namespace; a Project's: the project's
    namespace (of its name)."""
    meta = obj.get("metadata") or {}
    return str(meta.get("name") or "") if _is_project(obj) else str(meta.get("namespace") or "")


def event_data(run: Mapping[str, Any], delivery: Delivery) -> dict[str, Any]:
    """The CloudEvent's data, also the values of an email's placeholders (`values`). For a
    Monitor (`run` is the Monitor): the monitor, its health after and before the change (the
    delivery's `phase` and `reason`) and the change's message."""
    meta = run.get("metadata") or {}
    if _is_project(run):
        return {
            "project": meta.get("name", ""),
            "namespace": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "event": delivery.event.value,
            "phase": delivery.phase or "",
            "reason": delivery.reason or "",
            "message": delivery.message or "",
        }
    if _is_monitor(run):
        return {
            "monitor": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "event": delivery.event.value,
            "health": delivery.phase or "",
            "previousHealth": delivery.reason or "",
            "message": delivery.message or "",
        }
    spec = run.get("spec") or {}
    status = run.get("status") or {}
    data: dict[str, Any] = {
        "run": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "uid": meta.get("uid", ""),
        "pipeline": (spec.get("pipelineRef") or {}).get("name", ""),
        "event": delivery.event.value,
        "phase": delivery.phase or "",
        "reason": delivery.reason or "",
        "message": delivery.message or "",
        "manifestPath": status.get("manifestPath") or "",
    }
    review = spec.get("review")
    if isinstance(review, Mapping) and review.get("decision"):
        data["review"] = {
            k: review[k]
            for k in ("decision", "comment", "reviewer", "decidedAt")
            if review.get(k) is not None
        }
    return data


def cloud_event(run: Mapping[str, Any], delivery: Delivery) -> CloudEvent:
    meta = run.get("metadata") or {}
    return CloudEvent(
        attributes={
            "specversion": "1.0",
            "id": delivery.id,
            "type": event_type(delivery.event),
            "source": event_source(
                "" if _is_project(run) else meta.get("namespace", ""),
                meta.get("name", ""),
                MONITOR_PLURAL if _is_monitor(run) else PROJECT_PLURAL if _is_project(run) else RUN_PLURAL,
            ),
            "subject": meta.get("name", ""),
            "time": delivery.time,
            "datacontenttype": "application/json",
        },
        data=event_data(run, delivery),
    )


def signature(key: bytes, body: bytes) -> str:
    """The value of `X-Mmif-Signature`: `sha256=` and the hex HMAC-SHA256 of `body`."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def http_request(
    event: CloudEvent,
    mode: CloudEventMode,
    *,
    bearer_token: str | None = None,
    hmac_key: bytes | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body of the POST carrying `event`."""
    message = (
        ce_http.to_binary_event(event)
        if mode is CloudEventMode.BINARY
        else ce_http.to_structured_event(event)
    )
    headers = dict(message.headers)
    body = bytes(message.body)
    if bearer_token:
        headers["Authorization"] = f"Bearer {bearer_token}"
    if hmac_key is not None:
        headers[SIGNATURE_HEADER] = signature(hmac_key, body)
    return headers, body


def http_outcome(status: int, text: str = "") -> Outcome:
    """2xx: delivered; 408/425/429 and 5xx (and anything else): retried; other 4xx: permanent."""
    if 200 <= status < 300:
        return Outcome(True)
    detail = f"HTTP {status}" + (f": {text.strip()[:200]}" if text.strip() else "")
    permanent = 400 <= status < 500 and status not in RETRIED_4XX
    return Outcome(False, permanent=permanent, error=detail)


_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def render(template: str, values: Mapping[str, Any]) -> str:
    """`template` with each `{placeholder}` of PLACEHOLDERS replaced; any other brace stays as
    written (no format-string attribute access, no error on a stray `{`)."""
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), template)


def email_texts(target: EmailTarget, event: NotificationEvent) -> tuple[str, str]:
    """The subject and body templates of `event` for `target` (its `messages`, else the defaults)."""
    entry = next((m for m in target.messages if m.event is event), None)
    subject = entry.subject if entry is not None and entry.subject is not None else DEFAULT_SUBJECTS[event]
    default_body = (
        DEFAULT_MONITOR_BODY
        if event is NotificationEvent.HEALTH_CHANGED
        else DEFAULT_PROJECT_BODY
        if event in PROJECT_EVENTS
        else DEFAULT_BODY
    )
    body = entry.body if entry is not None and entry.body is not None else default_body
    return subject, body


def email_message(
    target: EmailTarget, run: Mapping[str, Any], delivery: Delivery, *, now: datetime | None = None
) -> email.message.EmailMessage:
    """The email of `delivery`. Its Message-ID derives from the delivery id, so a repeated
    attempt is the same message to a mail system that deduplicates."""
    values = event_data(run, delivery)
    subject_t, body_t = email_texts(target, delivery.event)
    msg = email.message.EmailMessage()
    msg["From"] = target.from_
    msg["To"] = ", ".join(target.to)
    # Header values: one line (a template could hold a newline, a message does).
    msg["Subject"] = " ".join(render(subject_t, values).split())
    msg["Message-ID"] = f"<{delivery.id}@mmif.dev>"
    msg["Date"] = email.utils.format_datetime(now or delivery.time)
    msg["X-Mmif-Event"] = delivery.event.value
    if "project" in values:
        msg["X-Mmif-Project"] = values["project"]
    elif "monitor" in values:
        msg["X-Mmif-Monitor"] = f"{values['namespace']}/{values['monitor']}"
    else:
        msg["X-Mmif-Run"] = f"{values['namespace']}/{values['run']}"
    msg.set_content(render(body_t, values))
    return msg
