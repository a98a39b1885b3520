"""kinds/pipelinerun/pools.py: a warm Job-mode step's app runs once per run, in a pool the run
owns; its item pods call the pool and share pods as Service-mode steps do."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun import pools
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec
from mmif_operator.kinds.pipelinerun.shared_pods import pod_spans
from mmif_operator.runner import env as E
from tests.unit.test_reconcile_run import Sim, make_run


def warm(name, **fields):
    return {"name": name, "image": f"{name}:1", "warm": True, **fields}


def spec(*steps):
    return PipelineSpec.model_validate({"steps": list(steps), "workspace": {"claimName": "media"}})


def _ctx():
    run = make_run(n_items=1)
    return J.RunContext.from_run(run["metadata"], PipelineRunSpec.model_validate(run["spec"]))


def _objects(step_fields=None):
    ctx = _ctx()
    return ctx, pools.run_pools(ctx, spec(warm("asr", replicas=2, **(step_fields or {}))))


def test_a_pool_is_a_deployment_service_and_policy_of_the_run_named_apart_from_pipeline_apps():
    ctx, (deployment, service, policy) = _objects({"resources": {"limits": {"nvidia.com/gpu": "1"}}})
    name = names.run_pool_name("run-1", "asr")
    assert name != names.app_service_name("run-1", "asr")  # a Pipeline named like the run
    assert [o["kind"] for o in (deployment, service, policy)] == list(pools.POOL_KINDS)
    for obj in (deployment, service, policy):
        assert obj["metadata"]["name"] == name and obj["metadata"]["namespace"] == ctx.namespace
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("PipelineRun", ctx.uid, True)
        assert obj["metadata"]["labels"][L.COMPONENT] == L.COMPONENT_APP_POOL
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    (app,) = pod["containers"]
    assert app["image"] == "asr:1" and app["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert app["volumeMounts"] == [{"name": "workspace", "mountPath": ctx.mount_path, "readOnly": True}]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": ctx.claim_name, "readOnly": True}
    assert pod["automountServiceAccountToken"] is False
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    # only the item pods of this run reach it
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "podSelector": {
                "matchLabels": {L.MANAGED_BY: L.MANAGER, L.COMPONENT: L.COMPONENT_STEP, L.RUN: "run-1"}
            }
        }
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5000}]


def test_pools_live_from_pending_until_the_items_are_done():
    assert [pools.lives_in(s) for s in (None, "Pending", "Preparing", "RunningItems")] == [True] * 4
    gone = (
        "WritingManifest",
        "Cancelling",
        "TimingOut",
        "AwaitingReview",
        "Publishing",
        "Succeeded",
        "Failed",
    )
    assert not any(pools.lives_in(s) for s in gone)


def test_an_item_of_a_warm_step_calls_the_runs_pool_and_waits_for_its_start_up():
    pipeline = spec(warm("asr", startupTimeoutSeconds=1200))
    job = J.step_job(_ctx(), {}, pipeline, 0, 0, "img")
    pod = job["spec"]["template"]["spec"]
    assert "initContainers" not in pod  # no app next to the item
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env[E.APP_URL] == f"http://{names.run_pool_name('run-1', 'asr')}.{_ctx().namespace}.svc:5000"
    assert env[E.APP_WAIT] == "1200"
    assert E.APP_STARTUP_TIMEOUT not in env


def test_warm_steps_share_an_items_pod_with_their_neighbours():
    steps = spec(
        warm("a"), warm("b"), {"name": "c", "image": "c:1", "mode": "Service"}, {"name": "d", "image": "d:1"}
    ).steps
    assert pod_spans(steps) == (2, 2, 2, 3)  # the plain Job-mode step keeps a pod of its own
    job = J.step_job(_ctx(), {}, spec(warm("a"), warm("b")), 0, 0, "img", last=1)
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert [c["url"] for c in json.loads(env[E.STEP_CALLS])] == [
        f"http://{names.run_pool_name('run-1', s)}.{_ctx().namespace}.svc:5000" for s in "ab"
    ]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (warm("a", mode="Service"), "warm is only meaningful with mode Job and no alternatives"),
        (
            warm("a", alternatives=[{"name": "b", "image": "b:1"}]),
            "warm is only meaningful with mode Job and no alternatives",
        ),
        ({"name": "a", "image": "a:1", "replicas": 2}, "replicas is only meaningful with mode Service"),
    ],
)
def test_warm_is_refused_where_it_means_nothing(step, message):
    with pytest.raises(ValueError, match=message):
        spec(step)


def test_a_pending_run_whose_pool_cannot_be_made_waits_on_a_condition_then_fails():
    pipeline = {"steps": [warm("a")], "workspace": {"claimName": "media"}}
    run = make_run(n_items=1, startTimeoutSeconds=60)
    run["metadata"]["creationTimestamp"] = "2025-01-01T12:00:00Z"
    sim = Sim(run, pipeline)
    problem = "the app pool of step 'a': Deployment 'x' exists and is not this operator's"
    plan = sim.step(pool_problem=problem)
    assert plan.phase == "Pending"
    cond = next(c for c in plan.status["conditions"] if c["type"] == "Succeeded")
    assert (cond["status"], cond["reason"]) == ("Unknown", "AppPoolNotMade")
    assert cond["message"].startswith(problem)
    sim.now += timedelta(minutes=2)
    plan = sim.step(pool_problem=problem)
    assert plan.phase == "Failed"
    cond = next(c for c in plan.status["conditions"] if c["type"] == "Succeeded")
    assert (cond["status"], cond["reason"]) == ("False", "AppPoolNotMade")
    assert sim.step_jobs() == []


def test_a_pending_run_whose_pool_is_made_starts():
    sim = Sim(make_run(n_items=1), {"steps": [warm("a")], "workspace": {"claimName": "media"}})
    assert sim.step(pool_problem=None).phase == "Running"


class _Kube:
    """The three calls pools.ensure and pools.remove make, over a dict of objects."""

    def __init__(self, objects=()):
        self.objects = {(o["kind"], o["metadata"]["name"]): o for o in objects}
        self.writes: list[tuple[str, str, str]] = []

    async def get(self, kind, namespace, name):
        return self.objects.get((kind, name))

    async def create(self, body):
        self.writes.append(("create", body["kind"], body["metadata"]["name"]))
        self.objects[(body["kind"], body["metadata"]["name"])] = body
        return True

    async def delete(self, kind, namespace, name, uid=None):
        self.writes.append(("delete", kind, name))
        return self.objects.pop((kind, name), None) is not None


def test_ensure_makes_only_what_is_missing_and_never_takes_a_foreign_name():
    ctx, objects = _objects()
    kube = _Kube(objects[:1])  # the Deployment is there already
    assert asyncio.run(pools.ensure(kube, objects, ctx.uid)) is None
    assert [w[:2] for w in kube.writes] == [("create", "Service"), ("create", "NetworkPolicy")]
    kube.writes.clear()
    assert asyncio.run(pools.ensure(kube, objects, ctx.uid)) is None and kube.writes == []  # reads only

    foreign = {**objects[1], "metadata": {**objects[1]["metadata"], "ownerReferences": []}}
    kube = _Kube([objects[0], foreign])
    problem = asyncio.run(pools.ensure(kube, objects, ctx.uid))
    assert problem is not None and "Service" in problem and "is not this run's" in problem
    assert kube.writes == []
    asyncio.run(pools.remove(kube, objects, ctx.uid))
    assert kube.writes == [("delete", "Deployment", objects[0]["metadata"]["name"])]  # not the foreign one
