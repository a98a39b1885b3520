"""kinds/pipelinerun/shared_pods.py: consecutive steps whose apps run outside the item's pod share
one pod per item; the Job builder and the run planner follow it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.core.observed import JobState, ObservedJob
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec
from mmif_operator.kinds.pipelinerun.shared_pods import failed_step, pod_spans, shares_pod, span_deadline
from mmif_operator.runner import env as E
from tests.unit.test_reconcile_run import Sim, make_run


def svc(name, **fields):
    return {"name": name, "image": f"{name}:1", "mode": "Service", **fields}


WORKSPACE = {"claimName": "media"}


def spec(*steps):
    return PipelineSpec.model_validate({"steps": list(steps), "workspace": WORKSPACE})


@pytest.mark.parametrize(
    ("steps", "spans"),
    [
        ([svc("a"), svc("b"), svc("c")], (2, 2, 2)),
        ([{"name": "a", "image": "a:1"}, svc("b"), svc("c")], (0, 2, 2)),  # Job mode: a pod of its own
        ([svc("a"), svc("b"), {"name": "c", "image": "c:1"}], (1, 1, 2)),
        ([svc("a"), svc("b", ownPod=True), svc("c")], (0, 1, 2)),
        ([svc("a"), svc("b", retries=5), svc("c", retries=5)], (0, 2, 2)),
        ([svc("a", nodeSelector={"gpu": "yes"}), svc("b")], (0, 1)),
        ([svc("a", tolerations=[{"key": "k", "operator": "Exists"}]), svc("b")], (0, 1)),
        ([svc("a", timeoutSeconds=10), svc("b", timeoutSeconds=20)], (1, 1)),
        ([svc("a", timeoutSeconds=10), svc("b")], (0, 1)),  # the pod's deadline would be undefined
        ([{"name": "a", "mode": "Service", "url": "http://x:5000"}, svc("b")], (1, 1)),  # someone's app
        (
            [svc("a"), svc("b", alternatives=[{"name": "b2", "mode": "Service", "url": "http://b2:5000"}])],
            (0, 1),
        ),
    ],
)
def test_consecutive_steps_outside_the_pod_placed_and_retried_alike_share_it(steps, spans):
    assert pod_spans(spec(*steps).steps) == spans


def test_a_step_whose_app_runs_in_the_items_pod_never_shares_it():
    job_mode, own, service = spec({"name": "a", "image": "a:1"}, svc("b", ownPod=True), svc("c")).steps
    assert (shares_pod(job_mode), shares_pod(own), shares_pod(service)) == (False, False, True)


def test_a_shared_pods_deadline_is_the_sum_of_its_steps_timeouts():
    steps = spec(svc("a", timeoutSeconds=10), svc("b", timeoutSeconds=20)).steps
    assert span_deadline(steps) == 30
    assert span_deadline(spec(svc("a"), svc("b")).steps) is None


def test_the_failed_step_is_the_one_the_runner_named_within_the_pods_steps():
    names_ = ["a", "b", "c", "d"]
    assert failed_step(1, 3, names_, {"step": "c"}) == 2
    assert failed_step(1, 3, names_, {}) == 1  # nothing ran: the pod's first step
    assert failed_step(1, 3, names_, {"step": "a"}) == 1  # not one of its steps: its first
    assert failed_step(1, 3, names_, {"step": None}) == 1


def _ctx():
    run = make_run(n_items=1)
    return J.RunContext.from_run(run["metadata"], PipelineRunSpec.model_validate(run["spec"]))


def test_the_job_of_a_shared_pod_names_each_steps_call_and_its_last_step():
    pipeline = spec(
        svc("a", timeoutSeconds=10, parameters={"x": "1"}),
        svc("b", timeoutSeconds=20),
        svc("c", timeoutSeconds=5),
    )
    job = J.step_job(_ctx(), {"b": {"y": "2"}}, pipeline, 3, 0, "img", last=2)
    assert job["metadata"]["name"] == names.step_job_name("run-1", 3, 0)
    labels = job["metadata"]["labels"]
    assert (labels[L.STEP_INDEX], labels[L.LAST_STEP_INDEX], labels[L.ITEM_INDEX]) == ("0", "2", "3")
    assert job["spec"]["template"]["metadata"]["labels"][L.LAST_STEP_INDEX] == "2"
    assert job["spec"]["activeDeadlineSeconds"] == 35
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert E.APP_URL not in env and E.HTTP_TIMEOUT not in env
    calls = json.loads(env[E.STEP_CALLS])
    assert [c["url"] for c in calls] == [
        f"http://{names.app_service_name('pipe', s)}.ns.svc:5000" for s in "abc"
    ]
    assert [c["params"] for c in calls] == [{"x": "1"}, {"y": "2"}, {}]
    assert [c["timeout"] for c in calls] == [10, 20, 5]
    assert ObservedJob.from_job(job).last_step == 2


def test_a_job_of_one_step_keeps_its_single_app_configuration():
    job = J.step_job(_ctx(), {}, spec(svc("a"), svc("b")), 0, 1, "img")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert E.STEP_CALLS not in env and env[E.APP_URL].startswith("http://")
    assert L.LAST_STEP_INDEX not in job["metadata"]["labels"]
    assert ObservedJob.from_job(job).last_step == 1


SERVICE3 = {"steps": [svc("s1"), svc("s2"), svc("s3")], "workspace": WORKSPACE}


def test_an_item_of_three_shared_steps_makes_one_job_and_succeeds_when_it_does():
    sim = Sim(make_run(n_items=3, parallelism=3), SERVICE3)
    sim.started(3)
    assert sim.step_jobs() == [(0, 0), (1, 0), (2, 0)]
    assert {j.last_step for j in sim.jobs.values()} == {2}
    made = sum(len(p.create) for p in sim.plans)
    sim.run_all()
    assert sum(len(p.create) for p in sim.plans) == made + 1  # the manifest Job, no more step Jobs
    assert sim.run["status"]["phase"] == "Succeeded"
    assert sim.states() == [ItemState(2, ItemPhase.SUCCEEDED)] * 3
    assert [s["succeeded"] for s in sim.run["status"]["steps"]] == [3, 3, 3]


def test_a_shared_pod_failing_at_its_middle_step_fails_the_item_there():
    sim = Sim(make_run(n_items=1, parallelism=1), SERVICE3)
    sim.started(1)
    name = names.step_job_name("run-1", 0, 0)
    sim.finish(name, ok=False, tm={"item": 0, "step": "s2", "reason": "AppError", "message": "boom"})
    sim.step()
    assert sim.states() == [ItemState(1, ItemPhase.FAILED)]
    (failure,) = sim.run["status"]["failures"]
    assert (failure["step"], failure["reason"], failure["message"]) == ("s2", "AppError", "boom")
    assert sim.step_jobs() == []


def test_with_on_item_failure_continue_the_item_goes_on_after_the_failed_step_in_a_new_pod():
    sim = Sim(make_run(n_items=1, parallelism=1, onItemFailure="Continue"), SERVICE3)
    sim.started(1)
    sim.finish(
        names.step_job_name("run-1", 0, 0), ok=False, tm={"item": 0, "step": "s2", "reason": "AppError"}
    )
    sim.step()
    assert sim.states() == [ItemState(2, ItemPhase.RUNNING)]
    assert sim.step_jobs() == [(0, 2)]
    assert sim.jobs[names.step_job_name("run-1", 0, 2)].last_step == 2
    sim.run_all()
    assert sim.states() == [ItemState(1, ItemPhase.FAILED)]  # failed at its first failed step
    assert [(s["name"], s["failed"], s["succeeded"]) for s in sim.run["status"]["steps"]][1] == ("s2", 1, 0)


def test_a_pod_killed_before_its_runner_named_a_step_fails_the_item_at_the_pods_first_step():
    sim = Sim(make_run(n_items=1, parallelism=1), SERVICE3)
    sim.started(1)
    sim.finish(names.step_job_name("run-1", 0, 0), ok=False, reason="DeadlineExceeded")
    sim.step()
    assert sim.states() == [ItemState(0, ItemPhase.FAILED)]
    assert sim.run["status"]["failures"][0]["step"] == "s1"


def test_a_job_made_before_its_steps_shared_a_pod_advances_the_item_by_its_own_step_only():
    """An operator upgraded mid-run finds one-step Jobs: their label, not today's spans, says what
    their pods ran."""
    sim = Sim(make_run(n_items=1, parallelism=1), SERVICE3)
    sim.started(1)
    name = names.step_job_name("run-1", 0, 0)
    sim.jobs[name] = dataclasses.replace(sim.jobs[name], last_step=0)
    sim.finish(name)
    sim.step()
    assert sim.states() == [ItemState(1, ItemPhase.RUNNING)]
    assert sim.step_jobs() == [(0, 1)]
    assert sim.jobs[names.step_job_name("run-1", 0, 1)].last_step == 2
    assert sim.jobs[names.step_job_name("run-1", 0, 1)].state is JobState.ACTIVE
