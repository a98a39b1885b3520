"""Nothing waits for ever: a pending run's bounded wait for its Pipeline, volume and the Pipeline's
readiness (kinds/pipelinerun/planning.py), and the pure decision on pods that cannot start
(core/podstart.py), with the planner recording such a failure like any failed Job."""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from mmif_operator.core import podstart as P
from mmif_operator.core import runner_input
from mmif_operator.core.observed import JobKind, JobState, ObservedJob
from mmif_operator.core.runtime.podstart import PodStartWatch
from mmif_operator.kinds.pipeline.app import App
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun import planning as R
from tests.unit import typed as T
from tests.unit.test_runner_step import VIDEO, Run

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
PIPELINE = {
    "steps": [
        {"name": "asr", "image": "asr:1", "startupTimeoutSeconds": 20},
        {"name": "ner", "image": "ner:1"},
    ]
}


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_run(n=2, **spec):
    base = {
        "pipelineRef": {"name": "pipe"},
        "workspace": {"claimName": "media"},
        "items": [
            {"name": f"doc-{i}", "documents": [{"location": f"v{i}.mp4", "mimeType": "video/mp4"}]}
            for i in range(n)
        ],
        "parallelism": 2,
        "startTimeoutSeconds": 60,
    }
    base.update(spec)
    return {
        "metadata": {
            "name": "run-1",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "creationTimestamp": ts(T0),
        },
        "spec": base,
        "status": {},
    }


def pipeline_obj(ready="True", reason="NoServiceSteps", message="", generation=1, observed=1):
    cond = {
        "type": "Ready",
        "status": ready,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(T0),
        "observedGeneration": observed,
    }
    return {
        "metadata": {"name": "pipe", "generation": generation},
        "spec": PIPELINE,
        "status": {"observedGeneration": observed, "conditions": [cond]},
    }


def cond(run):
    (c,) = [c for c in run["status"]["conditions"] if c["type"] == "Succeeded"]
    return c


def plan(run, now, pipeline_spec=PIPELINE, **kw):
    p = T.plan_run(copy.deepcopy(run), pipeline_spec, kw.pop("observed", []), now, operator_image="img", **kw)
    run["status"].update(copy.deepcopy(p.status_patch))
    return p


def prepared(run, count, **kw):
    """Plan the run to its start and then past its prepare Job (`count` items); that plan."""
    plan(run, T0, pipeline=pipeline_obj())
    prepare = ObservedJob.from_job(J.prepare_job(T.ctx(run), T.runspec(run["spec"]), "img"))
    return plan(
        run,
        T0,
        observed=[dataclasses.replace(prepare, state=JobState.SUCCEEDED)],
        termination_messages={prepare.name: {"itemCount": count}},
        **kw,
    )


# --- a pending run waits for a bounded time, then fails with the reason it waited for -----------


@pytest.mark.parametrize(
    ("args", "reason", "what"),
    [
        ({"pipeline_spec": None}, "PipelineNotFound", "Pipeline 'pipe' not found in namespace 'ns'"),
        (
            {"workspace_found": False, "pipeline": pipeline_obj()},
            "WorkspaceNotFound",
            "PersistentVolumeClaim 'media' not found in namespace 'ns'",
        ),
        (
            {"pipeline": pipeline_obj("False", "ImagePullFailed", "step asr: ErrImagePull: not found")},
            "PipelineNotReady",
            "Pipeline 'pipe' is not Ready: ImagePullFailed: step asr: ErrImagePull: not found",
        ),
    ],
)
def test_a_pending_run_says_what_it_waits_for_and_until_when_then_fails_with_it(args, reason, what):
    run = make_run()
    p = plan(run, T0 + timedelta(seconds=5), **args)
    c = cond(run)
    assert (p.phase, c["status"], c["reason"]) == ("Pending", "Unknown", reason)
    assert c["message"] == (
        f"{what}; waiting until 2025-01-01T12:01:00Z (spec.startTimeoutSeconds 60 s), then the run fails"
    )
    assert [e.reason for e in p.events] == [reason]
    assert p.requeue_after == 30.0  # looked at again, at the latest at the deadline
    p = plan(run, T0 + timedelta(seconds=45), **args)
    assert p.events == [] and p.requeue_after == 15.0  # no second Event; back right at the deadline
    p = plan(run, T0 + timedelta(seconds=60), **args)
    c = cond(run)
    assert (p.phase, c["status"], c["reason"]) == ("Failed", "False", reason)
    assert c["message"] == f"{what}, for 60 s (spec.startTimeoutSeconds): the run gave up"
    assert run["status"]["completionTime"] == "2025-01-01T12:01:00Z"  # `kubectl wait` on it returns
    assert [(e.type, e.reason) for e in p.events] == [("Warning", reason)]
    assert p.create == [] and not run["status"].get("pipelineSpec")


def test_the_start_deadline_counts_from_the_runs_creation_and_defaults_to_the_models():
    run = make_run()
    del run["spec"]["startTimeoutSeconds"]  # created before the field: the model's 900 s
    p = plan(run, T0 + timedelta(seconds=899), pipeline_spec=None)
    assert p.phase == "Pending" and "until 2025-01-01T12:15:00Z" in cond(run)["message"]
    assert plan(run, T0 + timedelta(seconds=900), pipeline_spec=None).phase == "Failed"


def test_a_run_waits_for_its_pipeline_to_be_ready_for_its_current_generation_then_starts():
    run = make_run()
    p = plan(run, T0, pipeline=pipeline_obj(generation=2, observed=1))
    assert p.phase == "Pending" and cond(run)["reason"] == "PipelineNotReady"
    assert "describes generation 1, not 2" in cond(run)["message"] and p.create == []
    fresh = pipeline_obj(generation=2, observed=2)
    fresh["status"]["conditions"] = []
    assert plan(run, T0, pipeline=fresh).phase == "Pending"  # not looked at yet
    p = plan(run, T0 + timedelta(seconds=3), pipeline=pipeline_obj(generation=2, observed=2))
    assert p.phase == "Running" and [j["metadata"]["name"] for j in p.create] == ["run-1-prepare"]
    assert [t["to"] for t in run["status"]["history"]] == ["Pending", "Running"]


def test_invalid_spec_fails_at_once_even_when_the_pipeline_is_not_ready():
    run = make_run(params={"nope": {"a": "b"}})
    p = plan(run, T0, pipeline=pipeline_obj("False", "AppNotAvailable"))
    assert p.phase == "Failed" and cond(run)["reason"] == "InvalidSpec"


def test_pipeline_not_ready_reads_the_ready_condition():
    assert R.pipeline_not_ready(None) is None
    assert R.pipeline_not_ready(pipeline_obj()) is None
    assert R.pipeline_not_ready(pipeline_obj("False", "CrashLoop", "step a: CrashLoopBackOff")) == (
        "CrashLoop",
        "step a: CrashLoopBackOff",
    )
    assert R.pipeline_not_ready({"metadata": {}, "status": {}})[0] == "Pending"


# --- pods that cannot start -----------------------------------------------------------------------


def job(name="run-1-00000-0", kind=JobKind.STEP, item=0, step=0, created=T0, pods=1, **kw):
    return ObservedJob(
        name=name,
        kind=kind,
        item=item,
        step=step,
        run="run-1",
        namespace="ns",
        owner_uid="uid-1",
        created=ts(created),
        pods=pods,
        **kw,
    )


def pod(
    job_name="run-1-00000-0",
    suffix="abcde",
    created=T0,
    init=None,
    main=None,
    scheduled=None,
    phase="Pending",
):
    status = {"phase": phase, "conditions": []}
    if scheduled is not None:
        status["conditions"].append(
            {"type": "PodScheduled", "status": scheduled[0], "reason": scheduled[1], "message": scheduled[2]}
        )
    if init is not None:
        status["initContainerStatuses"] = [{"name": "app", "image": "mmif.local/nope:dev", "state": init}]
    if main is not None:
        status["containerStatuses"] = [{"name": "runner", "image": "mmif-operator:dev", "state": main}]
    return {
        "metadata": {
            "name": f"{job_name}-{suffix}",
            "creationTimestamp": ts(created),
            "labels": {"batch.kubernetes.io/job-name": job_name},
        },
        "status": status,
    }


def waiting(reason, message=""):
    return {"waiting": {"reason": reason, "message": message}}


def bound(seconds):
    return lambda _job: seconds


def test_an_image_name_that_can_never_work_fails_at_once():
    p = pod(
        init=waiting("InvalidImageName", 'couldn\'t parse image name "BAD:::"'),
        main=waiting("PodInitializing"),
    )
    check = P.check_pod_starts([job()], [p], bound(900), T0 + timedelta(seconds=2))
    (f,) = check.failures
    assert (f.job, f.reason) == ("run-1-00000-0", "ImagePullFailed")
    assert f.message == (
        "pod run-1-00000-0-abcde: container app (image 'mmif.local/nope:dev'): "
        'InvalidImageName: couldn\'t parse image name "BAD:::"'
    )


def test_an_image_that_cannot_be_pulled_fails_once_past_the_bound_with_the_kubelets_message():
    p = pod(init=waiting("ImagePullBackOff", 'Back-off pulling image "mmif.local/nope:dev"'))
    early = P.check_pod_starts([job()], [p], bound(20), T0 + timedelta(seconds=12))
    assert early.failures == [] and early.next_check == 8.0  # looked at again when it is due
    late = P.check_pod_starts([job()], [p], bound(20), T0 + timedelta(seconds=20))
    (f,) = late.failures
    assert f.reason == "ImagePullFailed" and "not started within 20 s" in f.message
    assert 'Back-off pulling image "mmif.local/nope:dev"' in f.message


def test_an_unschedulable_pod_fails_with_the_schedulers_message():
    msg = '0/1 nodes are available: persistentvolumeclaim "media" is being deleted.'
    p = pod(scheduled=("False", "Unschedulable", msg))
    (f,) = P.check_pod_starts([job()], [p], bound(10), T0 + timedelta(seconds=11)).failures
    assert f.reason == "Unschedulable"
    assert f.message == f"pod run-1-00000-0-abcde not scheduled within 10 s: {msg}"


CPU = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


def test_a_pod_waiting_for_room_behind_its_running_siblings_is_queued_not_failed():
    """Parallelism above what the node holds: the pod waits its turn while a sibling runs, and
    fails by its bound only once none of the owner's pods runs (no capacity comes back)."""
    late = T0 + timedelta(seconds=901)
    queued = pod("run-1-00005-0", scheduled=("False", "Unschedulable", CPU))
    sibling = job("run-1-00001-0", item=1, pods=1)  # its pod runs: not in the Pending list
    check = P.check_pod_starts([sibling, job("run-1-00005-0", item=5)], [queued], bound(900), late)
    assert check.failures == [] and check.queued == ["run-1-00005-0"]
    done = job("run-1-00001-0", item=1, pods=1, state=JobState.SUCCEEDED)
    (f,) = P.check_pod_starts([done, job("run-1-00005-0", item=5)], [queued], bound(900), late).failures
    assert (f.job, f.reason) == ("run-1-00005-0", "Unschedulable") and CPU in f.message


def test_a_sibling_creating_its_containers_holds_room_so_the_pod_is_still_queued():
    """CI's 1,000-item run: on a busy 2-core node a short runner pod spends most of its life
    scheduled but Pending (ContainerCreating), so at a look often none of the run's pods is
    Running. Those scheduled pods free room when they end: the starved pod waits its turn."""
    late = T0 + timedelta(seconds=901)
    starved = pod("run-1-00005-0", scheduled=("False", "Unschedulable", CPU))
    creating = pod("run-1-00001-0", scheduled=("True", "", ""), main=waiting("ContainerCreating"))
    jobs = [job("run-1-00001-0", item=1), job("run-1-00005-0", item=5)]
    check = P.check_pod_starts(jobs, [creating, starved], bound(900), late)
    assert check.failures == [] and check.queued == ["run-1-00005-0"]
    # A sibling that is itself waiting for room frees none: the bound applies.
    also_starved = pod("run-1-00001-0", scheduled=("False", "Unschedulable", CPU))
    failures = P.check_pod_starts(jobs, [also_starved, starved], bound(900), late).failures
    assert sorted(f.job for f in failures) == ["run-1-00001-0", "run-1-00005-0"]
    assert {f.reason for f in failures} == {"Unschedulable"}


def test_a_pod_waiting_for_room_a_minute_is_named_so_its_run_holds_new_items():
    """CI's 1,000-item run, again: the scheduler tries a new pod before one it turned down, so a
    run that kept starting items starved its oldest pods until their bound failed them. The look
    names every pod that has waited for room a minute or more, before or past its bound, so that
    the run holds its new items meanwhile; a pod failing now is not among them, and a pod
    waiting a few seconds (the churn of a full node) is not either, but is looked at again when
    it would be."""
    young = pod(
        "run-1-00007-0", scheduled=("False", "Unschedulable", CPU), created=T0 + timedelta(seconds=840)
    )
    fresh = pod(
        "run-1-00008-0", scheduled=("False", "Unschedulable", CPU), created=T0 + timedelta(seconds=861)
    )
    old = pod("run-1-00005-0", scheduled=("False", "Unschedulable", CPU))
    elsewhere = pod(
        "run-1-00006-0",
        scheduled=(
            "False",
            "Unschedulable",
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity.",
        ),
    )
    sibling = job("run-1-00001-0", item=1, pods=1)
    jobs = [sibling, *(job(f"run-1-0000{i}-0", item=i) for i in (5, 6, 7))]
    late = T0 + timedelta(seconds=901)
    check = P.check_pod_starts(jobs, [young, old, elsewhere], bound(900), late)
    assert sorted(check.waiting_for_room) == ["run-1-00005-0", "run-1-00007-0"]
    assert [f.job for f in check.failures] == ["run-1-00006-0"]  # a selector no node matches
    assert check.next_check <= P.ROOM_CHECK_SECONDS
    soon = P.check_pod_starts([sibling, job("run-1-00008-0", item=8)], [fresh], bound(900), late)
    assert soon.waiting_for_room == [] and soon.next_check == pytest.approx(20.0)  # 40 s old
    # No sibling holds room any more: the old pod fails by its bound, and is no longer waiting.
    alone = P.check_pod_starts([jobs[1], jobs[3]], [young, old], bound(900), late)
    assert [f.job for f in alone.failures] == ["run-1-00005-0"]
    assert alone.waiting_for_room == ["run-1-00007-0"]
    assert P.check_pod_starts(jobs, [], bound(900), late).waiting_for_room == []


def test_only_a_lack_of_room_waits_behind_siblings():
    def waits(message):
        return P.waits_for_capacity(pod(scheduled=("False", "Unschedulable", message)))

    assert waits(CPU)
    assert waits("0/3 nodes are available: 1 Insufficient memory, 2 Too many pods.")
    assert not waits(
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
    )
    assert not waits('0/1 nodes are available: persistentvolumeclaim "media" is being deleted.')
    assert not waits("0/1 nodes are available: 1 node(s) had untolerated taint {a: b}.")
    assert not P.waits_for_capacity(pod(scheduled=("False", "SchedulingGated", "Insufficient cpu")))
    assert not P.waits_for_capacity(pod())


def test_a_subpath_the_kubelet_refuses_is_a_mount_failure():
    p = pod(
        main=waiting(
            "CreateContainerConfigError",
            'failed to prepare subPath for volumeMount "workspace" of container "runner"',
        )
    )
    (f,) = P.check_pod_starts(
        [job(kind=JobKind.ANALYZE, step=None)], [p], bound(10), T0 + timedelta(seconds=10)
    ).failures
    assert f.reason == "MountFailed" and "failed to prepare subPath" in f.message


def test_a_pod_stuck_creating_its_containers_is_explained_by_its_events():
    p = pod(main=waiting("ContainerCreating"), scheduled=("True", "", ""))
    first = P.check_pod_starts([job()], [p], bound(10), T0 + timedelta(seconds=30))
    assert first.failures == [] and first.want_events == [("Pod", "run-1-00000-0-abcde")]
    events = {
        "run-1-00000-0-abcde": [
            {"type": "Normal", "reason": "Scheduled", "message": "assigned", "lastTimestamp": ts(T0)},
            {
                "type": "Warning",
                "reason": "FailedMount",
                "message": 'MountVolume.SetUp failed for volume "x"',
                "lastTimestamp": ts(T0 + timedelta(seconds=5)),
            },
        ]
    }
    (f,) = P.check_pod_starts([job()], [p], bound(10), T0 + timedelta(seconds=30), events=events).failures
    assert f.reason == "MountFailed" and 'FailedMount: MountVolume.SetUp failed for volume "x"' in f.message
    slow = {
        "run-1-00000-0-abcde": [
            {"type": "Normal", "reason": "Pulling", "message": 'Pulling image "big"', "lastTimestamp": ts(T0)}
        ]
    }
    (f,) = P.check_pod_starts([job()], [p], bound(10), T0 + timedelta(seconds=30), events=slow).failures
    assert f.reason == "PodStartTimeout" and 'last event Pulling: Pulling image "big"' in f.message


def test_a_job_that_can_make_no_pod_fails_with_the_job_controllers_message():
    refused = (
        'pods "run-1-00000-0-x" is forbidden: violates PodSecurity "restricted:latest": '
        'runAsNonRoot != true (container "app" must set securityContext.runAsNonRoot=true)'
    )
    j = job(pods=0)
    assert P.check_pod_starts([j], [], bound(10), T0 + timedelta(seconds=4)).next_check == 6.0
    first = P.check_pod_starts([j], [], bound(10), T0 + timedelta(seconds=10))
    assert first.failures == [] and first.want_events == [("Job", j.name)]
    events = {
        j.name: [{"type": "Warning", "reason": "FailedCreate", "message": f"Error creating: {refused}"}]
    }
    (f,) = P.check_pod_starts([j], [], bound(10), T0 + timedelta(seconds=10), events=events).failures
    assert f.reason == "PodCreateFailed"
    assert f.message == f"Job {j.name} made no pod within 10 s: Error creating: {refused}"


def test_running_and_finished_jobs_and_young_pods_are_left_alone():
    running = job("run-1-00001-0", item=1, pods=1)  # its pod runs: not in the Pending list
    done = job("run-1-00002-0", item=2, pods=0, state=JobState.SUCCEEDED)
    young = pod("run-1-00003-0", init=waiting("ErrImagePull"), created=T0 + timedelta(seconds=50))
    check = P.check_pod_starts(
        [running, done, job("run-1-00003-0", item=3)],
        [young],
        bound(60),
        T0 + timedelta(seconds=55),
        min_bound=60,
    )
    assert check.failures == [] and check.want_events == [] and check.next_check == 30.0
    assert P.check_pod_starts([], [], bound(5), T0, min_bound=5).next_check == 5.0  # short bounds: soon
    assert P.check_pod_starts([], [], bound(5), T0, min_bound=0.1).next_check == 1.0


def test_the_bounds_come_from_the_steps_and_the_run():
    run = make_run(startTimeoutSeconds=45)
    run["status"]["pipelineSpec"] = PIPELINE
    b = P.run_bounds(T.runspec(run["spec"]), T.pipe(PIPELINE))
    assert b.of(job(step=0)) == 20 and b.of(job(step=1)) == 900  # the model's default
    assert b.of(job(name="run-1-prepare", kind=JobKind.PREPARE, item=None, step=None)) == 45
    assert b.smallest == 20
    a = P.analysis_bounds(App.from_obj({"image": "x", "startupTimeoutSeconds": 7}))
    assert (a.of(job()), a.smallest) == (7, 7)


# --- the planner records a start failure like any failed Job; the other items go on ---------------


def test_a_start_failure_fails_its_item_with_the_reason_and_the_run_goes_on():
    run = make_run(n=2)
    prepared(run, 2)
    p = plan(run, T0, observed=[])
    jobs = [ObservedJob.from_job(b) for b in p.create]
    assert sorted(j.item for j in jobs) == [0, 1]
    stuck = next(j for j in jobs if j.item == 0)
    failure = P.StartFailure(stuck.name, "ImagePullFailed", "pod x not started within 20 s: ErrImagePull")
    observed = P.apply_start_failures(jobs, {stuck.name: failure})
    p = plan(run, T0 + timedelta(seconds=21), observed=observed)
    (f,) = run["status"]["failures"]
    assert (f["index"], f["step"], f["reason"], f["message"]) == (
        0,
        "asr",
        "ImagePullFailed",
        failure.message,
    )
    assert stuck.name in p.delete and p.phase == "Running"
    assert run["status"]["itemsFailed"] == 1 and run["status"]["steps"][0]["running"] == 1  # item 1 goes on
    assert any(e.reason == "StepFailed" and "ImagePullFailed" in e.message for e in p.events)


def test_a_run_holding_its_starts_keeps_its_items_in_flight_going_and_says_why():
    """While a pod of the run waits for room, no pending item starts (its Job would only queue
    beside, and be tried before, the pods already waiting); the items in flight go on to their
    next step, and the run's condition says why the rest wait."""
    run = make_run(n=4, parallelism=4)
    p = prepared(run, 4, hold_starts=True)
    assert p.create == [] and run["status"]["steps"][0]["running"] == 0
    assert "4 wait until the pods waiting for room on the nodes are placed" in cond(run)["message"]
    p = plan(run, T0, observed=[])
    jobs = [ObservedJob.from_job(b) for b in p.create]
    assert sorted(j.item for j in jobs) == [0, 1, 2, 3]
    # Item 0 finishes its first step while the others' pods wait: its second step still starts.
    first = next(j for j in jobs if j.item == 0)
    observed = [dataclasses.replace(first, state=JobState.SUCCEEDED), *(j for j in jobs if j.item != 0)]
    p = plan(run, T0 + timedelta(seconds=5), observed=observed, hold_starts=True)
    assert [(ObservedJob.from_job(b).item, ObservedJob.from_job(b).step) for b in p.create] == [(0, 1)]


# --- the watch beside the loop ---------------------------------------------------------------------


class Cluster:
    def __init__(self, pods, events):
        self.pods, self.events, self.calls = pods, events, []

    async def list(self, kind, namespace, labels=None, *, fields=None):
        self.calls.append((kind, fields))
        if kind == "Pod":
            assert labels == {"mmif.dev/run": "run-1"} and fields == "status.phase=Pending"
            return self.pods
        name = dict(kv.split("=") for kv in fields.split(","))["involvedObject.name"]
        return self.events.get(name, [])


def test_the_watch_reads_events_only_for_what_it_cannot_explain_and_wakes_the_loop_once():
    stuck = job("run-1-00000-0", pods=0)
    pulling = job("run-1-00001-0", item=1)
    pods = [
        pod("run-1-00001-0", init=waiting("ErrImagePull", "not found"), created=T0 + timedelta(seconds=8))
    ]
    cluster = Cluster(
        pods, {stuck.name: [{"type": "Warning", "reason": "FailedCreate", "message": "forbidden"}]}
    )
    woken, posted = [], []
    watch = PodStartWatch(
        "ns",
        {"mmif.dev/run": "run-1"},
        {"metadata": {"name": "run-1"}},
        wake=lambda: woken.append(1),
        post_event=lambda *a: posted.append(a[1:]),
    )
    bounds = P.Bounds(lambda _j: 10, 10)
    new = asyncio.run(watch.look(cluster, [stuck, pulling], bounds, now=T0 + timedelta(seconds=12)))
    assert [(f.job, f.reason) for f in new] == [(stuck.name, "PodCreateFailed")]
    assert cluster.calls == [
        ("Pod", "status.phase=Pending"),
        ("Event", f"involvedObject.kind=Job,involvedObject.name={stuck.name}"),
    ]
    assert woken == [1] and 0 < watch.seconds_left() <= 6.0  # the pulling pod is due at T0+18 s
    assert [p[:2] for p in posted] == [("Warning", "StepPodWaiting")]  # a heads-up for the pulling pod
    again = asyncio.run(watch.look(cluster, [stuck, pulling], bounds, now=T0 + timedelta(seconds=13)))
    assert again == [] and woken == [1] and len(posted) == 1
    watch.prune([pulling])  # recorded and deleted: forgotten
    assert stuck.name not in watch.failures


def test_the_watch_wakes_the_loop_when_a_pod_starts_and_stops_waiting_for_room():
    waiting_pod = pod("run-1-00001-0", scheduled=("False", "Unschedulable", CPU))
    cluster = Cluster([waiting_pod], {})
    woken = []
    watch = PodStartWatch(
        "ns",
        {"mmif.dev/run": "run-1"},
        {"metadata": {"name": "run-1"}},
        wake=lambda: woken.append(1),
        post_event=lambda *a: None,
    )
    jobs = [job("run-1-00000-0", pods=1), job("run-1-00001-0", item=1)]
    bounds = P.Bounds(lambda _j: 900, 900)
    asyncio.run(watch.look(cluster, jobs, bounds, now=T0 + timedelta(seconds=3)))
    assert watch.waiting_for_room == 0 and woken == []  # the churn of a full node
    asyncio.run(watch.look(cluster, jobs, bounds, now=T0 + timedelta(seconds=61)))
    assert watch.waiting_for_room == 1 and woken == [1] and watch.seconds_left() <= P.ROOM_CHECK_SECONDS
    asyncio.run(watch.look(cluster, jobs, bounds, now=T0 + timedelta(seconds=66)))
    assert woken == [1]  # still waiting: nothing new to plan
    cluster.pods = []  # placed
    asyncio.run(watch.look(cluster, jobs, bounds, now=T0 + timedelta(seconds=71)))
    assert watch.waiting_for_room == 0 and woken == [1, 1]


# --- the manifest says why, also when no pod could ----------------------------------------------


def test_failures_no_pod_wrote_are_kept_compactly_for_the_manifest_and_runner_failures_are_not():
    from mmif_operator.core import failurereasons as FR

    run = make_run(n=3)
    prepared(run, 3)
    jobs = {j.item: j for j in map(ObservedJob.from_job, plan(run, T0).create)}
    assert sorted(jobs) == [0, 1]  # parallelism 2
    start = {jobs[0].name: P.StartFailure(jobs[0].name, "ImagePullFailed", "pod a: ErrImagePull: nope")}
    failed_by_runner = dataclasses.replace(jobs[1], state=JobState.FAILED, reason="PodFailurePolicy")
    p = plan(
        run,
        T0,
        observed=[*P.apply_start_failures([jobs[0]], start), failed_by_runner],
        termination_messages={jobs[1].name: {"reason": "AppError", "message": "boom"}},
    )
    st = run["status"]
    assert st["failureReasons"] == [
        {"step": "asr", "reason": "ImagePullFailed", "message": "pod a: ErrImagePull: nope"}
    ]
    assert FR.decode(st["itemFailureReasons"], 3) == [1, 0, 0]  # item 1's runner wrote its own record
    # The same step and reason again: one entry, the first message.
    third = next(j for j in map(ObservedJob.from_job, p.create) if j.item == 2)
    plan(
        run,
        T0,
        observed=P.apply_start_failures(
            [third], {third.name: P.StartFailure(third.name, "ImagePullFailed", "pod c: ErrImagePull: nope")}
        ),
    )
    assert len(st["failureReasons"]) == 1 and FR.decode(st["itemFailureReasons"], 3) == [1, 0, 1]
    p = plan(run, T0)
    (states_map,) = p.create_config_maps  # what the manifest Job reads, beside the states
    blob = base64.b64decode(states_map["binaryData"][runner_input.STATES_KEY])
    payload = json.loads(zlib.decompress(blob))
    assert [e and e["reason"] for e in FR.lookup(payload["failureReasons"], 3)] == [
        "ImagePullFailed",
        None,
        "ImagePullFailed",
    ]


def test_the_manifest_gives_an_item_that_never_started_its_reason(tmp_path, monkeypatch, apps):
    from mmif_operator.core import failurereasons as FR
    from mmif_operator.core.itemstates import ItemPhase, ItemState

    run = Run(tmp_path, monkeypatch, ["asr", "ner"], [VIDEO, VIDEO])
    assert run.step(0, 0, apps["textgen"][0])[0] == 0  # item 0 passes asr; ner never starts
    reasons, codes = [], [0, 0]
    FR.record(reasons, codes, 0, "ner", "PodCreateFailed", "Job made no pod within 10 s: forbidden")
    FR.record(reasons, codes, 1, "asr", "ImagePullFailed", "pod b: ErrImagePull")
    value = FR.payload({"failureReasons": reasons, "itemFailureReasons": FR.encode(codes)})
    doc = run.manifest([ItemState(1, ItemPhase.FAILED), ItemState(0, ItemPhase.FAILED)], failureReasons=value)
    first, second = doc["items"]
    assert (first["failedStep"], first["reason"], first["message"]) == (
        "ner",
        "PodCreateFailed",
        "Job made no pod within 10 s: forbidden",
    )
    assert first["output"].endswith("00-asr.mmif")  # what it got to is still there
    assert (second["failedStep"], second["reason"]) == ("asr", "ImagePullFailed")


def test_the_watch_looks_once_the_index_shows_the_jobs_just_created_and_not_while_a_look_runs():
    async def scenario():
        cluster = Cluster([], {})
        watch = PodStartWatch(
            "ns", {"mmif.dev/run": "run-1"}, {"metadata": {"name": "run-1"}}, wake=lambda: None
        )
        bounds = P.Bounds(lambda _j: 5, 5)
        watch.maybe_look(cluster, [], bounds)  # created, not in the index yet: a second later
        assert watch.task is None and 0.5 < watch.seconds_left() <= 1.0
        watch.next_at = 0.0
        watch.maybe_look(cluster, [job(pods=1)], bounds)
        first = watch.task
        watch.maybe_look(cluster, [job(pods=1)], bounds)  # one look at a time
        assert watch.task is first
        await first
        assert cluster.calls == [("Pod", "status.phase=Pending")] and watch.seconds_left() <= 5.0

    asyncio.run(scenario())


def test_a_job_between_two_pods_is_not_taken_for_one_that_cannot_make_any():
    # Its pod was evicted (a disruption the podFailurePolicy ignores) and is being replaced: no
    # pod right now, but the Job made pods and nothing refused one since.
    j = job(pods=0)
    events = {
        j.name: [
            {"type": "Warning", "reason": "FailedCreate", "message": "quota", "lastTimestamp": ts(T0)},
            {
                "type": "Normal",
                "reason": "SuccessfulCreate",
                "message": "Created pod: x",
                "lastTimestamp": ts(T0 + timedelta(minutes=5)),
            },
        ]
    }
    check = P.check_pod_starts([j], [], bound(10), T0 + timedelta(minutes=30), events=events)
    assert check.failures == [] and check.next_check == 10.0
    # A pod finishing is counted while the Job controller moves it to succeeded/failed.
    moving = ObservedJob.from_job(
        {
            "metadata": {
                "name": "run-1-00000-0",
                "labels": {
                    "app.kubernetes.io/component": "step",
                    "mmif.dev/item-index": "0",
                    "mmif.dev/step-index": "0",
                },
            },
            "status": {"active": 0, "uncountedTerminatedPods": {"failed": ["uid-a"]}},
        }
    )
    assert moving.pods == 1


def test_a_container_between_two_create_attempts_is_explained_by_the_kubelets_last_warning():
    p = pod(init={"running": {}}, main=waiting("PodInitializing"), scheduled=("True", "", ""))
    events = {
        "run-1-00000-0-abcde": [
            {
                "type": "Warning",
                "reason": "Failed",
                "lastTimestamp": ts(T0 + timedelta(seconds=3)),
                "message": 'Error: failed to create subPath directory for volumeMount "workspace" of container "runner"',
            }
        ]
    }
    (f,) = P.check_pod_starts([job()], [p], bound(8), T0 + timedelta(seconds=9), events=events).failures
    assert f.reason == "MountFailed" and "subPath" in f.message and "not started within 8 s" in f.message
