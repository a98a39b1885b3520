"""Prometheus metrics, served on :8080/metrics (prometheus-client's own HTTP server).

    mmif_runs_finished_total{result}                   runs that ended (Succeeded/Failed/Cancelled)
    mmif_step_duration_seconds{pipeline, step}         one item at one step: Job start -> end
    mmif_item_failures_total{pipeline, step, reason}   item failures recorded in run status
    mmif_items_in_flight                               items with a step Job in flight, all runs
    mmif_runs_active                                   runs with a live reconcile loop
    mmif_reconcile_duration_seconds{kind}              one reconcile pass (run / pipeline)
    mmif_reconcile_errors_total{kind}                  reconcile passes that raised
    mmif_monitor_health{namespace, monitor, health}    1 for a Monitor's current health, else 0
    mmif_monitor_reliability{namespace, monitor}       share of Passed among its kept reports
    mmif_monitor_activity_reliability{namespace, monitor, step, app}   the same, per activity

Metrics are best effort: after an operator restart, a step that finished while the operator was
down may be counted again.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

RUNS_FINISHED = Counter(
    "mmif_runs_finished_total", "PipelineRuns that ended, by result.", ["result"], registry=REGISTRY
)
STEP_DURATION = Histogram(
    "mmif_step_duration_seconds",
    "Duration of one item at one step (Job start to end).",
    ["pipeline", "step"],
    registry=REGISTRY,
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf")),
)
ITEM_FAILURES = Counter(
    "mmif_item_failures_total",
    "Item failures at a step, by reason.",
    ["pipeline", "step", "reason"],
    registry=REGISTRY,
)
ITEMS_IN_FLIGHT = Gauge(
    "mmif_items_in_flight", "Items whose step Job is in flight, all runs.", registry=REGISTRY
)
RUNS_ACTIVE = Gauge("mmif_runs_active", "PipelineRuns with a live reconcile loop.", registry=REGISTRY)
RECONCILE_DURATION = Histogram(
    "mmif_reconcile_duration_seconds",
    "One reconcile pass.",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter(
    "mmif_reconcile_errors_total", "Reconcile passes that raised.", ["kind"], registry=REGISTRY
)

MONITOR_HEALTH = Gauge(
    "mmif_monitor_health",
    "1 for a Monitor's current health (Unknown, Healthy, Degraded, Failing), 0 for the others.",
    ["namespace", "monitor", "health"],
    registry=REGISTRY,
)
MONITOR_RELIABILITY = Gauge(
    "mmif_monitor_reliability",
    "The share of Passed among a Monitor's kept HealthReports.",
    ["namespace", "monitor"],
    registry=REGISTRY,
)
MONITOR_ACTIVITY_RELIABILITY = Gauge(
    "mmif_monitor_activity_reliability",
    "Per activity (step and app): the share of Passed among the kept reports where it ran.",
    ["namespace", "monitor", "step", "app"],
    registry=REGISTRY,
)
HEALTH_VALUES = ("Unknown", "Healthy", "Degraded", "Failing")
_monitor_activities: dict[tuple[str, str], set[tuple[str, str]]] = {}


def set_monitor(namespace: str, monitor: str, status: Mapping[str, Any] | None) -> None:
    """The gauges of one Monitor from its status; None removes them (the Monitor is gone)."""
    key = (namespace, monitor)
    old = _monitor_activities.pop(key, set())
    if status is None:
        for health in HEALTH_VALUES:
            _remove(MONITOR_HEALTH, namespace, monitor, health)
        _remove(MONITOR_RELIABILITY, namespace, monitor)
        for step, app in old:
            _remove(MONITOR_ACTIVITY_RELIABILITY, namespace, monitor, step, app)
        return
    current = status.get("health") or "Unknown"
    for health in HEALTH_VALUES:
        MONITOR_HEALTH.labels(namespace, monitor, health).set(1 if health == current else 0)
    if status.get("reliability") is not None:
        MONITOR_RELIABILITY.labels(namespace, monitor).set(status["reliability"])
    seen: set[tuple[str, str]] = set()
    for a in status.get("activities") or ():
        labels = (str(a.get("step") or ""), str(a.get("app") or ""))
        seen.add(labels)
        MONITOR_ACTIVITY_RELIABILITY.labels(namespace, monitor, *labels).set(a.get("reliability") or 0)
    for step, app in old - seen:
        _remove(MONITOR_ACTIVITY_RELIABILITY, namespace, monitor, step, app)
    _monitor_activities[key] = seen


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


_in_flight: dict[tuple[str, str], int] = {}


def set_in_flight(run_key: tuple[str, str], count: int | None) -> None:
    """Record the items in flight of one run (None: the run's loop ended)."""
    if count is None:
        _in_flight.pop(run_key, None)
    else:
        _in_flight[run_key] = count
    ITEMS_IN_FLIGHT.set(sum(_in_flight.values()))
    RUNS_ACTIVE.set(len(_in_flight))


def run_finished(result: str) -> None:
    RUNS_FINISHED.labels(result=result).inc()


def new_failures(
    old: Iterable[Mapping[str, Any]] | None, new: Iterable[Mapping[str, Any]] | None
) -> list[Mapping[str, Any]]:
    """The entries of the capped `status.failures` list `new` that `old` did not hold."""
    seen = {(f.get("index"), f.get("step"), f.get("time"), f.get("reason")) for f in old or ()}
    return [
        f for f in new or () if (f.get("index"), f.get("step"), f.get("time"), f.get("reason")) not in seen
    ]


def item_failures(pipeline: str, failures: Iterable[Mapping[str, Any]]) -> None:
    for f in failures:
        ITEM_FAILURES.labels(pipeline=pipeline, step=str(f.get("step")), reason=str(f.get("reason"))).inc()


class _Seen:
    """A bounded set of recently seen keys (so one Job's end is counted once)."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """True when `key` is new."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True


_steps_seen = _Seen()


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def job_duration(job: Mapping[str, Any]) -> float | None:
    """Seconds from a finished Job's start to its end (completionTime, or the time its Failed /
    Complete condition became true); None while it runs."""
    status = job.get("status") or {}
    start = _time(status.get("startTime"))
    end = _time(status.get("completionTime"))
    if end is None:
        for cond in status.get("conditions") or ():
            if cond.get("type") in ("Failed", "Complete") and cond.get("status") == "True":
                end = _time(cond.get("lastTransitionTime"))
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def observe_step_job(job: Mapping[str, Any], pipeline: str, step: str) -> None:
    """Observe a finished step Job's duration, once per Job uid."""
    duration = job_duration(job)
    uid = (job.get("metadata") or {}).get("uid")
    if duration is None or not uid or not _steps_seen.add(uid):
        return
    STEP_DURATION.labels(pipeline=pipeline, step=step).observe(duration)


_serving: int | None = None


def serve(port: int) -> None:
    """Start the /metrics HTTP server (a daemon thread) once; port 0 disables it."""
    global _serving
    if port and _serving is None:
        start_http_server(port, addr="0.0.0.0", registry=REGISTRY)
        _serving = port
        log.info("metrics on :%d/metrics", port)
