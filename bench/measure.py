"""Pure figures from what the benchmark recorded: percentiles, step-transition delays, duplicated
and lost item-steps, the API server's per-FlowSchema request counters, /proc numbers."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .watch import JobRecord, last_step


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (p in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def first_by_item_step(records: Iterable[JobRecord]) -> dict[tuple[str, int, int], JobRecord]:
    """The first Job seen for each (run, item, step)."""
    out: dict[tuple[str, int, int], JobRecord] = {}
    for rec in sorted(records, key=lambda r: r.added):
        if rec.item is None or rec.step is None:
            continue
        out.setdefault((rec.run, rec.item, rec.step), rec)
    return out


def transition_delays(records: Iterable[JobRecord]) -> list[float]:
    """Per item and Job: from the Job of steps k..j seen finished (successfully) to the Job of
    step j+1 seen created, in seconds (steps sharing a pod have no transition between Jobs)."""
    first = first_by_item_step(records)
    delays = []
    for (run, item, step), rec in first.items():
        nxt = first.get((run, item, (last_step(rec) or step) + 1))
        if nxt is not None and rec.finished is not None and rec.succeeded:
            delays.append(nxt.added - rec.finished)
    return delays


@dataclass(frozen=True)
class Integrity:
    expected: int  # item-steps: items x steps
    created: int  # distinct (item, step) with a Job
    duplicated: int  # (item, step) whose Job was created more than once (distinct uids)
    missing: int  # (item, step) never created
    items_lost: int  # items without a successful last step


def integrity(records: Iterable[JobRecord], runs: Mapping[str, int], steps: int) -> Integrity:
    """How the step Jobs of `runs` ({run name: items}) cover items x steps."""
    uids: dict[tuple[str, int, int], set[str]] = defaultdict(set)
    last_ok: set[tuple[str, int]] = set()
    for rec in records:
        if rec.item is None or rec.step is None or rec.run not in runs:
            continue
        last = last_step(rec) or rec.step
        for k in range(rec.step, last + 1):  # a Job covers the steps its pod runs
            uids[(rec.run, rec.item, k)].add(rec.uid)
        if last == steps - 1 and rec.succeeded:
            last_ok.add((rec.run, rec.item))
    expected = sum(runs.values()) * steps
    created = sum(1 for k in uids if k[1] < runs[k[0]] and k[2] < steps)
    return Integrity(
        expected=expected,
        created=created,
        duplicated=sum(1 for v in uids.values() if len(v) > 1),
        missing=expected - created,
        items_lost=sum(runs.values()) - len(last_ok),
    )


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def flow_schema_counts(
    metrics_text: str,
    metric: str = "apiserver_flowcontrol_dispatched_requests_total",
) -> dict[str, float]:
    """{flow schema: requests dispatched} from the API server's /metrics text."""
    out: dict[str, float] = defaultdict(float)
    for line in metrics_text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        m = _SAMPLE.match(line)
        if not m or m["name"] != metric:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        out[labels.get("flow_schema", "")] += float(m["value"])
    return dict(out)


def cpu_seconds(stat_text: str, ticks_per_second: int) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds."""
    fields = stat_text[stat_text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def status_kib(status_text: str, key: str) -> int | None:
    """A `kB` line of /proc/<pid>/status (VmHWM, VmRSS), in KiB."""
    for line in status_text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None
