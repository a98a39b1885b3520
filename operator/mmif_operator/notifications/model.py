"""Notifications: whom a Pipeline's runs tell about their transitions, and what became of it.

`Pipeline.spec.notifications` lists targets, each a webhook (an HTTP POST of a CloudEvents 1.0
event) or an email (SMTP), with the events it wants. A run records one delivery per target and
event in `status.notifications` (the outbox), in the same status patch as the transition that
asked for it; the operator delivers it beside the run's loop, at least once, with retries and
backoff (operator/mmif_operator/notifications/). Every default and bound is declared here.

Secrets: a target names only Secrets of the pipeline's own namespace, and the operator reads only
Secrets labelled `mmif.dev/notifications: "true"` (`SECRET_LABEL`): whoever may write Secrets
opts one in, so a user who may write Pipelines but not read Secrets cannot have one sent out.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from mmif_operator.core.cel import Rule
from mmif_operator.core.model import DNS_LABEL, DNS_SUBDOMAIN, SpecModel, StatusModel, Timestamp, list_map


class NotificationEvent(enum.StrEnum):
    """A run's transitions that send notifications (the state-machine table names them), a
    Monitor's health changes (`HealthChanged`, sent only to a Monitor's own targets), and a
    Project's events (`DisposalNotice`, `ProjectClosed`, `SharedRecords`: sent only to a
    Project's own targets)."""

    RUN_SUCCEEDED = "RunSucceeded"
    RUN_FAILED = "RunFailed"
    AWAITING_REVIEW = "AwaitingReview"
    REVIEW_PASSED = "ReviewPassed"
    REVIEW_FAILED = "ReviewFailed"
    PUBLISH_FAILED = "PublishFailed"
    CONFLICTS_FOUND = "ConflictsFound"
    HEALTH_CHANGED = "HealthChanged"
    DISPOSAL_NOTICE = "DisposalNotice"
    PROJECT_CLOSED = "ProjectClosed"
    SHARED_RECORDS = "SharedRecords"


PROJECT_EVENTS = frozenset(
    {NotificationEvent.DISPOSAL_NOTICE, NotificationEvent.PROJECT_CLOSED, NotificationEvent.SHARED_RECORDS}
)


MAX_TARGETS = 8
MAX_RECIPIENTS = 16
MAX_EVENTS = len(NotificationEvent)
MAX_DELIVERIES = MAX_TARGETS * MAX_EVENTS  # one per target and event, whatever happens
MAX_SUBJECT = 512
MAX_BODY = 8192
MAX_DELIVERY_MESSAGE = 512
MAX_DELIVERY_ERROR = 512
DEFAULT_MAX_ATTEMPTS = 8
MAX_ATTEMPTS = 16
DEFAULT_BACKOFF_SECONDS = 15
MAX_BACKOFF_SECONDS = 3600  # no wait between two attempts is longer than this
WEBHOOK_TIMEOUT_SECONDS = 10.0
SMTP_TIMEOUT_SECONDS = 20.0

SECRET_LABEL = "mmif.dev/notifications"
SECRET_LABEL_VALUE = "true"
SIGNATURE_HEADER = "X-Mmif-Signature"
CLOUDEVENT_TYPE_PREFIX = "dev.mmif.pipelinerun."
MONITOR_CLOUDEVENT_TYPE_PREFIX = "dev.mmif.monitor."
PROJECT_CLOUDEVENT_TYPE_PREFIX = "dev.mmif.project."

PLACEHOLDERS = (
    "run",
    "namespace",
    "uid",
    "pipeline",
    "phase",
    "event",
    "reason",
    "message",
    "manifestPath",
    "monitor",
    "health",
    "previousHealth",
    "project",
)
"""What a subject or body template may name as `{placeholder}`; anything else stays as written
(`monitor`, `health`, `previousHealth`: a Monitor's HealthChanged; `project`: a Project's events
(with `namespace`, `uid`, `phase`, `event`, `reason`, `message`); `run`...: a run's events)."""

DEFAULT_SUBJECT = "[mmif] {namespace}/{run}: {event}"
DEFAULT_BODY = (
    "PipelineRun {namespace}/{run} ({pipeline}): {event}.\n"
    "\n"
    "Phase: {phase}\n"
    "Reason: {reason}\n"
    "Message: {message}\n"
    "Manifest: {manifestPath}\n"
)
DEFAULT_SUBJECTS: dict[NotificationEvent, str] = {
    NotificationEvent.RUN_SUCCEEDED: "[mmif] {namespace}/{run} succeeded",
    NotificationEvent.RUN_FAILED: "[mmif] {namespace}/{run} failed: {reason}",
    NotificationEvent.AWAITING_REVIEW: "[mmif] {namespace}/{run} awaits review",
    NotificationEvent.REVIEW_PASSED: "[mmif] {namespace}/{run} passed review",
    NotificationEvent.REVIEW_FAILED: "[mmif] {namespace}/{run} failed review",
    NotificationEvent.PUBLISH_FAILED: "[mmif] {namespace}/{run}: publishing failed",
    NotificationEvent.CONFLICTS_FOUND: "[mmif] {namespace}/{run}: publishing blocked by conflicts",
    NotificationEvent.HEALTH_CHANGED: "[mmif] monitor {namespace}/{monitor}: {health}",
    NotificationEvent.DISPOSAL_NOTICE: "[mmif] project {project}: work in progress to be deleted",
    NotificationEvent.PROJECT_CLOSED: "[mmif] project {project} closed",
    NotificationEvent.SHARED_RECORDS: "[mmif] project {project}: records shared with other projects",
}
"""The subject of each event's email unless the target's `messages` says otherwise; the body is
`DEFAULT_BODY` for every run event, `DEFAULT_MONITOR_BODY` for HealthChanged,
`DEFAULT_PROJECT_BODY` for a Project's events."""

DEFAULT_MONITOR_BODY = "Monitor {namespace}/{monitor}: {previousHealth} -> {health}.\n\n{message}\n"
DEFAULT_PROJECT_BODY = "Project {project} (namespace {namespace}): {event}.\n\nPhase: {phase}\n\n{message}\n"

_URL = r"^https?://[^\s/?#]+([/?#][^\s]*)?$"
_SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
_ADDRESS = r"^[^\s@<>]+@[^\s@<>]+$"
Address = Annotated[str, Field(pattern=_ADDRESS, max_length=254)]
"""An email address (`name@domain`)."""
_HOST = r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$"


class SecretKeyRef(SpecModel):
    """One key of a Secret in the pipeline's namespace (labelled `mmif.dev/notifications: "true"`)."""

    name: str = Field(description="The Secret's name.", pattern=DNS_SUBDOMAIN, max_length=253)
    key: str = Field(description="The key in the Secret's data.", pattern=_SECRET_KEY, max_length=253)


class SecretRef(SpecModel):
    """A Secret in the pipeline's namespace (labelled `mmif.dev/notifications: "true"`)."""

    name: str = Field(description="The Secret's name.", pattern=DNS_SUBDOMAIN, max_length=253)


class RetryPolicy(SpecModel):
    """How often a delivery is tried. The n-th failed attempt waits `backoffSeconds * 2^(n-1)`
    seconds (at most one hour) before the next; with the defaults, 8 attempts over about 32 min."""

    max_attempts: int = Field(
        DEFAULT_MAX_ATTEMPTS,
        description="Attempts before giving up (the delivery is then `Failed`, with a Warning Event).",
        ge=1,
        le=MAX_ATTEMPTS,
    )
    backoff_seconds: int = Field(
        DEFAULT_BACKOFF_SECONDS,
        description="The wait after the first failed attempt; it doubles after each further one.",
        ge=1,
        le=MAX_BACKOFF_SECONDS,
    )


class CloudEventMode(enum.StrEnum):
    STRUCTURED = "Structured"
    BINARY = "Binary"


class WebhookTarget(SpecModel):
    """An HTTP endpoint that receives each event as a CloudEvents 1.0 HTTP POST."""

    url: str = Field(
        description="Where to POST (http or https). It may not name one of the operator's app "
        "Services of another namespace (checked at admission, as step urls are).",
        pattern=_URL,
        max_length=2048,
    )
    mode: CloudEventMode = Field(
        CloudEventMode.STRUCTURED,
        description="`Structured` (the whole event as `application/cloudevents+json`) or `Binary` "
        "(attributes in `ce-*` headers, the data as the JSON body).",
    )
    bearer_token_secret_ref: SecretKeyRef | None = Field(
        None, description="Send `Authorization: Bearer <the key's value>`."
    )
    hmac_secret_ref: SecretKeyRef | None = Field(
        None,
        description="Sign the body: header `X-Mmif-Signature: sha256=<hex HMAC-SHA256 of the "
        "exact body bytes, keyed with the key's value>`.",
    )


class SmtpTls(enum.StrEnum):
    NONE = "None"
    START_TLS = "StartTLS"
    TLS = "TLS"


class SmtpServer(SpecModel):
    """The SMTP server that takes the mail."""

    host: str = Field(description="Its host name or address.", pattern=_HOST, max_length=253)
    port: int = Field(
        587, description="Its port (587 for StartTLS, 465 for TLS, 25 for None).", ge=1, le=65535
    )
    tls: SmtpTls = Field(
        SmtpTls.START_TLS,
        description="`StartTLS` (upgrade the connection, required), `TLS` (TLS from the first "
        "byte) or `None` (plain text: only for a server on a trusted network).",
    )


class EmailMessage(SpecModel):
    """The subject and body of one event's email. Placeholders: `{run}`, `{namespace}`, `{uid}`,
    `{pipeline}`, `{phase}`, `{event}`, `{reason}`, `{message}`, `{manifestPath}` (a Project's
    events: `{project}` instead of the run's)."""

    event: NotificationEvent = Field(description="The event this message is for.")
    subject: str | None = Field(None, description="The subject template.", max_length=MAX_SUBJECT)
    body: str | None = Field(None, description="The body template (plain text).", max_length=MAX_BODY)


class EmailTarget(SpecModel):
    """Mail to a list of addresses, through an SMTP server."""

    smtp: SmtpServer = Field(description="The SMTP server.")
    credentials_secret_ref: SecretRef | None = Field(
        None,
        description="A Secret with keys `username` and `password` to log in with (none: no login).",
    )
    from_: Address = Field(alias="from", description="The sender address.")
    to: list[Address] = Field(description="The recipients.", min_length=1, max_length=MAX_RECIPIENTS)
    messages: list[EmailMessage] = Field(
        default_factory=list,
        description="Subject and body per event; an event without an entry (or a field left out) "
        "gets the default: subject `[mmif] <namespace>/<run> succeeded` (and so on per event), a "
        "body naming the run, phase, reason, message and manifest path.",
        max_length=MAX_EVENTS,
        json_schema_extra=list_map("event"),
    )


class NotificationTarget(SpecModel):
    """One receiver of a pipeline's run notifications: exactly one of `webhook` or `email`."""

    name: str = Field(
        description="The target's name, unique in the pipeline (a DNS label).",
        pattern=DNS_LABEL,
        max_length=63,
    )
    events: list[NotificationEvent] = Field(
        description="The events this target hears about: `RunSucceeded`, `RunFailed`, "
        "`AwaitingReview`, `ReviewPassed`, `ReviewFailed`, `PublishFailed`, `ConflictsFound` (a "
        "passed run whose publishing conflicts blocked) (a Pipeline's runs), "
        "`HealthChanged` (a Monitor's health), `DisposalNotice`, `ProjectClosed`, "
        "`SharedRecords` (a Project's). Nothing else decides which target gets what (a "
        "publish-failed list is a target with `events: [PublishFailed]`).",
        min_length=1,
        max_length=MAX_EVENTS,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    webhook: WebhookTarget | None = Field(None, description="POST a CloudEvent.")
    email: EmailTarget | None = Field(None, description="Send an email.")
    retry: RetryPolicy = Field(
        default_factory=lambda: RetryPolicy.model_validate({}), description="Attempts and backoff."
    )

    cel_rules = (
        Rule(
            "has(self.webhook) != has(self.email)",
            "exactly one of webhook or email must be set",
            check=lambda t: (t.webhook is None) != (t.email is None),
        ),
    )


# -- status: the outbox ------------------------------------------------------------------------


class DeliveryState(enum.StrEnum):
    PENDING = "Pending"
    DELIVERED = "Delivered"
    FAILED = "Failed"


class Delivery(StatusModel):
    """One event for one target: tried until delivered, or given up on."""

    id: str = Field(
        description="The CloudEvent id: the same on every attempt (uuid5 of the run's uid, the "
        "event and the target), so receivers can deduplicate.",
        max_length=64,
    )
    target: str = Field(description="The target's name.", max_length=63)
    event: NotificationEvent = Field(description="The event.")
    state: DeliveryState = Field(description="`Pending`, `Delivered` or `Failed` (given up).")
    time: Timestamp = Field(description="When the event happened (the CloudEvent's `time`).")
    phase: str | None = Field(None, description="The run's phase after the transition.", max_length=32)
    reason: str | None = Field(None, description="The run's Succeeded reason after it.", max_length=128)
    message: str | None = Field(
        None, description="The transition's message (cut).", max_length=MAX_DELIVERY_MESSAGE
    )
    attempts: int = Field(0, description="Attempts made so far.", ge=0)
    next_attempt_at: Timestamp | None = Field(
        None, description="When the next attempt is due (Pending only)."
    )
    last_attempt_at: Timestamp | None = Field(None, description="When the last attempt was made.")
    last_error: str | None = Field(
        None, description="Why the last attempt failed (cut).", max_length=MAX_DELIVERY_ERROR
    )


class RunNotifications(StatusModel):
    """The run's notifications: one delivery per target and event, and their counts."""

    pending: int = Field(0, description="Deliveries still being tried.", ge=0)
    delivered: int = Field(0, description="Deliveries the receiver accepted.", ge=0)
    failed: int = Field(0, description="Deliveries given up on.", ge=0)
    deliveries: list[Delivery] = Field(
        default_factory=list,
        description="One entry per target and event, in the order the events happened.",
        max_length=MAX_DELIVERIES,
        json_schema_extra=list_map("target", "event"),
    )
