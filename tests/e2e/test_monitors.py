"""Monitors end to end on the real cluster, as a user observes them (kubectl get monitors,
healthreports, Events): a two-step pipeline tested every few seconds, broken and repaired
(Degraded, Failing, Healthy again, with Events), its reliability matching its reports, pruning by
`keep.count`, the operator killed mid-way without a report lost or doubled; a single-app monitor
whose interval is patched; an interval refused at admission."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests import kube
from tests.e2e.test_notifications import RECEIVER, received, receiver_objects

pytestmark = pytest.mark.cluster

SAMPLE_FILE = "media/probe.mp4"
ID_FORMAT = "%Y%m%dT%H%M%SZ"


def monitor_body(name: str, claim: str, target: dict, interval: str, **spec) -> dict:
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "Monitor",
        "metadata": {"name": name},
        "spec": {
            "target": target,
            "interval": interval,
            "title": f"{name} health",
            "sample": {
                "workspace": {"claimName": claim},
                "items": [
                    {"name": "probe", "documents": [{"location": SAMPLE_FILE, "mimeType": "video/mp4"}]}
                ],
            },
            "timeoutSeconds": 120,
            **spec,
        },
    }


def get_monitor(namespace: str, name: str) -> dict:
    return kube.get("monitor", name, namespace)


def reports_of(namespace: str, name: str) -> list[dict]:
    items = kube.get_list("healthreports", namespace, f"mmif.dev/monitor={name}")
    return sorted(
        (r for r in items if not r["metadata"].get("deletionTimestamp")), key=lambda r: r["spec"]["id"]
    )


def health_events(namespace: str, name: str) -> list[str]:
    events = kube.get_list("events", namespace)
    return [
        e.get("message", "")
        for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        if e.get("reason") == "HealthChanged" and e.get("involvedObject", {}).get("name") == name
    ]


def wait_health(namespace: str, name: str, health: str, timeout: float = 150) -> dict:
    def probe():
        mon = get_monitor(namespace, name)
        return mon if mon.get("status", {}).get("health") == health else None

    return kube.eventually(probe, timeout=timeout, interval=1, what=f"monitor {name} {health}")


def seconds(report_id: str) -> float:
    return datetime.strptime(report_id, ID_FORMAT).replace(tzinfo=UTC).timestamp()


def set_fail_on(namespace: str, pipeline: str, value: str) -> None:
    pipe = kube.get("pipeline", pipeline, namespace)
    steps = pipe["spec"]["steps"]
    steps[1]["parameters"] = {"failOn": value}
    kube.kubectl(
        "patch",
        "pipeline",
        pipeline,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"steps": steps}}),
    )


def kill_operator(operator_deployed) -> None:
    ns_op = operator_deployed.namespace
    old = [
        p["metadata"]["name"] for p in kube.get_list("pods", ns_op, "app.kubernetes.io/name=mmif-operator")
    ]
    assert len(old) == 1, old
    kube.kubectl("delete", "pod", old[0], "-n", ns_op, "--grace-period=0", "--force")

    def new_operator_ready():
        return [
            p
            for p in kube.get_list("pods", ns_op, "app.kubernetes.io/name=mmif-operator")
            if p["metadata"]["name"] not in old
            and any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p["status"].get("conditions") or []
            )
        ]

    kube.eventually(new_operator_ready, timeout=120, what="a new operator pod Ready")


def assert_on_schedule(reports: list[dict], interval: float) -> None:
    """Ids unique, increasing, each a whole number of intervals after the one before."""
    ids = [r["spec"]["id"] for r in reports]
    assert len(ids) == len(set(ids)), ids
    for a, b in zip(ids, ids[1:], strict=False):
        gap = seconds(b) - seconds(a)
        assert gap > 0 and gap % interval == 0, (a, b, ids)


def test_pipeline_monitor_health_reliability_pruning_and_restart(
    namespace, operator_deployed, workspace, build
):
    workspace.write_media({SAMPLE_FILE: "not really a video\n"})
    steps = [build.step("transcript", "textgen"), build.step("check", "failer", parameters={"failOn": ""})]
    build.apply(build.pipeline("pipe", steps, claim_name=workspace.claim_name), namespace)
    build.apply(
        monitor_body("web", workspace.claim_name, {"pipeline": "pipe"}, "PT5S", keep={"count": 4}), namespace
    )

    # Healthy after the first test; the report is a HealthReport owned by the Monitor.
    mon = wait_health(namespace, "web", "Healthy", timeout=120)
    first = reports_of(namespace, "web")[0]
    assert first["spec"]["result"] == "Passed" and first["spec"]["failedActivities"] == []
    assert first["metadata"]["ownerReferences"][0]["uid"] == mon["metadata"]["uid"]
    assert first["metadata"]["name"] == f"web-{first['spec']['id'].lower()}"
    ready = next(c for c in mon["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Healthy", 1)
    columns = kube.kubectl("get", "monitors", "-n", namespace).stdout
    assert "pipeline/pipe" in columns and "Healthy" in columns and "PT5S" in columns, columns

    # Break the second step: a failed report names the step, its app and the app's own message.
    set_fail_on(namespace, "pipe", "probe")
    mon = wait_health(namespace, "web", "Degraded", timeout=120)
    failed = [r for r in reports_of(namespace, "web") if r["spec"]["result"] == "Failed"]
    assert failed, reports_of(namespace, "web")
    (activity,) = failed[-1]["spec"]["failedActivities"]
    assert activity["step"] == "check"
    assert activity["app"] == build.app_image("failer")
    assert activity["reason"] == "AppError"
    assert "failOn 'probe' matched" in activity["message"], activity
    assert failed[-1]["spec"]["summary"] == "1 activity failed"
    kube.eventually(
        lambda: any("Healthy -> Degraded" in m for m in health_events(namespace, "web")),
        timeout=30,
        what="a HealthChanged Event to Degraded",
    )

    # The operator killed while a test runs: that test still gets its report, once.
    in_flight = kube.eventually(
        lambda: get_monitor(namespace, "web")["status"].get("currentTest"),
        timeout=60,
        what="a test in flight",
    )
    kill_operator(operator_deployed)
    kube.eventually(
        lambda: in_flight["id"] in [r["spec"]["id"] for r in reports_of(namespace, "web")],
        timeout=120,
        what=f"the report of test {in_flight['id']}, in flight when the operator died",
    )
    mon = wait_health(namespace, "web", "Failing", timeout=150)
    assert any("Degraded -> Failing" in m for m in health_events(namespace, "web"))

    # Reliability and pruning match the kept reports (read together: the next test may land).
    def consistent():
        mon = get_monitor(namespace, "web")
        reports = reports_of(namespace, "web")
        status = mon["status"]
        if [r["spec"]["id"] for r in reports][-len(status["recentReports"]) :] != [
            r["id"] for r in status["recentReports"]
        ]:
            return None
        return mon, reports

    mon, reports = kube.eventually(consistent, timeout=60, interval=1, what="status and reports agree")
    status = mon["status"]
    assert len(reports) == 4 == status["reportsKept"], [r["spec"]["id"] for r in reports]
    assert_on_schedule(reports, 5)
    passed = sum(r["spec"]["result"] == "Passed" for r in reports)
    assert status["reliability"] == pytest.approx(passed / 4, abs=1e-3)
    by_step = {a["step"]: a for a in status["activities"]}
    check_ran = [
        a["result"]
        for r in reports
        for a in r["spec"]["activities"]
        if a["step"] == "check" and a["result"] != "NotRun"
    ]
    assert by_step["check"]["tests"] == len(check_ran)
    assert by_step["check"]["reliability"] == pytest.approx(
        check_ran.count("Passed") / len(check_ran), abs=1e-3
    )
    assert by_step["transcript"]["reliability"] == 1.0
    assert by_step["check"]["app"] == build.app_image("failer")

    # Repair: Healthy again, with an Event; reported test runs are gone.
    set_fail_on(namespace, "pipe", "")
    wait_health(namespace, "web", "Healthy", timeout=150)
    kube.eventually(
        lambda: any(m.startswith("Failing -> Healthy") for m in health_events(namespace, "web")),
        timeout=30,
        what="a HealthChanged Event back to Healthy",
    )
    kube.eventually(
        lambda: len(kube.get_list("pipelineruns", namespace, "mmif.dev/monitor=web")) <= 1,
        timeout=60,
        what="reported test runs deleted (at most the one in flight left)",
    )
    reports = reports_of(namespace, "web")
    assert len(reports) == 4 and first["spec"]["id"] not in [r["spec"]["id"] for r in reports]  # pruned
    assert_on_schedule(reports, 5)


def test_single_app_monitor_interval_patch_and_notification(namespace, operator_deployed, workspace, build):
    workspace.write_media({SAMPLE_FILE: "not really a video\n"})
    build.apply(receiver_objects(RECEIVER, build.app_image(RECEIVER), {"http": 5000}), namespace)
    kube.wait(f"pod/{RECEIVER}", "condition=Ready", namespace, timeout=120)
    app = {"image": build.app_image("textgen"), "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}]}
    hook = {
        "name": "hooks",
        "events": ["HealthChanged"],
        "webhook": {"url": f"http://{RECEIVER}.{namespace}.svc:5000/"},
        "retry": {"backoffSeconds": 1},
    }
    build.apply(
        monitor_body("solo", workspace.claim_name, {"app": app}, "PT1H", notifications=[hook]), namespace
    )

    mon = wait_health(namespace, "solo", "Healthy", timeout=120)
    (only,) = reports_of(namespace, "solo")
    assert only["spec"]["activities"] == [
        {"step": "app", "app": build.app_image("textgen"), "result": "Passed"}
    ]
    probe = kube.get("pipeline", "solo-probe", namespace)
    assert probe["metadata"]["ownerReferences"][0]["uid"] == mon["metadata"]["uid"]
    assert mon["status"]["target"] == f"app/{build.app_image('textgen')}"
    # An hour until the next test.
    assert (
        seconds(mon["status"]["nextTestTime"].replace("-", "").replace(":", "")) - seconds(only["spec"]["id"])
        == 3600
    )
    assert mon["status"].get("currentTest") is None

    # Unknown -> Healthy was notified: one CloudEvent naming the monitor, recorded as delivered.
    def health_events_received():
        return [
            r
            for r in received(namespace)["events"]
            if r["attributes"]["type"] == "dev.mmif.monitor.health-changed"
        ]

    (event,) = kube.eventually(health_events_received, timeout=60, what="a HealthChanged CloudEvent")
    assert event["attributes"]["source"] == f"/apis/mmif.dev/v1alpha1/namespaces/{namespace}/monitors/solo"
    data = event["data"]
    assert (data["monitor"], data["health"], data["previousHealth"]) == ("solo", "Healthy", "Unknown")
    assert only["spec"]["id"] in data["message"]
    kube.eventually(
        lambda: get_monitor(namespace, "solo")["status"].get("notifications", {}).get("delivered") == 1,
        timeout=60,
        what="the delivery recorded in status.notifications",
    )

    # A patched interval takes effect without a restart: the next test is due 5 s after the first.
    kube.kubectl(
        "patch", "monitor", "solo", "-n", namespace, "--type=merge", "-p", '{"spec":{"interval":"PT5S"}}'
    )
    kube.eventually(lambda: len(reports_of(namespace, "solo")) >= 2, timeout=120, what="a second report")
    reports = reports_of(namespace, "solo")
    assert_on_schedule(reports, 5)
    assert seconds(reports[1]["spec"]["id"]) - seconds(reports[0]["spec"]["id"]) < 3600
    assert all(r["spec"]["result"] == "Passed" for r in reports)

    # Suspended: no new test starts.
    kube.kubectl(
        "patch", "monitor", "solo", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    mon = kube.eventually(
        lambda: (
            (m := get_monitor(namespace, "solo"))["status"].get("observedGeneration") == 3
            and not m["status"].get("currentTest")
            and m
        ),
        timeout=90,
        what="the suspended monitor with no test in flight",
    )
    assert mon["status"].get("nextTestTime") is None
    ready = next(c for c in mon["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_interval_is_validated_at_admission(namespace, operator_deployed):
    proc = kube.apply(monitor_body("bad", "media", {"pipeline": "pipe"}, "5 minutes"), namespace, check=False)
    assert proc.returncode != 0
    assert "spec.interval" in proc.stderr, proc.stderr
    proc = kube.apply(monitor_body("zero", "media", {"pipeline": "pipe"}, "PT0S"), namespace, check=False)
    assert proc.returncode != 0 and "spec.interval" in proc.stderr and "at least one second" in proc.stderr, (
        proc.stderr
    )
    proc = kube.apply(
        monitor_body("both", "media", {"pipeline": "pipe", "app": {"image": "x"}}, "PT5S"),
        namespace,
        check=False,
    )
    assert proc.returncode != 0 and "exactly one of pipeline or app" in proc.stderr, proc.stderr
