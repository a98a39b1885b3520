"""Status helpers: conditions (Kubernetes API conventions), capped lists, timestamps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def rfc3339(t: datetime) -> str:
    """A time as Kubernetes writes it: UTC, whole seconds, trailing Z."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | datetime | None) -> datetime | None:
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def find_condition(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None = None,
) -> list[dict[str, Any]]:
    """A new conditions list with `type_` set; `lastTransitionTime` is kept when the status is
    unchanged (only a change of status is a transition), as metav1.Condition requires."""
    old = find_condition(conditions, type_)
    ltt = old.get("lastTransitionTime") if old and old.get("status") == status else None
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ltt or rfc3339(now),
    }
    if observed_generation is not None:
        cond["observedGeneration"] = int(observed_generation)
    out = [dict(c) for c in conditions or () if c.get("type") != type_]
    out.append(cond)
    return out


def capped(entries: Iterable[Any], limit: int) -> list[Any]:
    """The `limit` latest entries (oldest first)."""
    entries = list(entries)
    return entries[-limit:] if limit > 0 else []


def cut(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
