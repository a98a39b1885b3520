"""The app logs of failed item-steps: what is kept (core/applogs.py), how a run's pass keeps it
before its failed Job is deleted (core/runtime/applogs.py, kinds/pipelinerun/handler.py), and what
`kubectl mmif logs` and the console show from it (results/logs.py)."""

from __future__ import annotations

import asyncio
import copy

from mmif_operator.core import applogs, names
from mmif_operator.core.kube.ops import KubeError
from mmif_operator.core.observed import JobKind, JobState, ObservedJob
from mmif_operator.core.runtime import applogs as runtime_applogs
from mmif_operator.kinds.pipeline.model import Step
from mmif_operator.results import logs as shared
from tests.unit.test_handlers_runs import FakeKube, finish_all, make_run, reconcile

CM = "run-1-applogs-uid1"


# -- what is kept ------------------------------------------------------------------------------


def test_keys_and_the_configmap_name_are_deterministic():
    assert applogs.key(12, 1) == "00012-1.log" and applogs.parse_key("00012-1.log") == (12, 1)
    assert applogs.parse_key("123456-10.log") == (123456, 10)
    assert applogs.parse_key("notes.txt") is None and applogs.parse_key("0001-1.log") is None
    assert applogs.config_map_name("run-1", "uid-1") == CM
    assert applogs.config_map_name("run-1", "uid-2") != CM  # a new run of the same name: a new one


def test_only_new_item_steps_are_kept_the_first_to_fail_up_to_the_bound():
    assert applogs.to_keep([(3, 0), (1, 1), (1, 0)], []) == [(1, 0), (1, 1), (3, 0)]
    assert applogs.to_keep([(1, 0), (2, 0)], ["00001-0.log"]) == [(2, 0)]  # idempotent: kept once
    assert applogs.to_keep([(1, 0)], ["00001-0.log"]) == []
    assert applogs.to_keep([(i, 0) for i in range(5)], ["00009-0.log"], limit=3) == [(0, 0), (1, 0)]
    full = [applogs.key(i, 0) for i in range(applogs.MAX_KEPT)]
    assert applogs.to_keep([(10_000, 0)], full) == []  # a 10,000-item failure keeps 40, no more
    assert applogs.MAX_KEPT * applogs.TAIL_BYTES <= 1024 * 1024 * 2 // 3  # well inside a ConfigMap


def test_the_tail_keeps_the_end_at_a_line_start_and_says_it_cut():
    assert applogs.tail("short\n") == "short\n"
    text = "".join(f"line {i}\n" for i in range(10_000)) + "RuntimeError: boom\n"
    kept = applogs.tail(text, 1024)
    assert len(kept.encode()) <= 1024 and kept.endswith("RuntimeError: boom\n")
    assert kept.startswith("[... earlier lines not kept: the last 1024 bytes")
    assert kept.splitlines()[1].startswith("line ")  # a whole line after the marker
    assert len(applogs.tail("é" * 40_000).encode()) <= applogs.TAIL_BYTES  # bytes, not characters


def test_the_configmap_is_owned_by_the_run_and_labelled():
    owner = {"kind": "PipelineRun", "name": "run-1", "uid": "uid-1", "controller": True}
    body = applogs.config_map("run-1", "ns", "uid-1", owner, {"00001-0.log": "x"})
    assert body["metadata"]["name"] == CM and body["metadata"]["ownerReferences"] == [owner]
    labels = body["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "mmif-operator" and labels["mmif.dev/run"] == "run-1"
    assert labels["app.kubernetes.io/component"] == "app-logs" and body["data"] == {"00001-0.log": "x"}


# -- keeping them in a run's pass ----------------------------------------------------------------


class LogKube(FakeKube):
    """FakeKube with the step pods' app logs and ConfigMap patches."""

    def __init__(self, run, sidecar=True):
        super().__init__(run)
        self.sidecar = sidecar
        self.log_reads: list[str] = []

    async def job_pods(self, ns, name, uid=None):
        containers = [{"name": "runner"}]
        spec = {"containers": containers, "initContainers": [{"name": "app"}] if self.sidecar else []}
        return [
            {"metadata": {"name": f"{name}-old", "creationTimestamp": "2025-01-01T12:00:00Z"}, "spec": spec},
            {"metadata": {"name": f"{name}-new", "creationTimestamp": "2025-01-01T12:01:00Z"}, "spec": spec},
        ]

    async def pod_log(self, ns, pod, container, tail_lines=None):
        assert container == "app" and tail_lines == applogs.TAIL_LINES
        self.log_reads.append(pod)
        return f"app of {pod}: RuntimeError: boom\n"

    async def patch(self, kind, ns, name, patch):
        assert kind == "ConfigMap"
        self.calls.append(("patch-cm", name))
        self.config_maps[name]["data"].update(copy.deepcopy(patch["data"]))
        return self.config_maps[name]


def test_a_failed_steps_app_log_is_kept_before_the_status_and_the_delete():
    kube = LogKube(make_run(2))
    reconcile(kube)  # the prepare Job
    finish_all(kube)
    reconcile(kube)  # the first step of both items
    kube.calls.clear()
    finish_all(kube, fail={"run-1-00001-0"})
    reconcile(kube)
    calls = [c for c in kube.calls if c[0] != "list"]
    cm = calls.index(("create", CM))
    assert cm < calls.index(next(c for c in calls if c[0] == "patch"))  # before the status says so
    assert cm < calls.index(("delete", "run-1-00001-0"))  # and so before the Job is gone
    assert kube.config_maps[CM]["data"] == {"00001-0.log": "app of run-1-00001-0-new: RuntimeError: boom\n"}
    assert kube.log_reads == ["run-1-00001-0-new"]  # the last attempt's pod, once; not the succeeded one


def test_killed_before_the_status_patch_the_next_pass_writes_nothing_twice():
    kube = LogKube(make_run(2))
    reconcile(kube)
    finish_all(kube)
    reconcile(kube)
    finish_all(kube, fail={"run-1-00000-0", "run-1-00001-0"})
    kube.conflict_once = True  # the pass's status patch is lost (as if the process died there)
    reconcile(kube)
    assert "run-1-00000-0" in kube.jobs and set(kube.config_maps[CM]["data"]) == {
        "00000-0.log",
        "00001-0.log",
    }
    kube.calls.clear()
    reconcile(kube)  # planned again: the failures are recorded now, the Jobs deleted
    assert not [c for c in kube.calls if c[1] == CM], "the kept logs are not written again"
    assert "run-1-00000-0" not in kube.jobs and len(kube.log_reads) == 2


def test_a_second_failure_adds_its_key_and_a_foreign_configmap_is_left_alone():
    kube = LogKube(make_run(3, parallelism=1))
    reconcile(kube)
    finish_all(kube)
    reconcile(kube)
    finish_all(kube, fail={"run-1-00000-0"})
    reconcile(kube)
    reconcile(kube)
    finish_all(kube, fail={"run-1-00001-0"})
    reconcile(kube)
    assert ("patch-cm", CM) in kube.calls
    assert set(kube.config_maps[CM]["data"]) == {"00000-0.log", "00001-0.log"}

    other = LogKube(make_run(2))
    other.config_maps[CM] = {"kind": "ConfigMap", "metadata": {"name": CM}, "data": {}}  # not the run's
    reconcile(other)
    finish_all(other)
    reconcile(other)
    finish_all(other, fail={"run-1-00000-0"})
    reconcile(other)
    assert other.config_maps[CM]["data"] == {} and other.log_reads == []
    assert other.run["status"]["failures"], "the run goes on"


def test_past_the_bound_no_log_is_read_and_nothing_written():
    kube = LogKube(make_run(2))
    owner = {"kind": "PipelineRun", "name": "run-1", "uid": "uid-1", "controller": True}
    full = {applogs.key(100 + i, 0): "x" for i in range(applogs.MAX_KEPT)}
    kube.config_maps[CM] = applogs.config_map("run-1", "ns", "uid-1", owner, full)
    reconcile(kube)
    finish_all(kube)
    reconcile(kube)
    kube.calls.clear()
    finish_all(kube, fail={"run-1-00000-0"})
    reconcile(kube)
    assert kube.log_reads == [] and not [c for c in kube.calls if c[1] == CM]
    assert kube.config_maps[CM]["data"] == full


def test_service_mode_steps_have_no_app_container_to_keep():
    kube = LogKube(make_run(1), sidecar=False)
    reconcile(kube)
    finish_all(kube)
    reconcile(kube)
    finish_all(kube, fail={"run-1-00000-0"})
    reconcile(kube)
    assert CM not in kube.config_maps and kube.log_reads == []


def test_a_log_that_cannot_be_read_is_said_once_and_the_run_goes_on():
    class Refusing(LogKube):
        async def pod_log(self, ns, pod, container, tail_lines=None):
            raise KubeError(400, "BadRequest", 'container "app" in pod is waiting to start')

    kube = Refusing(make_run(1))
    reconcile(kube)
    finish_all(kube)
    reconcile(kube)
    finish_all(kube, fail={"run-1-00000-0"})
    reconcile(kube)
    (text,) = kube.config_maps[CM]["data"].values()
    assert 'could not read the app\'s log of pod run-1-00000-0-new: container "app"' in text
    assert kube.run["status"]["failures"] and "run-1-00000-0" not in kube.jobs  # the run goes on


# -- what logs show --------------------------------------------------------------------------------

RUN = {
    "metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1"},
    "spec": {"pipelineRef": {"name": "pipe"}, "workspace": {"claimName": "media"}, "items": [{"name": "a"}]},
    "status": {
        "outputPath": "/data/mmif-runs/run-1",
        "pipelineSpec": {"steps": [{"name": "asr", "mode": "Job"}, {"name": "ner", "mode": "Service"}]},
    },
}


class Source:
    def __init__(self, pods=(), data=None):
        self.pods, self.data, self.read_args = list(pods), data, []

    async def step_pods(self, selector):
        return [p for p in self.pods if "step-index=0" in selector]

    async def pod_log(self, pod, container):
        return f"{container} of {pod}"

    async def config_map(self, name):
        assert name == CM
        return None if self.data is None else {"data": self.data}

    async def read_volume(self, args):
        self.read_args.append(args)
        step = args[args.index("--step") + 1]
        k = ["asr", "ner"].index(step)
        return {"index": 0, "name": "a", "path": f"items/00000/{k:02d}-{step}.log", "log": "runner says hi\n"}


def gather(source, step=None):
    return asyncio.run(shared.gather(RUN, "a", step, source))


def test_a_live_pod_shows_both_containers():
    pod = shared.Pod("run-1-00000-0-x", ("runner", "app"), "2025")
    (runner, app) = gather(Source([pod]), "asr")
    assert (runner.source, runner.container, app.container) == ("pod", "runner", "app")
    assert (
        app.title == "item a step asr: the app, pod run-1-00000-0-x container app"
        and app.text == "app of run-1-00000-0-x"
    )


def test_once_the_pod_is_gone_the_kept_app_log_or_why_there_is_none():
    runner, app = gather(Source(data={"00000-0.log": "RuntimeError: boom\n"}), "asr")
    assert runner.source == "volume" and "from the volume (items/00000/00-asr.log)" in runner.title
    assert app.source == "kept" and app.text == "RuntimeError: boom\n"
    assert f"kept by the operator when the step failed (ConfigMap {CM}, key 00000-0.log" in app.title

    _, none = gather(Source(data={}), "asr")
    assert (
        none.source == "none" and "the operator keeps the app's log of failed item-steps only" in none.title
    )
    full = {applogs.key(i, 0): "x" for i in range(1, applogs.MAX_KEPT + 1)}
    _, none = gather(Source(data=full), "asr")
    assert f"keeps the app logs of its first {applogs.MAX_KEPT} failed item-steps only" in none.title


def test_a_service_mode_step_names_its_deployment_and_every_step_is_shown():
    sections = gather(Source(data={}))
    assert [s.step for s in sections] == ["asr", "asr", "ner", "ner"]
    service = sections[-1]
    assert service.source == "none" and "the app runs as a service (Deployment pipe-ner--" in service.title
    assert "its log is the Deployment's: kubectl logs deploy/pipe-ner--" in service.title
    assert shared.has_log(sections)


def test_a_wrong_step_is_a_usage_error():
    try:
        gather(Source(), "nope")
    except shared.LogsError as e:
        assert e.usage and "has no step 'nope' (steps: asr, ner)" in str(e)
    else:
        raise AssertionError("no error")


# -- warm steps: the app is the run's pool ----------------------------------------------------------

WARM_STEPS = [
    Step.model_validate({"name": "transcript", "image": "t:1", "warm": True}),
    Step.model_validate({"name": "check", "image": "c:1", "warm": True}),
]


def pool_pod(name, owner_kind="ReplicaSet", owner=""):
    ref = {"kind": owner_kind, "name": owner, "controller": True}
    return {"metadata": {"name": name, "ownerReferences": [ref]}}


def test_only_the_pools_own_pods_are_read_at_most_a_few():
    pool = names.run_pool_name("run-1", "check")
    pods = [
        pool_pod("b", owner=f"{pool}-1"),
        pool_pod("a", owner=f"{pool}-2"),
        pool_pod("made-by-hand", owner_kind="Job", owner=f"{pool}-1"),
        pool_pod("other-pool", owner="run-1-transcript-77"),
        {"metadata": {"name": "no-owner"}},
    ]
    assert applogs.pool_pods(pods, pool) == ["a", "b"]
    many = [pool_pod(f"p{i}", owner=f"{pool}-1") for i in range(9)]
    assert len(applogs.pool_pods(many, pool)) == applogs.MAX_POOL_PODS


def test_a_pool_failure_keeps_each_pods_tail_under_its_name_within_the_bound():
    text = applogs.pool_text([("p1", "x" * 40_000 + "\nlast of p1\n"), ("p2", "")])
    assert len(text.encode()) <= applogs.TAIL_BYTES
    assert applogs.POOL_HEADER.format("p1") in text and text.index("p1") < text.index("p2")
    assert "last of p1" in text and "(the app wrote nothing to its log)" in text
    assert applogs.pool_text([]) == ""


class PoolKube:
    """What keep_failed reads and writes for a warm step: the pool's pods, their logs, the
    run's ConfigMap."""

    def __init__(self, pods):
        self.pool = names.run_pool_name("run-1", "check")
        self.pods = pods(self.pool)
        self.config_maps: dict[str, dict] = {}
        self.selectors: list = []
        self.log_reads: list[str] = []

    async def list(self, kind, ns, labels=None, fields=None):
        assert kind == "Pod"
        self.selectors.append(dict(labels))
        return self.pods

    async def job_pods(self, ns, name, uid=None):
        raise AssertionError("a warm step's item pod has no app container to read")

    async def pod_log(self, ns, pod, container, tail_lines=None):
        assert container == "app"
        self.log_reads.append(pod)
        return f"failer: refusing document d1 (pod {pod})\n"

    async def get(self, kind, ns, name):
        return self.config_maps.get(name)

    async def create(self, body):
        self.config_maps[body["metadata"]["name"]] = copy.deepcopy(body)
        return body


def test_a_warm_steps_failure_keeps_the_pools_log_under_the_step_the_runner_named():
    kube = PoolKube(lambda pool: [pool_pod(f"{pool}-5d8f-abcde", owner=f"{pool}-5d8f"), pool_pod("fake")])
    run = {"metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1"}}
    # one pod per item ran both warm steps (steps 0..1); it failed at `check`
    job = ObservedJob("run-1-00002-0", JobKind.STEP, JobState.FAILED, item=2, step=0, last_step=1)
    message = '{"step": "check", "reason": "AppError"}'
    written = asyncio.run(
        runtime_applogs.keep_failed(kube, run, [job], "run ns/run-1", {job.name: message}, WARM_STEPS)
    )
    assert written == 1
    assert kube.selectors == [{**kube.selectors[0], "mmif.dev/step": "check"}]
    assert kube.log_reads == [f"{kube.pool}-5d8f-abcde"]  # not the pod someone labelled alike
    (data,) = [cm["data"] for cm in kube.config_maps.values()]
    assert list(data) == ["00002-1.log"]  # the step it failed at, not the pod's first
    assert "failer: refusing document d1" in data["00002-1.log"]
    assert applogs.POOL_HEADER.format(f"{kube.pool}-5d8f-abcde") in data["00002-1.log"]


def test_a_pool_without_pods_keeps_nothing():
    kube = PoolKube(lambda pool: [])
    run = {"metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1"}}
    job = ObservedJob("run-1-00000-1", JobKind.STEP, JobState.FAILED, item=0, step=1, last_step=1)
    assert asyncio.run(runtime_applogs.keep_failed(kube, run, [job], "w", {}, WARM_STEPS)) == 0
    assert kube.config_maps == {}


WARM_RUN = {
    "metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1"},
    "spec": {"pipelineRef": {"name": "pipe"}, "workspace": {"claimName": "media"}, "items": [{"name": "a"}]},
    "status": {
        "outputPath": "/data/mmif-runs/run-1",
        "pipelineSpec": {
            "steps": [{"name": "asr", "mode": "Job", "warm": True}, {"name": "ner", "mode": "Job"}]
        },
    },
}


def test_a_warm_step_names_the_runs_pool_live_and_its_kept_log_once_gone():
    pool = names.run_pool_name("run-1", "asr")
    pod = shared.Pod("run-1-00000-0-x", ("runner",), "2025")
    runner, where = asyncio.run(shared.gather(WARM_RUN, "a", "asr", Source([pod])))
    assert (runner.source, runner.container) == ("pod", "runner")
    assert where.source == "none" and f"the app runs in the run's pool (Deployment {pool}" in where.title
    assert f"kubectl logs deploy/{pool} -n ns" in where.title

    _, kept = asyncio.run(shared.gather(WARM_RUN, "a", "asr", Source(data={"00000-0.log": "boom\n"})))
    assert kept.source == "kept" and kept.text == "boom\n"
    assert f"the app in the run's pool (Deployment {pool}), kept by the operator" in kept.title
    _, none = asyncio.run(shared.gather(WARM_RUN, "a", "asr", Source(data={})))
    assert none.source == "none" and f"its app ran in the run's pool {pool}" in none.title
