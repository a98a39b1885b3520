"""Conflicts found when a passed run is about to publish (issue 12, part 4), decided from what the
operator already holds (pure): the runs index `run_records_by_namespace` (kinds/project/handler.py),
which keeps, for every PipelineRun whose inline items start from records, the records named, its
phase, request, whether it may publish and when a review passed it.

Two kinds, for each parent record `P` that an item of this run starts from (`items[].record`):

* `ConcurrentWork` (a): a run of *another* project (namespace) starts items from `P` too and is
  work in progress there: not over, and it may still publish records (its pipeline requires
  review, or it has no snapshot yet);
* `NewerVersion` (b): `P` got a newer version since this run started: a run (of any project, this
  one included) that starts from `P` was passed by a review, and publishes or published its
  records, at a time (the decision's, its records' `publishedAt`) after this run was created.

"A newer version of a record" is therefore *a record whose lineage names it as the parent of the
same item* (`inputs[].record`): in MMIF a run adds views to the document it starts from, so the
record it publishes is that parent with more annotations, the next version of it. A later run
of the same request (label `mmif.dev/request`) is not a second source of versions: of the runs
of one request only the first passed publishes (the others are `Superseded`), so two records
from one request and item never both exist; and such a sibling of this run is not a conflict
either (their review already supersedes one by the other).

Not seen: runs deleted since (their records stay in the store, the index forgets them) and
items of `itemsFrom` files (the operator never reads them), as for `SharedRecords`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmif_operator.core.status import cut, parse_time

CONCURRENT_WORK = "ConcurrentWork"
NEWER_VERSION = "NewerVersion"
MAX_CONFLICTS = 50  # kept in status.conflicts (and named in the lineage of a Supersede), the rest counted
MAX_ITEMS_NAMED = 10  # items of this run named per conflict, the rest counted
MAX_MESSAGE_CONFLICTS = 5  # conflicts described in the condition's message
MAX_MESSAGE = 1024
_OVER = ("Succeeded", "Failed", "Cancelled")

CONDITION_CONFLICT = "Conflict"
EV_CONFLICT = "Conflict"  # the Event on the other party's run and on both Projects
R_CONFLICTS_FOUND = "ConflictsFound"  # blocked: the run stays AwaitingReview
R_SUPERSEDED = "ConflictsSuperseded"  # published, the lineage names them
R_IGNORED = "ConflictsIgnored"  # published without naming them (the project allows it)
R_NO_CONFLICTS = "NoConflicts"


@dataclass(frozen=True)
class Conflict:
    """One parent record shared with one other run."""

    kind: str  # CONCURRENT_WORK or NEWER_VERSION
    record: str  # the parent record, sha256:<hex>
    project: str  # the other run's namespace (a project's namespace is the project's name)
    run: str
    phase: str | None  # the other run's phase
    published_at: str | None  # NEWER_VERSION: when its review passed (its records' publishedAt)
    items: tuple[str, ...]  # this run's items starting from `record` (names, or #index), the first
    item_count: int

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "record": self.record,
            "project": self.project,
            "run": self.run,
            "items": list(self.items),
            "itemCount": self.item_count,
        }
        if self.phase:
            out["phase"] = self.phase
        if self.published_at:
            out["publishedAt"] = self.published_at
        return out

    def describe(self) -> str:
        items = ", ".join(self.items)
        if self.item_count > len(self.items):
            items += f" and {self.item_count - len(self.items)} more"
        short = self.record[:19] + "…" if len(self.record) > 20 else self.record
        if self.kind == NEWER_VERSION:
            what = f"project {self.project} run {self.run} published a newer version at {self.published_at}"
        else:
            what = f"project {self.project} run {self.run} works from it too ({self.phase or 'new'})"
        return f"item(s) {items} from record {short}: {what}"


def item_parents(items: Iterable[tuple[str, str | None]]) -> dict[str, list[str]]:
    """parent record -> this run's items starting from it, from (item label, record or None)."""
    out: dict[str, list[str]] = {}
    for label, record in items:
        if record:
            out.setdefault(record, []).append(label)
    return out


def find_conflicts(
    namespace: str,
    name: str,
    created: str | None,
    request: str | None,
    items: Iterable[tuple[str, str | None]],
    runs: Mapping[str, Iterable[Mapping[str, Any]]],
) -> list[Conflict]:
    """The conflicts of run `namespace/name` (created at `created`, of `request`), whose items are
    (label, parent record or None), against `runs` (the runs index: namespace -> entries, see
    kinds/project/planning.py `run_records_entry`). Sorted: kind, record, project, run."""
    parents = item_parents(items)
    if not parents:
        return []
    started = parse_time(created)
    out: list[Conflict] = []
    for ns, entries in runs.items():
        for entry in entries:
            other = str(entry.get("run") or "")
            if ns == namespace and other == name:
                continue
            if ns == namespace and request and entry.get("request") == request:
                continue  # a version of the same request: the review supersedes one by the other
            shared = [r for r in entry.get("records") or () if r in parents]
            if not shared:
                continue
            kind = _kind(ns != namespace, entry, started)
            if kind is None:
                continue
            for record in shared:
                labels = parents[record]
                out.append(
                    Conflict(
                        kind,
                        record,
                        ns,
                        other,
                        entry.get("phase"),
                        entry.get("publishedAt") if kind == NEWER_VERSION else None,
                        tuple(labels[:MAX_ITEMS_NAMED]),
                        len(labels),
                    )
                )
    return sorted(out, key=lambda c: (c.kind, c.record, c.project, c.run))


def _kind(other_project: bool, entry: Mapping[str, Any], started: datetime | None) -> str | None:
    published = parse_time(entry.get("publishedAt"))
    if published is not None:
        # Published before this run started: the parent's newer version existed already (the run
        # chose to start from the older one); not "since this run started".
        return NEWER_VERSION if started is None or published > started else None
    if other_project and entry.get("publishes", True) and entry.get("phase") not in _OVER:
        return CONCURRENT_WORK
    return None


def conflicts_status(found: Sequence[Conflict], policy: str, now: str) -> dict[str, Any]:
    """status.conflicts: how many, the policy acted on, when, and the first `MAX_CONFLICTS`."""
    return {
        "count": len(found),
        "policy": policy,
        "detectedAt": now,
        "conflicts": [c.to_status() for c in found[:MAX_CONFLICTS]],
    }


def message(found: Sequence[Conflict]) -> str:
    """The Conflict condition's message: how many, and the first few described."""
    if not found:
        return "no conflicts found at publish time"
    parts = "; ".join(c.describe() for c in found[:MAX_MESSAGE_CONFLICTS])
    more = f"; and {len(found) - MAX_MESSAGE_CONFLICTS} more" if len(found) > MAX_MESSAGE_CONFLICTS else ""
    extra = f" (status.conflicts lists the first {MAX_CONFLICTS})" if len(found) > MAX_CONFLICTS else ""
    return cut(f"{len(found)} conflict(s) at publish time{extra}: {parts}{more}", MAX_MESSAGE)


def supersedes(conflicts: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """What each record published from a parent supersedes (from status.conflicts.conflicts):
    parent record -> [{kind, project, run, publishedAt}], for the publish Job's lineage."""
    out: dict[str, list[dict[str, Any]]] = {}
    for c in conflicts:
        entry = {
            "kind": c.get("kind"),
            "project": c.get("project"),
            "run": c.get("run"),
            "publishedAt": c.get("publishedAt"),
        }
        out.setdefault(str(c.get("record")), []).append(entry)
    return out


@dataclass(frozen=True)
class Notice:
    """An Event to post on the other party of a conflict (its run and its Project)."""

    namespace: str
    run: str
    message: str


def notices(namespace: str, name: str, found: Sequence[Conflict], policy: str) -> list[Notice]:
    """One notice per other run in conflict with `namespace/name` (at most `MAX_CONFLICTS`)."""
    what = {
        "Block": "its publishing is blocked until a reviewer chooses onConflict Supersede",
        "Supersede": "it publishes, superseding yours (its lineage names your run)",
        "Ignore": "it publishes, ignoring the conflict (the project allows it)",
    }.get(policy, policy)
    by_run: dict[tuple[str, str], list[str]] = {}
    for c in found[:MAX_CONFLICTS]:
        by_run.setdefault((c.project, c.run), []).append(c.record)
    out = []
    for (ns, run), records in sorted(by_run.items()):
        shown = ", ".join(r[:19] + "…" for r in records[:3])
        more = f" and {len(records) - 3} more" if len(records) > 3 else ""
        out.append(
            Notice(
                ns,
                run,
                cut(
                    f"run {namespace}/{name} was passed by its review and conflicts with run {ns}/{run} "
                    f"on record(s) {shown}{more}: {what}",
                    MAX_MESSAGE,
                ),
            )
        )
    return out
