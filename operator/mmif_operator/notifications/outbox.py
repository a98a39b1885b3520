"""The outbox in a run's `status.notifications`: which deliveries a transition makes, which are
due, and what an attempt's outcome does to them. Pure: no I/O, times passed in.

* `queue`: the run handler calls it with the plan's `notifications` (the table's `Notify`
  actions) and the run's targets; the new entries go into the same status patch as the
  transition, so a crash between the two cannot lose one.
* `due` / `seconds_to_next`: what the delivery loop sends now, and when to look again.
* `record`: an attempt's outcome; delivered, retried after a backoff, or given up on after the
  target's `retry.maxAttempts` (or at once for a permanent failure).

Bounded whatever happens: one entry per target and event (a repeated event, e.g. a transition
planned again after a conflict, adds nothing), at most `MAX_DELIVERIES`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from mmif_operator.core.status import cut
from mmif_operator.notifications.model import (
    MAX_BACKOFF_SECONDS,
    MAX_DELIVERIES,
    MAX_DELIVERY_ERROR,
    MAX_DELIVERY_MESSAGE,
    Delivery,
    DeliveryState,
    NotificationEvent,
    NotificationTarget,
    RetryPolicy,
    RunNotifications,
)

DEFAULT_RETRY = RetryPolicy.model_validate({})
# uuid5 namespace of delivery ids (fixed forever: ids must not change across versions).
ID_NAMESPACE = uuid.UUID("6f1d2a4e-5b7c-5e0f-9a3d-2c8b4e6f1a90")


class NotificationLike(Protocol):
    """What the planner hands over (kinds.pipelinerun.planning.Notification)."""

    @property
    def event(self) -> NotificationEvent: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    delivered: bool
    permanent: bool = False  # retrying cannot help (e.g. HTTP 400, 401, 404)
    error: str = ""


@dataclass(frozen=True)
class Notice:
    """An Event to post about a delivery that just ended (delivered or given up on)."""

    type: str  # Normal | Warning
    reason: str
    message: str


def delivery_id(run_uid: str, event: str, target: str) -> str:
    """The CloudEvent id of `event` for `target`: the same on every attempt, and after a
    restart, so that a receiver can deduplicate."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{run_uid}/{event}/{target}"))


def parse_targets(pipeline_spec: Mapping[str, Any] | None) -> list[NotificationTarget]:
    """The targets of a Pipeline spec (or a run's snapshot of it). The API server validated
    them; one that does not parse (an older schema) is left out rather than failing the rest."""
    out: list[NotificationTarget] = []
    for raw in (pipeline_spec or {}).get("notifications") or ():
        try:
            out.append(NotificationTarget.model_validate(raw))
        except ValidationError:
            continue
    return out


def backoff_seconds(attempts: int, policy: RetryPolicy) -> float:
    """The wait after the `attempts`-th failed attempt: backoffSeconds * 2^(attempts-1), at most
    MAX_BACKOFF_SECONDS."""
    if attempts <= 0:
        return 0.0
    return float(min(MAX_BACKOFF_SECONDS, policy.backoff_seconds * 2 ** min(attempts - 1, 30)))


def load(outbox: Mapping[str, Any] | RunNotifications | None) -> RunNotifications:
    if isinstance(outbox, RunNotifications):
        return outbox.model_copy(deep=True)
    return RunNotifications.from_obj(outbox)


def counted(box: RunNotifications) -> RunNotifications:
    """`box` with its counts recomputed from its deliveries."""
    states = [d.state for d in box.deliveries]
    return box.model_copy(
        update={
            "pending": states.count(DeliveryState.PENDING),
            "delivered": states.count(DeliveryState.DELIVERED),
            "failed": states.count(DeliveryState.FAILED),
        }
    )


def _bounded(deliveries: list[Delivery]) -> list[Delivery]:
    """At most MAX_DELIVERIES: the oldest finished ones go first, pending ones last."""
    excess = len(deliveries) - MAX_DELIVERIES
    if excess <= 0:
        return deliveries
    drop: set[int] = set()
    for state in (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.PENDING):
        for i, d in enumerate(deliveries):
            if len(drop) == excess:
                break
            if d.state is state:
                drop.add(i)
    return [d for i, d in enumerate(deliveries) if i not in drop]


def queue(
    outbox: Mapping[str, Any] | None,
    notifications: Iterable[NotificationLike],
    targets: Iterable[NotificationTarget],
    *,
    run_uid: str,
    phase: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """The outbox with a pending delivery for every (target, event) where the target wants the
    event and has none yet, due now; None when nothing is added."""
    box = load(outbox)
    targets = list(targets)
    have = {(d.target, d.event) for d in box.deliveries}
    added: list[Delivery] = []
    for note in notifications:
        event = NotificationEvent(note.event)
        for target in targets:
            if event not in target.events or (target.name, event) in have:
                continue
            have.add((target.name, event))
            added.append(
                Delivery(
                    id=delivery_id(run_uid, event.value, target.name),
                    target=target.name,
                    event=event,
                    state=DeliveryState.PENDING,
                    time=now,
                    phase=phase,
                    reason=cut(note.reason, 128) or None,
                    message=cut(note.message, MAX_DELIVERY_MESSAGE) or None,
                    attempts=0,
                    next_attempt_at=now,
                    last_attempt_at=None,
                    last_error=None,
                )
            )
    if not added:
        return None
    box.deliveries = _bounded([*box.deliveries, *added])
    return counted(box).to_dict()


def replace_event(
    outbox: Mapping[str, Any] | None,
    notifications: Iterable[NotificationLike],
    targets: Iterable[NotificationTarget],
    *,
    uid: str,
    phase: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """As `queue`, for an event that recurs (a Monitor's HealthChanged): the targets' earlier
    entries of the same events go, delivered or not (the latest change wins), and `uid` (e.g.
    `<monitor uid>/<report id>`) makes each change's delivery id new. None when no target
    wants the event (the outbox stays as it is)."""
    notifications = list(notifications)
    events = {NotificationEvent(n.event) for n in notifications}
    box = load(outbox)
    box.deliveries = [d for d in box.deliveries if d.event not in events]
    return queue(box.to_dict(), notifications, targets, run_uid=uid, phase=phase, now=now)


def queue_once(
    outbox: Mapping[str, Any] | None,
    notifications: Iterable[NotificationLike],
    targets: Iterable[NotificationTarget],
    *,
    uid: str,
    phase: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """As `replace_event`, for a recurring event whose every occurrence has an id of its own
    (`uid`, e.g. `<project uid>/ProjectClosed/<generation>`): None (nothing to write) when the
    outbox already holds the deliveries of that occurrence, pending, delivered or failed. So
    queueing an occurrence again (a pass replayed after a restart) never sends it twice, and a
    later occurrence replaces the earlier one (the latest wins, as a Monitor's)."""
    notifications = list(notifications)
    targets = list(targets)
    wanted = {
        delivery_id(uid, NotificationEvent(n.event).value, t.name)
        for n in notifications
        for t in targets
        if NotificationEvent(n.event) in t.events
    }
    if not wanted or wanted <= {d.id for d in load(outbox).deliveries}:
        return None
    return replace_event(outbox, notifications, targets, uid=uid, phase=phase, now=now)


def due(outbox: Mapping[str, Any] | RunNotifications | None, now: datetime) -> list[Delivery]:
    """The pending deliveries whose next attempt is due at `now`."""
    return [
        d
        for d in load(outbox).deliveries
        if d.state is DeliveryState.PENDING and (d.next_attempt_at is None or d.next_attempt_at <= now)
    ]


def seconds_to_next(outbox: Mapping[str, Any] | RunNotifications | None, now: datetime) -> float | None:
    """Seconds until the next pending delivery is due (0: now); None when none is pending."""
    times = [
        (d.next_attempt_at - now).total_seconds() if d.next_attempt_at else 0.0
        for d in load(outbox).deliveries
        if d.state is DeliveryState.PENDING
    ]
    return max(0.0, min(times)) if times else None


def record(
    outbox: Mapping[str, Any] | RunNotifications | None,
    outcomes: Mapping[str, Outcome],
    policies: Mapping[str, RetryPolicy],
    now: datetime,
) -> tuple[dict[str, Any], list[Notice]]:
    """The outbox after the attempts `outcomes` (by delivery id) made at `now`, and the Events to
    post. Only pending deliveries change (an outcome for one that is already over, e.g. recorded
    by an earlier pass, changes nothing). `policies`: each target's retry policy (by name; the
    default for a target no longer there)."""
    box = load(outbox)
    notices: list[Notice] = []
    out: list[Delivery] = []
    for d in box.deliveries:
        outcome = outcomes.get(d.id)
        if outcome is None or d.state is not DeliveryState.PENDING:
            out.append(d)
            continue
        policy = policies.get(d.target) or DEFAULT_RETRY
        attempts = d.attempts + 1
        what = f"{d.event.value} for target {d.target!r} (id {d.id})"
        if outcome.delivered:
            out.append(
                d.model_copy(
                    update={
                        "state": DeliveryState.DELIVERED,
                        "attempts": attempts,
                        "last_attempt_at": now,
                        "next_attempt_at": None,
                    }
                )
            )
            notices.append(
                Notice("Normal", "NotificationDelivered", f"{what} delivered at attempt {attempts}")
            )
            continue
        error = cut(outcome.error or "failed", MAX_DELIVERY_ERROR)
        if outcome.permanent or attempts >= policy.max_attempts:
            why = "a permanent failure" if outcome.permanent else f"{attempts} attempts"
            out.append(
                d.model_copy(
                    update={
                        "state": DeliveryState.FAILED,
                        "attempts": attempts,
                        "last_attempt_at": now,
                        "next_attempt_at": None,
                        "last_error": error,
                    }
                )
            )
            notices.append(Notice("Warning", "NotificationFailed", f"{what}: gave up after {why}: {error}"))
            continue
        wait = math.ceil(backoff_seconds(attempts, policy))
        out.append(
            d.model_copy(
                update={
                    "attempts": attempts,
                    "last_attempt_at": now,
                    "next_attempt_at": now + timedelta(seconds=wait),
                    "last_error": error,
                }
            )
        )
    box.deliveries = out
    return counted(box).to_dict(), notices


def has_pending(status: Mapping[str, Any] | None) -> bool:
    """Whether a run's status holds deliveries still to be tried (its delivery loop runs)."""
    box = (status or {}).get("notifications") or {}
    return bool(box.get("pending"))
