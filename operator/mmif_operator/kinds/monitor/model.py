"""The Monitor and HealthReport custom resources: a pipeline or a single app tested on a schedule.

A Monitor runs one small test every `spec.interval` (a PipelineRun of `spec.sample` through the
target, owned by the Monitor) and writes how it ended as a HealthReport (owned by the Monitor,
written once). Its status holds the health worked out from the latest reports, the reliability
of each activity (pipeline step and app) over the kept reports, and when the next test is due.
Every default and bound of both kinds is declared here.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Annotated

import isodate
from pydantic import Field

from mmif_operator.core.cel import Rule
from mmif_operator.core.model import (
    DNS_SUBDOMAIN,
    MAX_FAILURE_MESSAGE,
    Condition,
    SpecModel,
    StatusModel,
    Timestamp,
    list_map,
)
from mmif_operator.kinds.pipeline.app import App
from mmif_operator.kinds.pipeline.model import MAX_STEPS
from mmif_operator.kinds.pipelinerun.model import Item, RunWorkspace
from mmif_operator.notifications.model import MAX_TARGETS, NotificationTarget, RunNotifications

KIND = "Monitor"
PLURAL = "monitors"
REPORT_KIND = "HealthReport"
REPORT_PLURAL = "healthreports"

DEFAULT_INTERVAL = "PT5M"
DEFAULT_KEEP_COUNT = 50
MAX_KEEP_COUNT = 500
DEFAULT_KEEP_AGE = "P7D"
DEFAULT_TEST_TIMEOUT_SECONDS = 600
MAX_SAMPLE_ITEMS = 10
RECENT_REPORTS = 10  # the latest reports listed in a Monitor's status
FAILING_AFTER = 3  # this many failed tests in a row: Failing (fewer: Degraded)
MAX_ACTIVITIES = 2 * MAX_STEPS  # reliability entries (a step whose app changed is a new entry)
MAX_FAILED_ACTIVITIES = MAX_STEPS + 1  # one per step, plus one for the run itself
REPORT_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"
PROBE_STEP = "app"  # the one step of a single-app Monitor's probe Pipeline

# ISO 8601 durations in weeks, days, hours, minutes and seconds (no years or months: their length
# varies). The API server checks the shape (RE2 has no look-ahead, hence the CEL rule beside it);
# the models also parse it with isodate.
_DURATION_PATTERN = r"^P([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?$"


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (`PT5M`, `P7D`, `PT1H30M`) as a timedelta (isodate)."""
    value = isodate.parse_duration(text)
    if not isinstance(value, timedelta):  # years or months: isodate's own Duration
        raise ValueError(f"{text!r}: use weeks, days, hours, minutes and seconds (no years or months)")
    return value


def _positive_duration(text: str) -> bool:
    if text.endswith("T"):
        return False
    try:
        return parse_duration(text) >= timedelta(seconds=1)
    except (ValueError, isodate.ISO8601Error):
        return False


Duration = Annotated[
    str,
    Field(pattern=_DURATION_PATTERN, min_length=3, max_length=64),
    Rule(
        "!self.endsWith('T') && self.matches('[1-9]')",
        "must be an ISO 8601 duration of at least one second, e.g. PT10S, PT5M, PT1H30M, P7D",
        check=_positive_duration,
    ),
]
"""An ISO 8601 duration of at least one second, without years or months."""


class Health(enum.StrEnum):
    UNKNOWN = "Unknown"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    FAILING = "Failing"


class TestResult(enum.StrEnum):
    __test__ = False  # not a pytest test class

    PASSED = "Passed"
    FAILED = "Failed"


class ActivityResult(enum.StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    NOT_RUN = "NotRun"


# -- Monitor spec ------------------------------------------------------------------------------


class MonitorTarget(SpecModel):
    """What is tested: exactly one of `pipeline` or `app`."""

    pipeline: str | None = Field(
        None,
        description="The name of a Pipeline in the Monitor's namespace: each test is a run of "
        "the sample through the whole pipeline.",
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )
    app: App | None = Field(
        None,
        description="A single app: its `image` (run in a Job next to each item, as a Job-mode "
        "step) or the `url` of a running app (`mode: Service`), with its `parameters`. The "
        "operator tests it through a one-step Pipeline `<monitor>-probe` it owns (step `app`).",
    )

    cel_rules = (
        Rule(
            "has(self.pipeline) != has(self.app)",
            "spec.target: exactly one of pipeline or app must be set",
            check=lambda t: (t.pipeline is None) != (t.app is None),
        ),
    )


class MonitorSample(SpecModel):
    """The small input every test sends: documents on a volume, as in a PipelineRun."""

    workspace: RunWorkspace = Field(
        description="The volume holding the sample's media (as a PipelineRun's `workspace`); each "
        "test writes its outputs under `<outputDir>/<test run>/` there."
    )
    items: list[Item] = Field(
        description="The sample's items, as a PipelineRun's `items`.",
        min_length=1,
        max_length=MAX_SAMPLE_ITEMS,
    )


class KeepPolicy(SpecModel):
    """Which HealthReports are kept: the newest `count`, none older than `age` (the newest report
    is always kept)."""

    count: int = Field(
        DEFAULT_KEEP_COUNT,
        description=f"How many reports are kept at most (at least {FAILING_AFTER}: the health rule reads the latest {FAILING_AFTER}).",
        ge=FAILING_AFTER,
        le=MAX_KEEP_COUNT,
    )
    age: Duration = Field(
        DEFAULT_KEEP_AGE, description="Reports older than this (ISO 8601 duration) are deleted."
    )


class MonitorSpec(SpecModel):
    """The desired state of a Monitor."""

    target: MonitorTarget = Field(description="The pipeline or the app tested.")
    interval: Duration = Field(
        DEFAULT_INTERVAL,
        description="How often a test runs: an ISO 8601 duration (e.g. `PT10S`, `PT5M`, `PT1H`), "
        "at least one second. The next test is due one interval after the latest test's scheduled "
        "time (ticks missed while a test ran or the operator was down are skipped, not caught "
        "up); a change applies from the next test on.",
    )
    title: str | None = Field(None, description="A human-readable name for the monitor.", max_length=256)
    sample: MonitorSample = Field(description="The input each test runs.")
    keep: KeepPolicy = Field(
        default_factory=lambda: KeepPolicy.model_validate({}),
        description="How many HealthReports are kept, and for how long.",
    )
    suspend: bool = Field(
        False,
        description="When true, no new test starts (a test in flight is still reported); health "
        "and reliability stay as the kept reports say.",
    )
    notifications: list[NotificationTarget] = Field(
        default_factory=list,
        description="Who hears when the health changes: webhooks (CloudEvents, type "
        "`dev.mmif.monitor.health-changed`) and email, as a Pipeline's `notifications`; only the "
        "event `HealthChanged` is sent. Delivered at least once, with retries (see "
        "`status.notifications`); a newer change replaces an earlier one not yet delivered.",
        max_length=MAX_TARGETS,
        json_schema_extra=list_map("name"),
    )
    timeout_seconds: int = Field(
        DEFAULT_TEST_TIMEOUT_SECONDS,
        description="One test's deadline: its run's `timeoutSeconds` and `startTimeoutSeconds` "
        "(a target that is not Ready in time makes a failed report saying why).",
        ge=1,
        le=86400,
    )

    cel_rules = (
        Rule(
            "!has(self.notifications) || self.notifications.all(n, self.notifications.exists_one(m, m.name == n.name))",
            "spec.notifications: target names must be unique",
            check=lambda m: len({n.name for n in m.notifications}) == len(m.notifications),
            field_path=".notifications",
        ),
    )


# -- HealthReport --------------------------------------------------------------------------------


class FailedActivity(SpecModel):
    """One activity (a step of the pipeline and its app) that made a test fail."""

    step: str | None = Field(
        None, description="The step that failed (none when the test run failed as a whole).", max_length=30
    )
    app: str | None = Field(
        None, description="The step's app: its image, or its url for an app someone runs.", max_length=512
    )
    reason: str = Field(
        description="A CamelCase word: the item failure's (`AppError`, `InvalidOutput`, ...) or "
        "the run's (`PipelineNotFound`, `Timeout`, ...).",
        max_length=128,
    )
    message: str = Field(
        "", description="The app's own message, or the run's.", max_length=MAX_FAILURE_MESSAGE
    )
    item: str | None = Field(None, description="The sample item that failed, if named.", max_length=63)


class ActivityOutcome(SpecModel):
    """How one activity did in one test."""

    step: str = Field(description="The step's name.", max_length=30)
    app: str | None = Field(None, description="The step's app: its image or url.", max_length=512)
    result: ActivityResult = Field(
        description="`Passed`, `Failed`, or `NotRun` (an earlier step failed, or the run never started)."
    )


class HealthReportSpec(SpecModel):
    """How one test ended. Written once by the operator, never changed."""

    monitor: str = Field(description="The Monitor the test was for.", max_length=253)
    id: str = Field(
        description="The test's scheduled time, `YYYYMMDDTHHMMSSZ` (UTC), e.g. `20261201T183305Z`: "
        "the report's name is `<monitor>-<id in lower case>`.",
        pattern=REPORT_ID_PATTERN,
        max_length=16,
    )
    time: Timestamp = Field(
        description="The test's scheduled time (the same as `id`).", json_schema_extra={"maxLength": 32}
    )
    result: TestResult = Field(description="`Passed` (every sample item went through) or `Failed`.")
    duration_seconds: float = Field(description="From the test run's creation to its end, in seconds.", ge=0)
    summary: str = Field(description="E.g. `passed`, `1 activity failed`.", max_length=256)
    run: str = Field(description="The test's PipelineRun (deleted once reported).", max_length=253)
    run_reason: str | None = Field(
        None, description="The test run's `Succeeded` reason, e.g. `ItemsFailed`.", max_length=128
    )
    failed_activities: list[FailedActivity] = Field(
        default_factory=list,
        description="The activities that made the test fail: one per failed step (its first "
        "failure's reason and message), or one for the run when it failed as a whole.",
        max_length=MAX_FAILED_ACTIVITIES,
    )
    activities: list[ActivityOutcome] = Field(
        default_factory=list,
        description="Every step of the tested pipeline and how it did: what reliability counts.",
        max_length=MAX_STEPS,
    )

    cel_rules = (Rule("self == oldSelf", "a HealthReport is written once and never changed"),)


class HealthReportStatus(StatusModel):
    """A HealthReport has no status: everything is in its spec, written once at creation."""


# -- Monitor status --------------------------------------------------------------------------------


class ReportRef(StatusModel):
    """One report, in brief."""

    id: str = Field(
        description="The report's id (its scheduled time).", pattern=REPORT_ID_PATTERN, max_length=16
    )
    time: Timestamp = Field(description="The test's scheduled time.")
    result: TestResult = Field(description="`Passed` or `Failed`.")
    name: str | None = Field(None, description="The HealthReport's name.", max_length=253)
    summary: str | None = Field(None, description="E.g. `1 activity failed`.", max_length=256)


class ActivityReliability(StatusModel):
    """The reliability of one activity over the kept reports."""

    step: str = Field(description="The step's name.", max_length=30)
    app: str | None = Field(None, description="The step's app: its image or url.", max_length=512)
    tests: int = Field(description="Kept reports in which the activity ran.", ge=0)
    passed: int = Field(description="Of those, the ones in which it passed.", ge=0)
    reliability: float = Field(description="`passed / tests` (0 to 1).", ge=0, le=1)


class CurrentTest(StatusModel):
    """The test in flight."""

    id: str = Field(description="Its report id (scheduled time).", pattern=REPORT_ID_PATTERN, max_length=16)
    run: str = Field(description="Its PipelineRun.", max_length=253)


class MonitorStatus(StatusModel):
    """The observed state of a Monitor."""

    observed_generation: int | None = Field(
        None, description="The `metadata.generation` this status describes.", ge=0
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Ready`: True when the health is `Healthy`, else False with the health as "
        "reason (`Degraded`, `Failing`, `Unknown`) or `Suspended`. `Reconciling`: True until the "
        "first report. `Stalled`: True when the operator cannot test at all (a name conflict, "
        "a test run the API server refuses). All carry `observedGeneration`.",
        max_length=8,
        json_schema_extra=list_map("type"),
    )
    target: str | None = Field(
        None,
        description="What is tested, in brief: `pipeline/<name>`, or `app/<image or url>`.",
        max_length=600,
    )
    health: Health | None = Field(
        None,
        description=f"`Unknown` (no report yet), `Healthy` (the latest test passed), `Degraded` "
        f"(it failed, but fewer than {FAILING_AFTER} in a row), `Failing` (the latest "
        f"{FAILING_AFTER} failed).",
    )
    last_report: ReportRef | None = Field(None, description="The latest report.")
    next_test_time: Timestamp | None = Field(
        None, description="When the next test is due (none while suspended)."
    )
    current_test: CurrentTest | None = Field(None, description="The test in flight, if any.")
    reliability: float | None = Field(
        None, description="The share of `Passed` among the kept reports (0 to 1).", ge=0, le=1
    )
    reports_kept: int = Field(0, description="How many HealthReports are kept.", ge=0)
    recent_reports: list[ReportRef] = Field(
        default_factory=list,
        description=f"The {RECENT_REPORTS} latest reports, oldest first.",
        max_length=RECENT_REPORTS,
    )
    activities: list[ActivityReliability] = Field(
        default_factory=list,
        description="The reliability of each activity (step and app) over the kept reports, in "
        "the pipeline's order.",
        max_length=MAX_ACTIVITIES,
    )
    notifications: RunNotifications | None = Field(
        None,
        description="The HealthChanged notifications sent to `spec.notifications`: one delivery "
        "per target (the latest change), with its attempts.",
    )
