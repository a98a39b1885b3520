"""Paging through a monitor's reports (pure): newest first, `limit`, `since` (an RFC 3339 time
or a report id: the oldest report time wanted, inclusive) and `before` (a report id, exclusive: the cursor the `next`
link carries)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mmif_operator.kinds.monitor.model import REPORT_ID_PATTERN

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ID_FORMAT = "%Y%m%dT%H%M%SZ"
_ID = re.compile(REPORT_ID_PATTERN)


class BadQuery(ValueError):
    """A query parameter the API refuses (400), naming it."""


@dataclass(frozen=True)
class Query:
    limit: int = DEFAULT_LIMIT
    since: datetime | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page:
    reports: list[dict[str, Any]]
    next_before: str | None  # the `before` of the next (older) page, None on the last page


def valid_id(report_id: str) -> bool:
    return bool(_ID.match(report_id))


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time (`2026-12-01T18:33:05Z`, `...+01:00`); a naive time is refused."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadQuery(
            f"since: {text!r} is neither an RFC 3339 date-time (2026-12-01T18:33:05Z) nor a report id"
        ) from None
    if value.tzinfo is None:
        raise BadQuery(f"since: {text!r} has no time zone (add Z or an offset)")
    return value.astimezone(UTC)


def parse_query(params: Mapping[str, str]) -> Query:
    limit = DEFAULT_LIMIT
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            raise BadQuery(f"limit: {params['limit']!r} is not an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadQuery(f"limit: must be between 1 and {MAX_LIMIT}")
    since_text = (params.get("since") or "").strip()
    since = (id_time(since_text) if valid_id(since_text) else parse_time(since_text)) if since_text else None
    before = params.get("before") or None
    if before is not None and not valid_id(before):
        raise BadQuery(f"before: {before!r} is not a report id (YYYYMMDDTHHMMSSZ)")
    return Query(limit=limit, since=since, before=before)


def id_time(report_id: str) -> datetime:
    return datetime.strptime(report_id, ID_FORMAT).replace(tzinfo=UTC)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def page(reports: Iterable[Mapping[str, Any]], query: Query) -> Page:
    """The page of `reports` (HealthReport objects) that `query` asks for, newest first."""
    chosen = sorted(
        (r for r in reports if valid_id(str((r.get("spec") or {}).get("id", "")))),
        key=lambda r: r["spec"]["id"],
        reverse=True,
    )
    if query.before:
        chosen = [r for r in chosen if r["spec"]["id"] < query.before]
    if query.since:
        chosen = [r for r in chosen if id_time(r["spec"]["id"]) >= query.since]
    shown = chosen[: query.limit]
    more = len(chosen) > query.limit
    return Page([dict(r) for r in shown], shown[-1]["spec"]["id"] if more and shown else None)
