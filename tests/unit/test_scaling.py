"""Autoscaled Service-mode steps (kinds/pipeline/scaling.py, core/runtime/backlog.py, the
Pipeline handler's use of them, the runner's wait for an app that may start from zero)."""

from __future__ import annotations

import asyncio

import pytest

from mmif_operator.core.runtime.backlog import Backlogs
from mmif_operator.kinds.pipeline import handler as H
from mmif_operator.kinds.pipeline import scaling as S
from mmif_operator.kinds.pipeline.model import PipelineSpec, Step
from mmif_operator.kinds.pipelinerun import handler as RH
from mmif_operator.runner import env as E
from tests.unit.test_handlers_pipelines import NAME, T0, FakeKube, make_pipeline


def step(**kw) -> Step:
    return Step.model_validate({"name": "ner", "image": "ner:1", "mode": "Service", **kw})


AUTO = {"replicas": 4, "autoscaling": {"minReplicas": 0, "scaleDownDelaySeconds": 60}}


# -- what the runs need -----------------------------------------------------------------------


def test_a_run_needs_a_step_while_items_are_to_reach_it_or_at_it():
    needs = S.step_needs(
        [
            {"name": "asr", "pending": 0, "running": 3, "succeeded": 7, "failed": 0},
            {"name": "ner", "pending": 3, "running": 2, "succeeded": 5, "failed": 0},
            {"name": "old", "pending": 0, "running": 0, "succeeded": 10, "failed": 0},
        ]
    )
    assert needs == {"asr": S.Need(3, 3), "ner": S.Need(5, 2), "old": S.Need(0, 0)}


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        ([], 0),  # no run: scaled to zero
        ([S.Need(0, 0)], 0),  # a run done with the step
        ([S.Need(5, 0)], 1),  # items still to come: one replica up before they get there
        ([S.Need(5, 3)], 3),  # one replica per item at the step
        ([S.Need(5, 3), S.Need(9, 3)], 4),  # summed over the runs, at most `replicas`
    ],
)
def test_the_replicas_wanted_follow_the_runs_within_the_bounds(needs, expected):
    assert S.wanted_replicas(step(**AUTO), needs) == expected


def test_min_replicas_are_kept_and_a_step_not_autoscaled_keeps_its_replicas():
    assert S.wanted_replicas(step(replicas=3, autoscaling={"minReplicas": 2}), []) == 2
    assert S.wanted_replicas(step(replicas=3), [S.Need(9, 9)]) == 3
    assert S.bounds(step(replicas=3)) is None


def test_the_bounds_of_a_run_snapshot_are_read_with_the_stored_defaults():
    snapshot = [
        {"name": "asr", "mode": "Job", "replicas": 1},
        {"name": "ner", "mode": "Service", "replicas": 4, "autoscaling": {"minReplicas": 1}},
    ]
    assert S.snapshot_bounds(snapshot) == {"ner": (1, 4)}


# -- up at once, down after the delay ----------------------------------------------------------


def test_replicas_go_up_at_once():
    assert S.next_replicas(3, 1, 100.0, 200.0, 60) == S.Scale(3, 200.0, None)
    assert S.next_replicas(1, None, None, 200.0, 60) == S.Scale(1, 200.0, None)  # a new Deployment


def test_replicas_come_down_only_after_the_delay():
    # wanted less since t=100: kept until t=160, then down
    assert S.next_replicas(0, 2, 100.0, 130.0, 60) == S.Scale(2, 100.0, 30.0)
    assert S.next_replicas(0, 2, 100.0, 160.0, 60) == S.Scale(0, 160.0, None)
    assert S.next_replicas(0, 2, 100.0, 100.0, 0) == S.Scale(0, 100.0, None)  # no delay


def test_after_a_restart_a_scale_down_waits_the_whole_delay():
    assert S.next_replicas(0, 2, None, 500.0, 60) == S.Scale(2, 500.0, 60.0)


def test_plan_replicas_covers_the_autoscaled_steps_only_and_the_soonest_recheck():
    steps = [
        step(name="a", **AUTO),
        step(name="b", replicas=2, autoscaling={"scaleDownDelaySeconds": 10}),
        step(name="c", replicas=2),
    ]
    replicas, at, recheck = S.plan_replicas(
        steps, {"a": 3, "b": 2, "c": 2}, {"a": [S.Need(4, 4)]}, {"a": 0.0, "b": 95.0}, 100.0
    )
    assert replicas == {"a": 4, "b": 2} and at == {"a": 100.0, "b": 95.0} and recheck == 5.0


def test_with_replicas_sets_the_autoscaled_steps_and_keeps_the_spec():
    spec = PipelineSpec.model_validate(
        {
            "workspace": {"claimName": "m"},
            "steps": [
                {"name": "asr", "image": "a"},
                {"name": "ner", "image": "n", "mode": "Service", **AUTO},
            ],
        }
    )
    scaled = S.with_replicas(spec, {"ner": 0})
    assert [s.replicas for s in scaled.steps] == [1, 0]
    assert spec.steps[1].replicas == 4  # the parsed spec is not changed
    assert S.with_replicas(spec, {}) is spec


# -- the registry the runs report to ----------------------------------------------------------


def test_a_report_wakes_the_pipeline_only_when_the_wanted_replicas_change():
    b = Backlogs()
    key, bounds = ("ns", "pipe"), {"ner": (0, 2)}
    assert b.report(key, "r1", {"ner": S.Need(5, 0)}, bounds)  # 0 -> 1
    assert not b.report(key, "r1", {"ner": S.Need(4, 1)}, bounds)  # still 1
    assert b.report(key, "r2", {"ner": S.Need(3, 3)}, bounds)  # 1 -> 2
    assert not b.report(key, "r2", {"ner": S.Need(3, 3)}, bounds)
    assert b.needs(key) == {"ner": [S.Need(4, 1), S.Need(3, 3)]}
    assert not b.report(key, "r1", {}, {})  # r1 ends: r2 alone still wants 2
    assert b.report(key, "r2", {}, {})  # the last run ends: 2 -> 0, bounds from its report
    assert b.needs(key) == {}


# -- the Pipeline's loop ------------------------------------------------------------------------


def reconcile(kube, needs=None, needed_at=None, clock=lambda: 100.0):
    return asyncio.run(
        H.reconcile_pipeline(
            kube,
            "ns",
            "pipe",
            "p-uid",
            now=T0,
            post_event=lambda *a: None,
            needs=needs,
            needed_at=needed_at,
            clock=clock,
        )
    )


def ready(kube):
    return next(c for c in kube.pipeline["status"]["conditions"] if c["type"] == "Ready")


def test_a_step_no_run_needs_is_scaled_to_zero_and_ready_to_take_items():
    kube = FakeKube(make_pipeline(**AUTO))
    reconcile(kube)
    assert kube.objects[("Deployment", NAME)]["spec"]["replicas"] == 0
    assert kube.pipeline["status"]["steps"][1]["replicas"] == 0
    cond = ready(kube)
    assert cond["status"] == "True", cond
    assert "scaled to zero until a run needs them: ner" in cond["message"]


def test_the_deployment_follows_the_runs_up_at_once_and_down_after_the_delay():
    kube = FakeKube(make_pipeline(**AUTO))
    memory: dict[str, float] = {}
    reconcile(kube, needed_at=memory)
    reconcile(kube, {"ner": [S.Need(10, 3)]}, memory, clock=lambda: 110.0)
    assert kube.objects[("Deployment", NAME)]["spec"]["replicas"] == 3
    assert ready(kube)["status"] == "False"  # the app is starting: 0 of 3 available
    result = reconcile(kube, {}, memory, clock=lambda: 150.0)  # the runs ended at t=110
    assert kube.objects[("Deployment", NAME)]["spec"]["replicas"] == 3
    assert result.requeue_after is not None and result.requeue_after <= 20.0
    reconcile(kube, {}, memory, clock=lambda: 170.0)
    assert kube.objects[("Deployment", NAME)]["spec"]["replicas"] == 0


def test_replicas_scaled_up_by_hand_go_once_the_delay_is_over():
    kube = FakeKube(make_pipeline(**AUTO))
    memory: dict[str, float] = {}
    reconcile(kube, needed_at=memory)
    kube.objects[("Deployment", NAME)]["spec"]["replicas"] = 5  # kubectl scale --replicas 5
    reconcile(kube, {"ner": [S.Need(2, 2)]}, memory, clock=lambda: 120.0)
    assert kube.objects[("Deployment", NAME)]["spec"]["replicas"] == 5  # more than wanted: kept a while
    reconcile(kube, {"ner": [S.Need(2, 2)]}, memory, clock=lambda: 181.0)
    assert kube.objects[("Deployment", NAME)]["spec"]["replicas"] == 2  # what the runs need


# -- what a run reports --------------------------------------------------------------------------


def run_status(phase, steps, autoscaled=True):
    ner = {"name": "ner", "mode": "Service", "replicas": 2}
    if autoscaled:
        ner["autoscaling"] = {"minReplicas": 0, "scaleDownDelaySeconds": 0}
    return {"phase": phase, "pipelineSpec": {"steps": [{"name": "asr", "replicas": 1}, ner]}, "steps": steps}


def test_a_running_run_reports_its_needs_of_autoscaled_steps_and_an_ended_one_none(monkeypatch):
    from mmif_operator.core.runtime import state

    woken = []
    monkeypatch.setattr(state, "BACKLOGS", Backlogs())
    monkeypatch.setattr(state.PIPELINE_WAKERS, "wake", lambda key, refresh=False: woken.append(key))
    steps = [{"name": "asr", "pending": 0, "running": 2}, {"name": "ner", "pending": 2, "running": 0}]
    RH.report_needs("ns", "pipe", "r1", run_status("Running", steps))
    key = state.pipeline_key("ns", "pipe")
    assert state.BACKLOGS.needs(key) == {"ner": [S.Need(2, 0)]} and woken == [key]
    RH.report_needs("ns", "pipe", "r1", run_status("Succeeded", steps))
    assert state.BACKLOGS.needs(key) == {} and woken == [key, key]
    RH.report_needs("ns", "pipe", "r2", run_status("Running", steps, autoscaled=False))
    assert state.BACKLOGS.needs(key) == {} and len(woken) == 2  # nothing autoscaled: nothing reported


# -- the runner's wait ----------------------------------------------------------------------------


def test_item_pods_wait_for_an_app_that_may_start_from_zero_within_its_startup_timeout():
    from mmif_operator.kinds.pipelinerun import children

    assert children.app_wait_env([step(**AUTO)]) == {E.APP_WAIT: 900}
    assert (
        children.app_wait_env([step(**AUTO, startupTimeoutSeconds=60)]) == {}
    )  # the default 300 s is longer
    assert children.app_wait_env([step(replicas=2, autoscaling={"minReplicas": 1})]) == {}
    assert children.app_wait_env([step()]) == {}
