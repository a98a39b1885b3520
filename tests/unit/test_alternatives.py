"""A step's alternatives: the choice (kinds/pipelinerun/alternatives.py), the Jobs and status the
run planner makes of it, the runner's record and manifest, and what admission refuses."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from mmif_operator.admission import urls
from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipeline.planning import alternative_status
from mmif_operator.kinds.pipelinerun import alternatives as A
from mmif_operator.kinds.pipelinerun.model import PipelineRunStatus
from mmif_operator.runner import env as E
from mmif_operator.runner.manifest import item_entry
from mmif_operator.runner.paths import RunLayout
from tests.unit.test_reconcile_run import Sim, make_run

STEP = {
    "name": "asr",
    "image": "asr:1",
    "alternatives": [
        {"name": "asr-b", "image": "asr-b:1"},
        {"name": "asr-c", "url": "http://c.ns.svc:5000", "mode": "Service"},
    ],
}
PIPELINE = {"steps": [STEP, {"name": "ner", "image": "ner:1"}]}


def step():
    return PipelineSpec.from_obj(PIPELINE).steps[0]


def single(name, app, health, tests=3, passed=3):
    return A.MonitorView(name, app=app, health=health, activities=((app, tests, passed),) if tests else ())


def chosen(monitors):
    return A.choose(step(), monitors)


# -- the choice ---------------------------------------------------------------------------------


def test_all_healthy_and_equally_reliable_goes_to_the_declared_first():
    c = chosen(
        [
            single("m1", "asr:1", "Healthy"),
            single("m2", "asr-b:1", "Healthy"),
            single("m3", "http://c.ns.svc:5000", "Healthy"),
        ]
    )
    assert (c.candidate.name, c.reason, c.warning) == ("asr", A.R_HEALTHIEST, False)
    assert c.message.startswith("step asr: asr (asr:1) Healthy, reliability 1.00 (monitors m1); then asr-b")


def test_a_failing_or_degraded_own_app_gives_the_next_healthy():
    assert (
        chosen([single("m1", "asr:1", "Failing", 3, 0), single("m2", "asr-b:1", "Healthy")]).candidate.name
        == "asr-b"
    )
    assert (
        chosen([single("m1", "asr:1", "Degraded", 3, 2)]).candidate.name == "asr-b"
    )  # unmonitored beats Degraded


def test_lower_reliability_loses_among_healthy():
    c = chosen([single("m1", "asr:1", "Healthy", 10, 8), single("m2", "asr-b:1", "Healthy", 10, 9)])
    assert (c.candidate.name, c.reason) == ("asr-b", A.R_HEALTHIEST)


def test_none_monitored_goes_to_the_declared_first():
    c = chosen([single("other", "unrelated:1", "Failing", 3, 0)])
    assert (c.candidate.name, c.reason) == ("asr", A.R_NOT_MONITORED)
    assert chosen([]).candidate.name == "asr"


def test_a_monitor_without_reports_yet_covers_nothing():
    assert chosen([A.MonitorView("new", app="asr:1", health="Unknown")]).reason == A.R_NOT_MONITORED


def test_all_failing_still_runs_the_most_reliable_with_a_warning():
    c = chosen(
        [
            single("m1", "asr:1", "Failing", 4, 0),
            single("m2", "asr-b:1", "Failing", 4, 1),
            single("m3", "http://c.ns.svc:5000", "Failing", 4, 0),
        ]
    )
    assert (c.candidate.name, c.reason, c.warning, c.event_reason) == (
        "asr-b",
        A.R_ALL_FAILING,
        True,
        "AllAlternativesFailing",
    )
    assert "every app of step asr is Failing" in c.message


def test_all_failing_equally_keeps_the_declared_order():
    ms = [
        single(f"m{i}", app, "Failing", 3, 0)
        for i, app in enumerate(["asr:1", "asr-b:1", "http://c.ns.svc:5000"])
    ]
    assert chosen(ms).candidate.name == "asr"


def test_pipeline_monitor_activities_give_reliability_not_health():
    # A pipeline Monitor (no app target), Failing as a whole: its activity entries count, its health does not.
    pipeline_monitor = A.MonitorView(
        "pipe", app=None, health="Failing", activities=(("asr:1", 4, 1), ("asr-b:1", 4, 4))
    )
    c = chosen([pipeline_monitor])
    assert (c.candidate.name, c.reason) == ("asr-b", A.R_HEALTHIEST)
    # Pooled with a single-app Monitor's figures: asr 1+4 of 4+4 passed < asr-b's 4 of 4.
    assert chosen([pipeline_monitor, single("m1", "asr:1", "Healthy", 4, 4)]).candidate.name == "asr-b"


def test_monitor_view_from_a_monitor_object():
    view = A.MonitorView.from_monitor(
        "m",
        {"target": {"app": {"url": "http://c.ns.svc:5000"}}},
        {
            "health": "Healthy",
            "activities": [
                {"step": "app", "app": "http://c.ns.svc:5000", "tests": 2, "passed": 1, "reliability": 0.5}
            ],
        },
    )
    assert view == A.MonitorView("m", "http://c.ns.svc:5000", "Healthy", (("http://c.ns.svc:5000", 2, 1),))
    assert A.MonitorView.from_monitor("p", {"target": {"pipeline": "x"}}, {}).app is None


def test_served_step_runs_the_alternative_under_the_step_name():
    s = step()
    own, b, c = A.candidates(s)
    assert A.served_step(s, own) is s
    served = A.served_step(s, b)
    assert (served.name, served.image, served.alternatives) == ("asr", "asr-b:1", [])
    assert A.served_by(c) == {"name": "asr-c", "url": "http://c.ns.svc:5000"}


# -- the planner: Jobs, status, Events ------------------------------------------------------------


def test_jobs_go_to_the_chosen_app_and_status_counts_what_each_served():
    sim = Sim(make_run(n_items=2, parallelism=2), pipeline=PIPELINE)
    monitors = [single("m1", "asr:1", "Failing", 3, 0), single("m2", "asr-b:1", "Healthy")]
    sim.step(monitors=monitors)
    sim.finish(names.prepare_job_name("run-1"), tm={"itemCount": 2})
    plan = sim.step(monitors=monitors)
    assert len(plan.create) == 2
    for body in plan.create:
        assert body["metadata"]["labels"][L.ALTERNATIVE] == "asr-b"
        pod = body["spec"]["template"]["spec"]
        assert pod["initContainers"][0]["image"] == "asr-b:1"  # the alternative's sidecar
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert json.loads(env[E.SERVED_BY]) == {"name": "asr-b", "image": "asr-b:1"}
        assert body["metadata"]["labels"][L.STEP] == "asr"
    [event] = [e for e in plan.events if e.reason == "AlternativeChosen"]
    assert "now go to asr-b" in event.message
    (entry,) = sim.run["status"]["alternatives"]
    assert (entry["step"], entry["chosen"], entry["reason"], entry["served"]) == (
        "asr",
        "asr-b",
        "Healthiest",
        [],
    )

    # One item passes, one fails at the alternative: counted once each, in the outcome's patch.
    sim.finish(names.step_job_name("run-1", 0, 0))
    sim.finish(names.step_job_name("run-1", 1, 0), ok=False, tm={"reason": "AppError", "message": "m"})
    first = sim.apply(sim.plan(monitors=monitors), delete=False)
    assert first.events and not [e for e in first.events if e.reason == "AlternativeChosen"]  # unchanged
    replay = sim.step(monitors=monitors)  # a restart before the deletes: nothing counted twice
    assert not [e for e in replay.events if e.reason == "AlternativeChosen"]
    (entry,) = sim.run["status"]["alternatives"]
    assert entry["served"] == [{"name": "asr-b", "items": 2, "failed": 1}]
    # The step without alternatives: no label, no servedBy, as before.
    ner = [b for b in sim.plans[-2].create + sim.plans[-1].create if b["metadata"]["labels"][L.STEP] == "ner"]
    assert ner and all(L.ALTERNATIVE not in b["metadata"]["labels"] for b in ner)
    assert all(E.SERVED_BY not in json.dumps(b) for b in ner)
    PipelineRunStatus.model_validate(sim.run["status"])


def test_a_change_of_choice_is_recorded_and_all_failing_is_a_warning():
    sim = Sim(make_run(n_items=2, parallelism=1), pipeline=PIPELINE)
    sim.step()
    sim.finish(names.prepare_job_name("run-1"), tm={"itemCount": 2})
    plan = sim.step()  # no monitors: the declared first
    (job,) = plan.create
    assert job["metadata"]["labels"][L.ALTERNATIVE] == "asr"
    assert sim.run["status"]["alternatives"][0]["reason"] == A.R_NOT_MONITORED
    sim.finish(job["metadata"]["name"])
    (ner,) = sim.step().create  # item 0 at its second step (no alternatives)
    sim.finish(ner["metadata"]["name"])
    failing = [
        single(f"m{i}", a, "Failing", 3, 0)
        for i, a in enumerate(["asr:1", "asr-b:1", "http://c.ns.svc:5000"])
    ]
    plan = sim.step(monitors=failing)
    created = [b for b in plan.create if b["metadata"]["labels"][L.STEP] == "asr"]
    assert [b["metadata"]["labels"][L.ALTERNATIVE] for b in created] == ["asr"]
    [warning] = [e for e in plan.events if e.reason == "AllAlternativesFailing"]
    assert warning.type == "Warning" and "still runs" in warning.message
    assert sim.run["status"]["alternatives"][0]["reason"] == A.R_ALL_FAILING


def test_a_step_without_alternatives_makes_the_same_job_as_before():
    plain = {"steps": [{"name": "asr", "image": "asr:1"}]}
    sim = Sim(make_run(n_items=1), pipeline=plain)
    sim.step(monitors=[single("m1", "asr:1", "Failing", 3, 0)])
    sim.finish(names.prepare_job_name("run-1"), tm={"itemCount": 1})
    plan = sim.step(monitors=[single("m1", "asr:1", "Failing", 3, 0)])
    (job,) = plan.create
    assert L.ALTERNATIVE not in job["metadata"]["labels"] and E.SERVED_BY not in json.dumps(job)
    assert "alternatives" not in sim.run["status"]
    assert not [e for e in plan.events if "Alternative" in e.reason]


# -- the runner's manifest -------------------------------------------------------------------------


def test_manifest_says_which_app_served_each_step(tmp_path):
    from mmif_operator.core.itemstates import ItemPhase, ItemState
    from mmif_operator.runner import files
    from mmif_operator.runner.items import Item

    layout = RunLayout(str(tmp_path))
    item = Item(index=0, name="doc-0")
    files.atomic_write_json(
        layout.step_record(0, 0, "asr"),
        {"state": "Succeeded", "servedBy": {"name": "asr-b", "image": "asr-b:1"}, "finishedAt": "t"},
    )
    files.atomic_write_json(layout.step_record(0, 1, "ner"), {"state": "Succeeded", "finishedAt": "t"})
    entry = item_entry(layout, item, ItemState(1, ItemPhase.SUCCEEDED), ["asr", "ner"])
    assert entry["servedBy"] == [{"step": "asr", "name": "asr-b", "image": "asr-b:1"}]
    files.atomic_write_json(layout.step_record(0, 0, "asr"), {"state": "Succeeded", "finishedAt": "t"})
    assert "servedBy" not in item_entry(layout, item, ItemState(1, ItemPhase.SUCCEEDED), ["asr", "ner"])


# -- admission ---------------------------------------------------------------------------------------


def _with_alternatives(alts):
    return {"steps": [{"name": "asr", "image": "asr:1", "alternatives": alts}]}


@pytest.mark.parametrize(
    ("alts", "message"),
    [
        ([{"name": "asr", "image": "b"}], "names must be unique and differ from the step's name"),
        ([{"name": "b", "image": "b"}, {"name": "b", "image": "c"}], "names must be unique"),
        ([{"name": "B_x", "image": "b"}], "String should match pattern"),
        ([{"name": f"a{i}", "image": "b"} for i in range(6)], "at most 5 items"),
        ([{"name": "b", "image": "b", "mode": "Service"}], "mode Service needs url"),
        ([{"name": "b"}], "image is required unless url is set"),
    ],
)
def test_bad_alternatives_are_refused_with_the_field_named(alts, message):
    with pytest.raises(ValidationError, match=message) as err:
        PipelineSpec.from_obj(_with_alternatives(alts))
    assert "steps.0" in str(err.value)


def test_alternatives_in_the_crd_schema_are_bounded_and_keyed():
    from mmif_operator.core import crdgen

    schema = crdgen.structural_schema(PipelineSpec)
    step_schema = schema["properties"]["steps"]["items"]
    alts = step_schema["properties"]["alternatives"]
    assert alts["maxItems"] == 5 and alts["x-kubernetes-list-map-keys"] == ["name"]
    assert any("alternatives" in r["rule"] for r in step_schema["x-kubernetes-validations"])
    assert any("mode != 'Service'" in r["rule"] for r in alts["items"]["x-kubernetes-validations"])


def test_alternative_urls_are_checked_like_step_urls():
    spec = _with_alternatives([{"name": "b", "url": "http://app.other.svc:5000", "mode": "Service"}])
    (target,) = urls.targets("Pipeline", spec, "mine")
    assert target.field == "spec.steps[0].alternatives[0].url" and target.service == ("other", "app")


def test_pipeline_status_shows_each_alternatives_readiness():
    s = step()
    assert [alternative_status(a) for a in s.alternatives] == [
        {"name": "asr-b", "mode": "Job", "ready": True},
        {"name": "asr-c", "mode": "Service", "ready": True, "url": "http://c.ns.svc:5000"},
    ]


def test_the_monitors_index_keys_each_monitor_by_namespace():
    from mmif_operator.kinds.pipelinerun.handler import monitors_by_namespace

    got = asyncio.run(
        monitors_by_namespace(
            name="m",
            namespace="ns",
            spec={"target": {"app": {"image": "asr:1"}}},
            status={
                "health": "Degraded",
                "activities": [{"step": "app", "app": "asr:1", "tests": 3, "passed": 2}],
            },
        )
    )
    assert got == {"ns": A.MonitorView("m", "asr:1", "Degraded", (("asr:1", 3, 2),))}


def test_a_job_serving_an_alternative_gets_its_startup_bound():
    from mmif_operator.core import podstart
    from mmif_operator.core.observed import JobKind, ObservedJob
    from tests.unit import typed as T

    pipeline = {
        "steps": [
            {
                "name": "asr",
                "image": "asr:1",
                "startupTimeoutSeconds": 600,
                "alternatives": [{"name": "b", "image": "b:1", "startupTimeoutSeconds": 60}],
            }
        ]
    }
    bounds = podstart.run_bounds(T.runspec(make_run()["spec"]), T.pipe(pipeline))
    own = ObservedJob("j0", JobKind.STEP, item=0, step=0, alternative="asr")
    alt = ObservedJob("j1", JobKind.STEP, item=1, step=0, alternative="b")
    assert (bounds.of(own), bounds.of(alt), bounds.smallest) == (600, 60, 60)
