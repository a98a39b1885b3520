"""Listing and searching records: a scan of the store's index (records/store.py), newest first.

One JSON line per record, a few hundred bytes: 10,000 records are a few MB, read and filtered in
well under a second (bench/records_search.py measures it; docs/performance.md has the figure).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmif_operator.records.store import INDEX


@dataclass(frozen=True)
class Query:
    """Every given field must match (an AND); None matches anything."""

    input: str | None = None  # an input's sha256, or a substring of its location
    app: str | None = None  # a substring of an app identifier, e.g. `whisper`
    legal_tag: str | None = None  # exactly one of the record's legal tags
    run: str | None = None  # the run's name
    namespace: str | None = None
    since: datetime | None = None  # published at or after
    until: datetime | None = None  # published before
    limit: int = 100

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.run is not None and entry.get("run") != self.run:
            return False
        if self.namespace is not None and entry.get("namespace") != self.namespace:
            return False
        if self.legal_tag is not None and self.legal_tag not in entry.get("legalTags", ()):
            return False
        if self.app is not None and not any(self.app in a for a in entry.get("apps", ())):
            return False
        if self.input is not None and not any(
            self.input == i.get("sha256") or self.input in i.get("location", "")
            for i in entry.get("inputs", ())
        ):
            return False
        if self.since is not None or self.until is not None:
            at = _time(entry.get("publishedAt"))
            if at is None:
                return False
            if self.since is not None and at < self.since:
                return False
            if self.until is not None and at >= self.until:
                return False
        return True


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def entries(root: str) -> Iterator[dict[str, Any]]:
    path = os.path.join(root, INDEX)
    if not os.path.exists(path):
        return
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                entry = json.loads(line)
                if entry["id"] not in seen:  # a line written twice by a publish killed and retried
                    seen.add(entry["id"])
                    yield entry


def search(root: str, query: Query) -> list[dict[str, Any]]:
    """The matching index entries, newest first, at most `query.limit`."""
    found = [e for e in entries(root) if query.matches(e)]
    found.sort(key=lambda e: (e.get("publishedAt") or "", e["id"]), reverse=True)
    return found[: query.limit] if query.limit > 0 else found
