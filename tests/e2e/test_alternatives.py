"""A step's alternatives on the real cluster, as a user observes them: a step whose own app
(failer) and one alternative (textgen) are each tested by a single-app Monitor every 10 s. While
both are Healthy a run's items go to the step's own app (the declared first); once the own app
breaks (its Monitor goes Degraded, its reliability drops) a new run's items go to the
alternative, and the run succeeds although the own app would have failed them. The manifest
says which app served each item, the run's status how many each served, an Event the choice."""

from __future__ import annotations

import json

import pytest

from tests import kube
from tests.e2e.test_monitors import monitor_body, wait_health
from tests.e2e.test_run_behaviour import manifest_of

pytestmark = pytest.mark.cluster

ONE_WORKER = [{"name": "CLAMS_GUNICORN_WORKERS", "value": "1"}]
ITEMS = ["media/alt-0.mp4", "media/alt-1.mp4"]


def break_failer(namespace: str, fail_on: str) -> None:
    """The own app made to fail every item (and the Monitor's sample): `failOn` in every location."""
    kube.kubectl(
        "patch", "monitor", "main", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"target": {"app": {"parameters": {"failOn": fail_on}}}}}),
    )  # fmt: skip
    pipe = kube.get("pipeline", "alt", namespace)
    steps = pipe["spec"]["steps"]
    steps[0]["parameters"] = {"failOn": fail_on}
    kube.kubectl(
        "patch",
        "pipeline",
        "alt",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"steps": steps}}),
    )


def run_items(namespace: str, build, runs, workspace, name: str) -> tuple[dict, dict]:
    items = [build.item(loc, name=f"clip-{i}") for i, loc in enumerate(ITEMS)]
    build.apply(build.run(name, "alt", items, workspace.claim_name), namespace)
    run = runs.wait_for_run_to_finish(namespace, name, timeout=180)
    return run, manifest_of(workspace, run)


def choice_events(namespace: str, run: str) -> list[dict]:
    return [
        e
        for e in kube.get_list("events", namespace)
        if e.get("involvedObject", {}).get("name") == run and e.get("reason") == "AlternativeChosen"
    ]


def test_items_go_to_the_most_reliable_healthy_alternative(
    namespace, operator_deployed, workspace, build, runs
):
    failer, textgen = build.app_image("failer"), build.app_image("textgen")
    workspace.write_media({"media/probe.mp4": "sample\n", **{loc: f"clip {loc}\n" for loc in ITEMS}})
    own = build.step(
        "work",
        "failer",
        parameters={"failOn": ""},
        alternatives=[{"name": "backup", "image": textgen, "env": ONE_WORKER}],
    )
    build.apply(build.pipeline("alt", [own], workspace.claim_name), namespace)
    pipe = kube.eventually(
        lambda: (p := kube.get("pipeline", "alt", namespace)).get("status", {}).get("steps") and p,
        timeout=60,
        what="the Pipeline's status",
    )
    (step_status,) = pipe["status"]["steps"]
    assert step_status["ready"] and step_status["alternatives"] == [
        {"name": "backup", "mode": "Job", "ready": True}
    ]

    main_app = {"image": failer, "parameters": {"failOn": ""}, "env": ONE_WORKER}
    build.apply(monitor_body("main", workspace.claim_name, {"app": main_app}, "PT10S"), namespace)
    build.apply(
        monitor_body("backup", workspace.claim_name, {"app": {"image": textgen, "env": ONE_WORKER}}, "PT10S"),
        namespace,
    )
    wait_health(namespace, "main", "Healthy")
    wait_health(namespace, "backup", "Healthy")

    # Both Healthy, both reliability 1: the declared first, the step's own app, serves every item.
    run, manifest = run_items(namespace, build, runs, workspace, "first")
    assert runs.succeeded_condition(run)["status"] == "True", runs.run_diagnostics(namespace, "first")
    assert [e["servedBy"] for e in manifest["items"]] == [
        [{"step": "work", "name": "work", "image": failer}]
    ] * 2
    (entry,) = run["status"]["alternatives"]
    assert (entry["step"], entry["chosen"], entry["reason"]) == ("work", "work", "Healthiest"), entry
    assert entry["served"] == [{"name": "work", "items": 2, "failed": 0}]

    # The own app breaks: its Monitor's test fails, health Degraded, reliability below 1.
    break_failer(namespace, "mp4")
    (activity,) = wait_health(namespace, "main", "Degraded")["status"]["activities"]
    assert activity["app"] == failer and activity["reliability"] < 1, activity

    # A new run's items go to the alternative: they succeed, the manifest names it for each item.
    run, manifest = run_items(namespace, build, runs, workspace, "second")
    assert runs.succeeded_condition(run)["status"] == "True", runs.run_diagnostics(namespace, "second")
    assert [e["servedBy"] for e in manifest["items"]] == [
        [{"step": "work", "name": "backup", "image": textgen}]
    ] * 2
    (entry,) = run["status"]["alternatives"]
    assert (entry["chosen"], entry["reason"]) == ("backup", "Healthiest"), entry
    assert entry["served"] == [{"name": "backup", "items": 2, "failed": 0}]
    assert "work" in entry["message"] and ("Degraded" in entry["message"] or "Failing" in entry["message"])
    (event,) = choice_events(namespace, "second")
    assert "now go to backup" in event["message"], event


@pytest.mark.parametrize(
    ("alternatives", "field", "message"),
    [
        ([{"name": "work", "image": "x:1"}], "spec.steps[0].alternatives", "differ from the step's name"),
        (
            [{"name": "b", "image": "x:1", "mode": "Service"}],
            "spec.steps[0].alternatives[0].mode",
            "needs url",
        ),
        ([{"name": "Bad_Name", "image": "x:1"}], "spec.steps[0].alternatives[0].name", "should match"),
        (
            [{"name": f"a{i}", "image": "x:1"} for i in range(6)],
            "spec.steps[0].alternatives",
            "must have at most 5",
        ),
    ],
)
def test_bad_alternatives_are_refused_at_admission(
    namespace, operator_deployed, build, alternatives, field, message
):
    body = build.pipeline("bad", [build.step("work", "textgen", alternatives=alternatives)])
    proc = kube.apply(body, namespace, check=False)
    assert proc.returncode != 0 and field in proc.stderr and message in proc.stderr, proc.stderr
