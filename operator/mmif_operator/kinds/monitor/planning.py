"""What a Monitor does next, decided from what the cluster holds: pure functions, times passed in.

One pass (`plan_monitor`) reads the Monitor, its test runs and its HealthReports and decides:

1. a report for every finished test run that has none (`report_from_run`: result, duration,
   failed activities from the run's status), and the deletion of every finished run whose
   report exists or is made now;
2. a new test run when the next test is due (`next_due`) and none is in flight;
3. which reports to prune (`to_prune`: beyond `keep.count`, older than `keep.age`; never the
   newest);
4. the status: health (`health_of`), reliability (`reliability_of`), the latest reports, the
   next test time, and the conditions; an Event when the health changed.

Nothing is kept in memory: the schedule follows from the reports' and runs' ids (their
scheduled times) and the interval, so a restart or an interval change needs nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from mmif_operator.core import labels as L
from mmif_operator.core.status import FALSE, TRUE, cut, parse_time, set_condition
from mmif_operator.kinds.monitor import children
from mmif_operator.kinds.monitor.model import (
    FAILING_AFTER,
    MAX_ACTIVITIES,
    MAX_FAILED_ACTIVITIES,
    RECENT_REPORTS,
    ActivityOutcome,
    ActivityReliability,
    ActivityResult,
    FailedActivity,
    Health,
    HealthReportSpec,
    MonitorSpec,
    ReportRef,
    TestResult,
    parse_duration,
)
from mmif_operator.notifications import outbox
from mmif_operator.notifications.model import NotificationEvent

ID_FORMAT = "%Y%m%dT%H%M%SZ"
CONDITION_READY = "Ready"
CONDITION_RECONCILING = "Reconciling"
CONDITION_STALLED = "Stalled"
R_SUSPENDED = "Suspended"
R_NO_REPORT = "WaitingForFirstReport"
R_REPORTED = "Reported"
R_TESTING = "Testing"
R_INVALID_SPEC = "InvalidSpec"
R_NAME_CONFLICT = "NameConflict"
R_CREATE_FAILED = "CreateFailed"
EVENT_HEALTH_CHANGED = "HealthChanged"
# The phases after which a test run's outcome is known. AwaitingReview: every item went
# through; the review gate is for publishing, which a test does not do.
DONE_PHASES = ("Succeeded", "Failed", "Cancelled", "AwaitingReview", "Publishing")
IN_FLIGHT_RECHECK_SECONDS = 30.0  # a test run's end wakes the loop; this is the safety net


# -- ids and the schedule ----------------------------------------------------------------------


def report_id(t: datetime) -> str:
    """`YYYYMMDDTHHMMSSZ` of `t` in UTC, e.g. `20261201T183305Z`."""
    return t.astimezone(UTC).strftime(ID_FORMAT)


def time_of(report_id_: str) -> datetime:
    return datetime.strptime(report_id_, ID_FORMAT).replace(tzinfo=UTC)


def interval_of(spec: MonitorSpec) -> timedelta:
    """The interval in whole seconds, at least one (ids have a resolution of one second)."""
    return timedelta(seconds=max(1, round(parse_duration(spec.interval).total_seconds())))


def _whole_second(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(microsecond=0)


def next_due(last: datetime | None, interval: timedelta, created: datetime, now: datetime) -> datetime:
    """When the next test is due.

    No test yet: at the Monitor's creation (at once). Else one interval after the latest test's
    scheduled time; when more than one interval has gone by since (a test that took longer than
    the interval, an operator that was down), the latest tick of that grid not after `now`:
    missed ticks are skipped, not caught up, and every id stays `last + k * interval`."""
    if last is None:
        return _whole_second(created)
    due = last + interval
    if due + interval <= now:
        ticks = math.floor((now - last) / interval)
        due = last + ticks * interval
    return due


# -- health and reliability ---------------------------------------------------------------------


def health_of(results: Sequence[TestResult | str]) -> Health:
    """The health from the reports' results, oldest first: `Unknown` with none, `Healthy` when
    the latest passed, `Failing` when the latest `FAILING_AFTER` failed, else `Degraded`."""
    if not results:
        return Health.UNKNOWN
    if TestResult(results[-1]) is TestResult.PASSED:
        return Health.HEALTHY
    tail = [TestResult(r) for r in results[-FAILING_AFTER:]]
    if len(tail) == FAILING_AFTER and all(r is TestResult.FAILED for r in tail):
        return Health.FAILING
    return Health.DEGRADED


def reliability_of(
    reports: Sequence[HealthReportSpec],
) -> tuple[float | None, list[ActivityReliability]]:
    """The share of Passed reports, and per activity (step and app, in the order they first
    appear, newest reports' order first) the share of Passed among the reports where it ran."""
    if not reports:
        return None, []
    overall = sum(r.result is TestResult.PASSED for r in reports) / len(reports)
    counts: dict[tuple[str, str | None], list[int]] = {}
    order: list[tuple[str, str | None]] = []
    for report in reversed(reports):  # newest first: the current pipeline's steps lead
        for a in report.activities:
            key = (a.step, a.app)
            if key not in counts:
                counts[key] = [0, 0]
                order.append(key)
            if a.result is ActivityResult.NOT_RUN:
                continue
            counts[key][0] += 1
            counts[key][1] += a.result is ActivityResult.PASSED
    newest_steps = [(a.step, a.app) for a in reports[-1].activities]
    ordered = newest_steps + [k for k in order if k not in newest_steps]
    out = [
        ActivityReliability(
            step=step,
            app=app,
            tests=counts[(step, app)][0],
            passed=counts[(step, app)][1],
            reliability=round(counts[(step, app)][1] / counts[(step, app)][0], 4),
        )
        for step, app in ordered
        if counts[(step, app)][0] > 0
    ]
    return round(overall, 4), out[:MAX_ACTIVITIES]


def to_prune(reports: Sequence[HealthReportSpec], count: int, age: timedelta, now: datetime) -> list[str]:
    """The ids of the reports to delete: all but the newest `count`, and those scheduled more
    than `age` ago; never the newest report."""
    ordered = sorted(reports, key=lambda r: r.id)
    if not ordered:
        return []
    keep = {r.id for r in ordered[-count:]} if count > 0 else set()
    out = [r.id for r in ordered if r.id not in keep or r.time < now - age]
    return [i for i in out if i != ordered[-1].id]


# -- a test run's outcome ----------------------------------------------------------------------


def run_done(run: Mapping[str, Any]) -> bool:
    status = run.get("status") or {}
    return status.get("phase") in DONE_PHASES or bool(status.get("completionTime"))


def _succeeded_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Succeeded":
            return cond
    return {}


def _apps(status: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    steps = ((status.get("pipelineSpec") or {}).get("steps")) or []
    return [(s.get("name") or "", s.get("image") or s.get("url")) for s in steps]


def report_from_run(run: Mapping[str, Any], monitor: str, report_id_: str, now: datetime) -> HealthReportSpec:
    """The report of a finished test run, from its status: passed when it succeeded (or awaits
    review with no item failed); failed activities from its item failures (the first per step)
    and its failure reasons, or the run's own reason when no step failed (e.g. PipelineNotFound,
    Timeout); each step's outcome from the per-step counts."""
    meta = run.get("metadata") or {}
    status = run.get("status") or {}
    phase = status.get("phase")
    passed = phase == "Succeeded" or (phase == "AwaitingReview" and not status.get("itemsFailed"))
    apps = dict(_apps(status))
    failed: dict[str, FailedActivity] = {}
    for f in status.get("failures") or ():
        step = f.get("step")
        if step and step not in failed:
            failed[step] = FailedActivity(
                step=step,
                app=apps.get(step),
                reason=cut(f.get("reason") or "Failed", 128),
                message=cut(f.get("message"), 512),
                item=f.get("item"),
            )
    for fr in status.get("failureReasons") or ():
        step = fr.get("step")
        if step and step not in failed:
            failed[step] = FailedActivity(
                step=step,
                app=apps.get(step),
                reason=cut(fr.get("reason") or "Failed", 128),
                message=cut(fr.get("message"), 512),
                item=None,
            )
    counts = {c.get("name"): c for c in status.get("steps") or ()}
    activities = []
    for step, app in _apps(status):
        c = counts.get(step) or {}
        if step in failed or c.get("failed"):
            result = ActivityResult.FAILED
        elif c.get("succeeded"):
            result = ActivityResult.PASSED
        else:
            result = ActivityResult.NOT_RUN
        activities.append(ActivityOutcome(step=step, app=app, result=result))
    cond = _succeeded_condition(status)
    failed_list = [failed[s] for s, _ in _apps(status) if s in failed] + [
        f for s, f in failed.items() if s not in apps
    ]
    if not passed and not failed_list:
        failed_list = [
            FailedActivity(
                step=None,
                app=None,
                item=None,
                reason=cut(cond.get("reason") or phase or "Failed", 128),
                message=cut(cond.get("message") or f"the test run ended {phase}", 512),
            )
        ]
    failed_list = failed_list[:MAX_FAILED_ACTIVITIES]
    n = sum(f.step is not None for f in failed_list)
    if passed:
        summary = "passed"
    elif n:
        summary = f"{n} {'activity' if n == 1 else 'activities'} failed"
    else:
        summary = f"the test run failed: {failed_list[0].reason}"
    start = parse_time(meta.get("creationTimestamp"))
    end = parse_time(status.get("completionTime")) or now
    duration = max(0.0, (end - start).total_seconds()) if start else 0.0
    return HealthReportSpec(
        monitor=monitor,
        id=report_id_,
        time=time_of(report_id_),
        result=TestResult.PASSED if passed else TestResult.FAILED,
        duration_seconds=duration,
        summary=summary,
        run=meta.get("name") or "",
        run_reason=cut(cond.get("reason"), 128) or None,
        failed_activities=[] if passed else failed_list,
        activities=activities,
    )


# -- the plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Notification:
    """A health change to notify (notifications/outbox.NotificationLike): `reason` is the
    health before."""

    event: NotificationEvent
    reason: str
    message: str


@dataclass
class MonitorPlan:
    create_reports: list[dict[str, Any]] = field(default_factory=list)
    delete_runs: list[tuple[str, str]] = field(default_factory=list)  # (name, uid), after the reports
    create_run: dict[str, Any] | None = None
    probe_pipeline: dict[str, Any] | None = None  # ensure it exists and matches (single-app target)
    prune: list[tuple[str, str]] = field(default_factory=list)  # reports (name, uid)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    health: Health = Health.UNKNOWN
    notify: bool = False  # a delivery was queued: wake the Monitor's delivery loop


def target_text(spec: MonitorSpec) -> str:
    """`pipeline/<name>` or `app/<image or url>`."""
    if spec.target.pipeline is not None:
        return f"pipeline/{spec.target.pipeline}"
    app = spec.target.app
    return f"app/{(app.image or app.url) if app else ''}"


def _report_spec(obj: Mapping[str, Any]) -> HealthReportSpec | None:
    try:
        return HealthReportSpec.from_obj(obj.get("spec"))
    except ValidationError:
        return None


def _test_id(obj: Mapping[str, Any]) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(L.MONITOR_TEST)
    try:
        return report_id(time_of(value)) if value else None
    except ValueError:
        return None


def _ref(report: HealthReportSpec, name: str) -> dict[str, Any]:
    return ReportRef(
        id=report.id, time=report.time, result=report.result, name=name, summary=report.summary
    ).to_dict()


def _health_message(report: HealthReportSpec | None) -> str:
    if report is None:
        return "no report yet"
    text = f"test {report.id} {report.result.value.lower()}"
    if report.failed_activities:
        f = report.failed_activities[0]
        where = f"step {f.step} ({f.app})" if f.step else "the test run"
        text += f": {where}: {f.reason}: {f.message}"
    return cut(text, 1024)


def conditions_for(
    old: Sequence[Mapping[str, Any]] | None,
    health: Health,
    latest: HealthReportSpec | None,
    *,
    suspended: bool,
    generation: int | None,
    now: datetime,
    stalled: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Ready (from the health, or Suspended), Reconciling (until the first report) and Stalled
    (`stalled`: the reason and message of what stops every test), as kstatus reads them."""
    message = _health_message(latest)
    if health is Health.HEALTHY:
        ready = (TRUE, health.value, message)
    elif suspended:
        ready = (FALSE, R_SUSPENDED, f"suspended (spec.suspend); {message}")
    else:
        ready = (FALSE, health.value, message)
    conds = set_condition(old, CONDITION_READY, *ready, now, generation)
    if stalled is not None:
        conds = set_condition(conds, CONDITION_STALLED, TRUE, stalled[0], stalled[1], now, generation)
        return set_condition(
            conds,
            CONDITION_RECONCILING,
            FALSE,
            stalled[0],
            "stalled: see the Stalled condition",
            now,
            generation,
        )
    conds = set_condition(
        conds, CONDITION_STALLED, FALSE, R_REPORTED if latest else R_NO_REPORT, "", now, generation
    )
    if latest is None and not suspended:
        return set_condition(
            conds, CONDITION_RECONCILING, TRUE, R_NO_REPORT, "the first test runs", now, generation
        )
    return set_condition(conds, CONDITION_RECONCILING, FALSE, R_REPORTED, "", now, generation)


def plan_monitor(
    monitor: Mapping[str, Any],
    runs: Iterable[Mapping[str, Any]],
    reports: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    resync_seconds: float = 300.0,
) -> MonitorPlan:
    """One pass over one Monitor (see the module docstring). `runs` and `reports` are the
    Monitor's own (controlled by its uid)."""
    meta = monitor.get("metadata") or {}
    name = meta.get("name") or ""
    generation = meta.get("generation")
    old_status = monitor.get("status") or {}
    plan = MonitorPlan()
    try:
        spec = MonitorSpec.from_obj(monitor.get("spec"))
    except ValidationError as e:
        conds = set_condition(
            old_status.get("conditions"),
            CONDITION_STALLED,
            TRUE,
            R_INVALID_SPEC,
            cut(str(e), 1024),
            now,
            generation,
        )
        plan.status = {"observedGeneration": generation, "conditions": conds}
        return plan
    if spec.target.app is not None:
        plan.probe_pipeline = children.probe_pipeline(monitor, spec)

    # 1. Reports of finished runs; those runs go.
    have: dict[str, tuple[HealthReportSpec, Mapping[str, Any]]] = {}
    for obj in reports:
        parsed = _report_spec(obj)
        if parsed is not None and not (obj.get("metadata") or {}).get("deletionTimestamp"):
            have[parsed.id] = (parsed, obj)
    in_flight: list[tuple[str, Mapping[str, Any]]] = []
    scheduled: list[datetime] = [time_of(i) for i in have]
    for run in runs:
        rid = _test_id(run)
        rmeta = run.get("metadata") or {}
        if rid is None:
            continue
        if rmeta.get("deletionTimestamp"):
            continue  # going (reported, or deleted by someone): neither in flight nor reportable
        scheduled.append(time_of(rid))
        if not run_done(run):
            in_flight.append((rid, run))
            continue
        if rid not in have:
            report = report_from_run(run, name, rid, now)
            body = children.health_report(monitor, report)
            plan.create_reports.append(body)
            have[rid] = (report, body)
        plan.delete_runs.append((rmeta.get("name") or "", rmeta.get("uid") or ""))

    # 2. The next test.
    interval = interval_of(spec)
    created = parse_time(meta.get("creationTimestamp")) or now
    last = max(scheduled) if scheduled else None
    due = next_due(last, interval, created, now)
    current = None
    if in_flight:
        rid, run = max(in_flight, key=lambda x: x[0])
        current = {"id": rid, "run": (run.get("metadata") or {}).get("name")}
        plan.requeue_after = min(IN_FLIGHT_RECHECK_SECONDS, resync_seconds)
    elif not spec.suspend:
        if due <= now:
            rid = report_id(due)
            plan.create_run = children.test_run(monitor, spec, rid)
            current = {"id": rid, "run": plan.create_run["metadata"]["name"]}
            due = next_due(due, interval, created, now)
            plan.requeue_after = min(IN_FLIGHT_RECHECK_SECONDS, resync_seconds)
        else:
            plan.requeue_after = min(max((due - now).total_seconds(), 0.2), resync_seconds)
    else:
        plan.requeue_after = resync_seconds

    # 3. Pruning.
    all_reports = sorted((r for r, _ in have.values()), key=lambda r: r.id)
    pruned = set(to_prune(all_reports, spec.keep.count, parse_duration(spec.keep.age), now))
    for rid in sorted(pruned):
        obj = have[rid][1]
        if obj in plan.create_reports:
            continue  # made this pass: pruned by a later one (it must exist first)
        ometa = obj.get("metadata") or {}
        plan.prune.append((ometa.get("name") or "", ometa.get("uid") or ""))
    kept = [r for r in all_reports if r.id not in pruned]

    # 4. Status.
    health = health_of([r.result for r in kept])
    overall, activities = reliability_of(kept)
    latest = kept[-1] if kept else None
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "target": target_text(spec),
        "health": health.value,
        "lastReport": _ref(latest, children.child_name(name, latest.id)) if latest else None,
        "nextTestTime": None if spec.suspend else due.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "currentTest": current,
        "reliability": overall,
        "reportsKept": len(kept),
        "recentReports": [_ref(r, children.child_name(name, r.id)) for r in kept[-RECENT_REPORTS:]],
        "activities": [a.to_dict() for a in activities],
        "conditions": conditions_for(
            old_status.get("conditions"),
            health,
            latest,
            suspended=spec.suspend,
            generation=generation,
            now=now,
        ),
    }
    plan.status = status
    plan.health = health
    old_health = old_status.get("health")
    if old_health is not None and old_health != health.value:
        bad = health in (Health.DEGRADED, Health.FAILING)
        message = cut(f"{old_health} -> {health.value}: {_health_message(latest)}", 1024)
        plan.events.append(Event("Warning" if bad else "Normal", EVENT_HEALTH_CHANGED, message))
        box = outbox.replace_event(
            old_status.get("notifications"),
            [Notification(NotificationEvent.HEALTH_CHANGED, old_health, message)],
            spec.notifications,
            uid=f"{meta.get('uid')}/{latest.id if latest else '-'}",
            phase=health.value,
            now=now,
        )
        if box is not None:
            status["notifications"] = box
            plan.notify = True
    return plan


def status_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch from `old` to `new` (None values remove a field); empty when unchanged."""
    old = old or {}
    return {k: v for k, v in new.items() if old.get(k) != v and not (v is None and k not in old)}
