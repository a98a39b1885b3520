"""A Monitor's decisions (kinds/monitor/planning.py): report ids and the schedule, the health rule,
reliability, pruning, a report made from a test run's status, and one whole pass (which reports
to write, which runs to delete, when the next test starts, the status and the Event)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from mmif_operator.core import labels as L
from mmif_operator.kinds.monitor import children
from mmif_operator.kinds.monitor import planning as P
from mmif_operator.kinds.monitor.model import (
    ActivityOutcome,
    ActivityResult,
    Health,
    HealthReportSpec,
    MonitorSpec,
    TestResult,
)

T0 = datetime(2026, 12, 1, 18, 33, 5, tzinfo=UTC)
S = timedelta(seconds=1)
SAMPLE = {
    "workspace": {"claimName": "media"},
    "items": [{"documents": [{"location": "m/a.mp4", "mimeType": "video/mp4"}]}],
}
STEPS = [
    {"name": "transcript", "image": "mmif.local/clams-textgen:dev"},
    {"name": "check", "image": "mmif.local/clams-failer:dev"},
]


def monitor(status=None, generation=1, **spec):
    body = {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "Monitor",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "m-uid",
            "generation": generation,
            "creationTimestamp": "2026-12-01T18:33:05Z",
        },
        "spec": {"target": {"pipeline": "pipe"}, "interval": "PT10S", "sample": SAMPLE, **spec},
    }
    if status is not None:
        body["status"] = status
    return body


def run_status(phase="Succeeded", failures=(), steps=None, reason=None, message=""):
    status = {
        "phase": phase,
        "completionTime": "2026-12-01T18:33:25Z",
        "pipelineSpec": {"steps": STEPS},
        "steps": steps
        if steps is not None
        else [
            {"name": "transcript", "succeeded": 1},
            {"name": "check", "succeeded": 1 if not failures else 0, "failed": 1 if failures else 0},
        ],
        "failures": list(failures),
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True" if phase == "Succeeded" else "False",
                "reason": reason or phase,
                "message": message,
            }
        ],
    }
    return status


def a_run(rid, status=None, uid="m-uid"):
    body = children.test_run(monitor(), MonitorSpec.from_obj(monitor()["spec"]), rid)
    body["metadata"]["uid"] = f"run-{rid}"
    body["metadata"]["creationTimestamp"] = "2026-12-01T18:33:05Z"
    body["metadata"]["ownerReferences"][0]["uid"] = uid
    if status is not None:
        body["status"] = status
    return body


def report(rid, result=TestResult.PASSED, activities=None):
    spec = HealthReportSpec(
        monitor="web",
        id=rid,
        time=P.time_of(rid),
        result=result,
        duration_seconds=3,
        summary="passed" if result is TestResult.PASSED else "1 activity failed",
        run=children.child_name("web", rid),
        activities=activities
        or [
            ActivityOutcome(step="transcript", app="t", result=ActivityResult.PASSED),
            ActivityOutcome(
                step="check",
                app="c",
                result=ActivityResult.PASSED if result is TestResult.PASSED else ActivityResult.FAILED,
            ),
        ],
    )
    return spec


def report_obj(spec):
    body = children.health_report(monitor(), spec)
    body["metadata"]["uid"] = f"r-{spec.id}"
    return body


# -- ids and schedule ----------------------------------------------------------------------------


def test_report_id_is_the_utc_scheduled_time_and_names_the_children():
    assert P.report_id(T0) == "20261201T183305Z"
    assert P.report_id(T0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))) == "20261201T183305Z"
    assert P.time_of("20261201T183305Z") == T0
    assert children.child_name("web", "20261201T183305Z") == "web-20261201t183305z"
    assert children.probe_pipeline_name("web") == "web-probe"


def test_the_first_test_is_due_at_creation_then_one_interval_after_the_latest():
    iv = timedelta(seconds=10)
    assert P.next_due(None, iv, T0 + timedelta(microseconds=500), T0 + 3 * S) == T0
    assert P.next_due(T0, iv, T0, T0 + 3 * S) == T0 + 10 * S
    assert P.next_due(T0, iv, T0, T0 + 15 * S) == T0 + 10 * S  # one tick late: still that tick


def test_missed_ticks_are_skipped_and_ids_stay_on_the_grid():
    iv = timedelta(seconds=10)
    # the latest test was at T0; at T0+35 s the ticks T0+10 and T0+20 were missed
    assert P.next_due(T0, iv, T0, T0 + 35 * S) == T0 + 30 * S
    assert P.next_due(T0, iv, T0, T0 + 40 * S) == T0 + 40 * S


def test_interval_is_parsed_with_isodate_in_whole_seconds():
    spec = MonitorSpec.from_obj({**monitor()["spec"], "interval": "PT1H30M"})
    assert P.interval_of(spec) == timedelta(minutes=90)
    assert MonitorSpec.from_obj({**monitor()["spec"], "interval": "PT1.4S"}).interval == "PT1.4S"
    assert P.interval_of(MonitorSpec.from_obj({**monitor()["spec"], "interval": "PT1.4S"})) == S


@pytest.mark.parametrize("bad", ["5m", "PT", "P", "PT0S", "P1M", "P1Y", "PT5M ", "1h", "P1DT"])
def test_bad_intervals_are_refused_by_the_model(bad):
    with pytest.raises(ValidationError):
        MonitorSpec.from_obj({**monitor()["spec"], "interval": bad})


def test_defaults_are_declared_in_the_model():
    spec = MonitorSpec.from_obj({"target": {"pipeline": "p"}, "sample": SAMPLE})
    assert spec.interval == "PT5M"
    assert (spec.keep.count, spec.keep.age) == (50, "P7D")
    assert spec.suspend is False
    with pytest.raises(ValidationError, match="exactly one of pipeline or app"):
        MonitorSpec.from_obj({"target": {}, "sample": SAMPLE})
    with pytest.raises(ValidationError, match="exactly one of pipeline or app"):
        MonitorSpec.from_obj({"target": {"pipeline": "p", "app": {"image": "x"}}, "sample": SAMPLE})


# -- health rule -----------------------------------------------------------------------------------

PASS, FAIL = TestResult.PASSED, TestResult.FAILED


@pytest.mark.parametrize(
    ("results", "health"),
    [
        ([], Health.UNKNOWN),
        ([PASS], Health.HEALTHY),
        ([FAIL, FAIL, FAIL, PASS], Health.HEALTHY),
        ([FAIL], Health.DEGRADED),
        ([PASS, FAIL], Health.DEGRADED),
        ([PASS, FAIL, FAIL], Health.DEGRADED),
        ([PASS, FAIL, FAIL, FAIL], Health.FAILING),
        ([FAIL, FAIL, FAIL], Health.FAILING),
        ([FAIL, FAIL, PASS, FAIL, FAIL], Health.DEGRADED),
    ],
)
def test_health_rule(results, health):
    assert P.health_of(results) is health


# -- reliability -----------------------------------------------------------------------------------


def test_reliability_per_activity_counts_only_the_tests_where_it_ran():
    not_run = [
        ActivityOutcome(step="transcript", app="t", result=ActivityResult.FAILED),
        ActivityOutcome(step="check", app="c", result=ActivityResult.NOT_RUN),
    ]
    reports = [
        report("20261201T183305Z"),
        report("20261201T183315Z", FAIL),
        report("20261201T183325Z", FAIL, activities=not_run),
        report("20261201T183335Z"),
    ]
    overall, per = P.reliability_of(reports)
    assert overall == 0.5
    by = {(a.step, a.app): (a.passed, a.tests, a.reliability) for a in per}
    assert by == {("transcript", "t"): (3, 4, 0.75), ("check", "c"): (2, 3, 0.6667)}
    assert [a.step for a in per] == ["transcript", "check"]  # the pipeline's order
    assert P.reliability_of([]) == (None, [])


def test_a_step_whose_app_changed_is_a_new_activity():
    new_app = [
        ActivityOutcome(step="transcript", app="t", result=ActivityResult.PASSED),
        ActivityOutcome(step="check", app="c2", result=ActivityResult.PASSED),
    ]
    _, per = P.reliability_of(
        [report("20261201T183305Z", FAIL), report("20261201T183315Z", activities=new_app)]
    )
    assert [(a.step, a.app, a.reliability) for a in per] == [
        ("transcript", "t", 1.0),
        ("check", "c2", 1.0),
        ("check", "c", 0.0),
    ]


# -- pruning ---------------------------------------------------------------------------------------


def test_pruning_keeps_the_newest_count_and_drops_the_old_but_never_the_newest():
    ids = [P.report_id(T0 + i * 10 * S) for i in range(6)]
    reports = [report(i) for i in ids]
    now = T0 + 60 * S
    assert P.to_prune(reports, 4, timedelta(days=7), now) == ids[:2]
    assert P.to_prune(reports, 50, timedelta(seconds=25), now) == ids[:4]
    assert P.to_prune(reports, 50, timedelta(seconds=1), now) == ids[:5]  # the newest stays
    assert P.to_prune([], 3, timedelta(days=1), now) == []


# -- a report from a run -----------------------------------------------------------------------


def test_a_passed_run_makes_a_passed_report():
    run = a_run("20261201T183305Z", run_status())
    rep = P.report_from_run(run, "web", "20261201T183305Z", T0)
    assert rep.result is TestResult.PASSED
    assert rep.summary == "passed"
    assert rep.duration_seconds == 20
    assert rep.failed_activities == []
    assert [(a.step, a.app, a.result) for a in rep.activities] == [
        ("transcript", "mmif.local/clams-textgen:dev", ActivityResult.PASSED),
        ("check", "mmif.local/clams-failer:dev", ActivityResult.PASSED),
    ]


def test_a_failed_step_names_its_app_reason_and_the_apps_own_message():
    failure = {
        "index": 0,
        "item": "probe",
        "step": "check",
        "reason": "AppError",
        "message": "failOn 'probe' matched document d1",
        "time": "2026-12-01T18:33:20Z",
    }
    run = a_run(
        "20261201T183305Z",
        run_status("Failed", [failure, {**failure, "message": "second"}], reason="ItemsFailed"),
    )
    rep = P.report_from_run(run, "web", "20261201T183305Z", T0)
    assert rep.result is TestResult.FAILED
    assert rep.summary == "1 activity failed"
    assert rep.run_reason == "ItemsFailed"
    assert [(f.step, f.app, f.reason, f.message, f.item) for f in rep.failed_activities] == [
        ("check", "mmif.local/clams-failer:dev", "AppError", "failOn 'probe' matched document d1", "probe")
    ]
    assert [a.result for a in rep.activities] == [ActivityResult.PASSED, ActivityResult.FAILED]


def test_a_run_that_failed_as_a_whole_names_the_runs_reason():
    status = run_status("Failed", steps=[], reason="PipelineNotFound", message="Pipeline pipe not found")
    status.pop("pipelineSpec")
    rep = P.report_from_run(a_run("20261201T183305Z", status), "web", "20261201T183305Z", T0)
    assert rep.result is TestResult.FAILED
    assert [(f.step, f.reason, f.message) for f in rep.failed_activities] == [
        (None, "PipelineNotFound", "Pipeline pipe not found")
    ]
    assert rep.summary == "the test run failed: PipelineNotFound"


def test_a_pod_that_could_not_start_is_a_failed_activity():
    status = run_status("Failed", steps=[{"name": "transcript", "failed": 1}], reason="ItemsFailed")
    status["failureReasons"] = [{"step": "transcript", "reason": "ImagePullFailed", "message": "no image"}]
    rep = P.report_from_run(a_run("20261201T183305Z", status), "web", "20261201T183305Z", T0)
    assert [(f.step, f.reason) for f in rep.failed_activities] == [("transcript", "ImagePullFailed")]
    assert [a.result for a in rep.activities] == [ActivityResult.FAILED, ActivityResult.NOT_RUN]


# -- one pass --------------------------------------------------------------------------------------


def test_a_new_monitor_starts_its_first_test_at_once():
    plan = P.plan_monitor(monitor(), [], [], T0 + 1 * S)
    run = plan.create_run
    assert run["metadata"]["name"] == "web-20261201t183305z"
    assert run["metadata"]["labels"][L.MONITOR] == "web"
    assert run["metadata"]["labels"][L.MONITOR_TEST] == "20261201T183305Z"
    assert run["metadata"]["ownerReferences"][0]["uid"] == "m-uid"
    assert run["spec"]["pipelineRef"] == {"name": "pipe"}
    assert run["spec"]["items"] == SAMPLE["items"]
    assert plan.status["health"] == "Unknown"
    assert plan.status["currentTest"] == {"id": "20261201T183305Z", "run": "web-20261201t183305z"}
    assert plan.status["nextTestTime"] == "2026-12-01T18:33:15Z"
    conds = {c["type"]: c for c in plan.status["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "Unknown")
    assert conds["Reconciling"]["status"] == "True"
    assert conds["Stalled"]["status"] == "False"
    assert all(c["observedGeneration"] == 1 for c in conds.values())


def test_a_test_in_flight_blocks_the_next_one():
    run = a_run("20261201T183305Z", {"phase": "Running"})
    plan = P.plan_monitor(monitor(), [run], [], T0 + 30 * S)
    assert plan.create_run is None and not plan.create_reports and not plan.delete_runs
    assert plan.status["currentTest"]["id"] == "20261201T183305Z"


def test_a_finished_run_is_reported_then_deleted_and_the_next_test_starts_on_the_grid():
    run = a_run("20261201T183305Z", run_status())
    plan = P.plan_monitor(monitor(), [run], [], T0 + 25 * S)
    assert [b["metadata"]["name"] for b in plan.create_reports] == ["web-20261201t183305z"]
    assert plan.create_reports[0]["spec"]["result"] == "Passed"
    assert plan.delete_runs == [("web-20261201t183305z", "run-20261201T183305Z")]
    assert plan.create_run["metadata"]["labels"][L.MONITOR_TEST] == "20261201T183325Z"
    assert plan.status["health"] == "Healthy"
    assert plan.status["lastReport"]["id"] == "20261201T183305Z"
    assert plan.status["reliability"] == 1.0


def test_a_finished_run_whose_report_exists_is_only_deleted():
    rid = "20261201T183305Z"
    run = a_run(rid, run_status())
    plan = P.plan_monitor(monitor(), [run], [report_obj(report(rid))], T0 + 5 * S)
    assert plan.create_reports == [] and plan.delete_runs == [(children.child_name("web", rid), f"run-{rid}")]
    assert plan.create_run is None  # the next is due at T0+10
    assert plan.requeue_after == pytest.approx(5.0)


def test_an_interval_change_applies_from_the_latest_test():
    rid = "20261201T183305Z"
    reports = [report_obj(report(rid))]
    assert P.plan_monitor(monitor(interval="PT1H"), [], reports, T0 + 20 * S).create_run is None
    plan = P.plan_monitor(monitor(interval="PT5S"), [], reports, T0 + 20 * S)
    assert plan.create_run["metadata"]["labels"][L.MONITOR_TEST] == "20261201T183325Z"


def test_suspend_stops_new_tests_but_reports_the_one_in_flight():
    rid = "20261201T183305Z"
    plan = P.plan_monitor(monitor(suspend=True), [a_run(rid, run_status())], [], T0 + 60 * S)
    assert plan.create_run is None and len(plan.create_reports) == 1
    assert plan.status["nextTestTime"] is None
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"  # the report passed: Healthy


def test_health_change_posts_an_event_and_reports_are_pruned():
    ids = [P.report_id(T0 + i * 10 * S) for i in range(4)]
    reports = [report_obj(report(i)) for i in ids[:3]]
    failure = {
        "index": 0,
        "step": "check",
        "reason": "AppError",
        "message": "boom",
        "time": "2026-12-01T18:33:40Z",
    }
    run = a_run(ids[3], run_status("Failed", [failure], reason="ItemsFailed"))
    plan = P.plan_monitor(
        monitor(status={"health": "Healthy"}, keep={"count": 3}), [run], reports, T0 + 35 * S
    )
    assert plan.status["health"] == "Degraded"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "HealthChanged")]
    assert "Healthy -> Degraded" in plan.events[0].message and "step check" in plan.events[0].message
    assert plan.prune == [(children.child_name("web", ids[0]), f"r-{ids[0]}")]
    assert plan.status["reportsKept"] == 3
    assert [r["id"] for r in plan.status["recentReports"]] == ids[1:]
    assert plan.status["reliability"] == pytest.approx(0.6667)


def test_runs_and_reports_of_the_same_id_never_double():
    rid = "20261201T183305Z"
    plan = P.plan_monitor(monitor(), [a_run(rid, run_status())], [report_obj(report(rid, FAIL))], T0 + 5 * S)
    assert plan.create_reports == []
    assert plan.status["lastReport"]["result"] == "Failed"  # the report written first stands


def test_a_single_app_target_runs_through_a_probe_pipeline():
    body = monitor()
    body["spec"]["target"] = {
        "app": {"image": "mmif.local/clams-textgen:dev", "parameters": {"pretty": "true"}}
    }
    plan = P.plan_monitor(body, [], [], T0)
    assert plan.probe_pipeline["metadata"]["name"] == "web-probe"
    assert plan.probe_pipeline["spec"]["steps"][0]["name"] == "app"
    assert plan.probe_pipeline["spec"]["steps"][0]["parameters"] == {"pretty": "true"}
    assert plan.create_run["spec"]["pipelineRef"] == {"name": "web-probe"}
    assert plan.status["target"] == "app/mmif.local/clams-textgen:dev"


def test_status_patch_removes_cleared_fields_only():
    assert P.status_patch({"a": 1, "currentTest": {"id": "x"}}, {"a": 1, "currentTest": None, "b": None}) == {
        "currentTest": None
    }


# -- notifications -----------------------------------------------------------------------------


def hook(name="hooks", events=("HealthChanged",)):
    return {"name": name, "events": list(events), "webhook": {"url": "http://receiver:5000/"}}


def test_a_health_change_queues_one_delivery_per_target_that_wants_it():
    rid = "20261201T183305Z"
    failure = {
        "index": 0,
        "step": "check",
        "reason": "AppError",
        "message": "boom",
        "time": "2026-12-01T18:33:20Z",
    }
    run = a_run(rid, run_status("Failed", [failure], reason="ItemsFailed"))
    body = monitor(status={"health": "Healthy"}, notifications=[hook(), hook("runs-only", ["RunFailed"])])
    plan = P.plan_monitor(body, [run], [], T0 + 5 * S)
    box = plan.status["notifications"]
    assert plan.notify and box["pending"] == 1
    (d,) = box["deliveries"]
    assert (d["target"], d["event"], d["phase"], d["reason"]) == (
        "hooks",
        "HealthChanged",
        "Degraded",
        "Healthy",
    )
    assert d["message"].startswith("Healthy -> Degraded: test 20261201T183305Z failed: step check")
    # The next change replaces it (a new id); no change, no delivery.
    later = "20261201T183315Z"
    run2 = a_run(later, run_status())
    again = P.plan_monitor(
        {**body, "status": {"health": "Degraded", "notifications": box}},
        [run2],
        [report_obj(report(rid, FAIL))],
        T0 + 15 * S,
    )
    (d2,) = again.status["notifications"]["deliveries"]
    assert d2["phase"] == "Healthy" and d2["id"] != d["id"]
    same = P.plan_monitor(
        {**body, "status": {"health": "Healthy"}}, [], [report_obj(report(later))], T0 + 16 * S
    )
    assert "notifications" not in same.status and not same.notify


def test_a_monitor_cloudevent_names_the_monitor():
    from mmif_operator.notifications import messages
    from mmif_operator.notifications.model import Delivery

    body = monitor()
    delivery = Delivery.model_validate(
        {
            "id": "i",
            "target": "hooks",
            "event": "HealthChanged",
            "state": "Pending",
            "time": "2026-12-01T18:33:20Z",
            "phase": "Failing",
            "reason": "Degraded",
            "message": "Degraded -> Failing: ...",
        }
    )
    event = messages.cloud_event(body, delivery)
    assert event.get_type() == "dev.mmif.monitor.health-changed"
    assert event.get_source() == "/apis/mmif.dev/v1alpha1/namespaces/ns/monitors/web"
    assert event.get_data() == {
        "monitor": "web",
        "namespace": "ns",
        "uid": "m-uid",
        "event": "HealthChanged",
        "health": "Failing",
        "previousHealth": "Degraded",
        "message": "Degraded -> Failing: ...",
    }


def test_a_monitors_urls_go_through_the_app_url_check():
    from mmif_operator.admission import urls

    spec = {
        "target": {"app": {"mode": "Service", "url": "http://ner--abc.other.svc:5000/"}},
        "notifications": [hook(), {"name": "mail", "events": ["HealthChanged"], "email": {}}],
    }
    assert urls.url_fields("Monitor", spec) == [
        ("spec.target.app.url", "http://ner--abc.other.svc:5000/"),
        ("spec.notifications[0].webhook.url", "http://receiver:5000/"),
    ]
    assert [t.service for t in urls.targets("Monitor", spec, "ns")] == [("other", "ner--abc")]
