"""kinds/pipelinerun/planning.py: the run planner, driven through a tiny simulated cluster."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import random
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from mmif_operator.core import itemstates, names
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.core.observed import JobKind, JobState, ObservedJob
from mmif_operator.kinds.pipelinerun import planning as R
from mmif_operator.kinds.pipelinerun.model import PipelineRunStatus
from tests.unit import typed as T

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
PIPELINE = {"steps": [{"name": "asr", "image": "asr:1"}, {"name": "ner", "image": "ner:1"}]}


def make_run(n_items=5, **spec):
    base = {
        "pipelineRef": {"name": "pipe"},
        "workspace": {"claimName": "media"},
        "items": [
            {"name": f"doc-{i}", "documents": [{"location": f"v{i}.mp4", "mimeType": "video/mp4"}]}
            for i in range(n_items)
        ],
        "parallelism": 2,
    }
    base.update(spec)
    return {
        "metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": base,
        "status": {},
    }


class Sim:
    """Applies plans as the handler would: create, patch status, delete."""

    def __init__(self, run, pipeline=PIPELINE):
        self.run = run
        self.pipeline = pipeline
        self.jobs: dict[str, ObservedJob] = {}
        self.tms: dict[str, dict] = {}
        self.now = T0
        self.plans: list[R.RunPlan] = []

    def plan(self, **kw):
        return T.plan_run(
            copy.deepcopy(self.run),
            self.pipeline,
            list(self.jobs.values()),
            self.now,
            operator_image="img",
            termination_messages=self.tms,
            **kw,
        )

    def apply(self, plan, *, create=True, patch=True, delete=True):
        if create:
            for body in plan.create:
                job = ObservedJob.from_job(body)
                self.jobs.setdefault(job.name, job)
        if patch:
            self.run["status"].update(copy.deepcopy(plan.status_patch))
        if delete:
            for name in plan.delete:
                self.jobs.pop(name, None)
        self.plans.append(plan)
        return plan

    def step(self, **kw):
        return self.apply(self.plan(**kw))

    def finish(self, name, ok=True, tm=None, reason=None):
        state = JobState.SUCCEEDED if ok else JobState.FAILED
        self.jobs[name] = dataclasses.replace(
            self.jobs[name], state=state, reason=reason or (None if ok else "PodFailurePolicy")
        )
        if tm is not None:
            self.tms[name] = tm

    def step_jobs(self, state=None):
        return sorted(
            (j.item, j.step)
            for j in self.jobs.values()
            if j.kind is JobKind.STEP and (state is None or j.state is state)
        )

    def states(self):
        st = self.run["status"]
        return itemstates.decode(st["itemStates"], st["itemCount"])

    def started(self, count):
        """Start the run and let the prepare Job report `count` items."""
        self.step()
        self.finish(names.prepare_job_name("run-1"), tm={"itemCount": count})
        return self.step()

    def run_all(self, fail=(), limit=1000):
        """Finish every active step Job (failing (item, step) pairs in `fail`) until the run ends."""
        for _ in range(limit):
            if self.run["status"].get("phase") in R.TERMINAL_PHASES:
                return
            active = [j for j in self.jobs.values() if j.state is JobState.ACTIVE]
            for job in active:
                if job.kind is JobKind.STEP:
                    bad = (job.item, job.step) in fail
                    self.finish(
                        job.name,
                        ok=not bad,
                        tm={"reason": "AppError", "message": f"boom {job.item}"} if bad else None,
                    )
                else:
                    self.finish(job.name)
            self.step()
        raise AssertionError("the run did not end")


def cond(status):
    (c,) = [c for c in status["conditions"] if c["type"] == "Succeeded"]
    return c


def check_schema(status):
    PipelineRunStatus.model_validate(status)


def test_start_creates_prepare_and_waits_for_the_count():
    sim = Sim(make_run())
    plan = sim.step()
    assert plan.phase == "Running" and plan.phase_event == "Started"
    assert [j["metadata"]["name"] for j in plan.create] == ["run-1-prepare"]
    st = sim.run["status"]
    assert st["pipelineSpec"] == PIPELINE and st["startTime"] == "2025-01-01T12:00:00Z"
    assert "outputPath" not in st and "manifestPath" not in st, "reported only once they exist"
    assert [h["to"] for h in st["history"]] == ["Pending", "Running"]
    assert cond(st)["status"] == "Unknown"
    assert any(e.reason == "Started" for e in plan.events)
    check_schema(st)
    # Nothing new while prepare runs (and the prepare Job is not created twice).
    again = sim.step()
    assert again.create == [] and again.phase_event is None


def test_start_respects_parallelism():
    sim = Sim(make_run(n_items=5, parallelism=2))
    plan = sim.started(5)
    assert sim.step_jobs() == [(0, 0), (1, 0)]
    assert "run-1-prepare" in plan.delete and "run-1-prepare" not in sim.jobs
    st = sim.run["status"]
    assert st["itemCount"] == 5 and st["progress"] == "0/5"
    assert st["steps"][0] == {"name": "asr", "pending": 3, "running": 2, "succeeded": 0, "failed": 0}
    assert [s.phase for s in sim.states()] == [ItemPhase.RUNNING] * 2 + [ItemPhase.PENDING] * 3
    check_schema(st)


def test_item_advances_on_success_and_next_item_starts_when_done():
    sim = Sim(make_run(n_items=3, parallelism=2))
    sim.started(3)
    sim.finish(names.step_job_name("run-1", 0, 0))
    plan = sim.step()
    assert [j["metadata"]["name"] for j in plan.create] == [names.step_job_name("run-1", 0, 1)]
    assert plan.delete == [names.step_job_name("run-1", 0, 0)]
    assert sim.step_jobs() == [(0, 1), (1, 0)]  # still 2 in flight
    sim.finish(names.step_job_name("run-1", 0, 1))
    sim.step()
    assert sim.states()[0] == ItemState(1, ItemPhase.SUCCEEDED)
    assert sim.step_jobs() == [(1, 0), (2, 0)]
    st = sim.run["status"]
    assert st["itemsSucceeded"] == 1 and st["progress"] == "1/3"
    assert st["steps"][1]["succeeded"] == 1 and st["steps"][0]["succeeded"] == 1


def test_success_then_manifest_then_succeeded():
    sim = Sim(make_run(n_items=3, parallelism=3))
    sim.started(3)
    for _ in range(2):
        for job in list(sim.jobs.values()):
            sim.finish(job.name)
        plan = sim.step()
    assert [j["metadata"]["name"] for j in plan.create] == ["run-1-manifest"]
    assert sim.run["status"]["phase"] == "Running"
    assert cond(sim.run["status"])["reason"] == "Finalizing"
    assert sim.run["status"]["outputPath"] == "/data/mmif-runs/run-1", "claimed by the prepare Job"
    assert "manifestPath" not in sim.run["status"], "not written yet"
    manifest_env = {
        e["name"]: e["value"] for e in plan.create[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert manifest_env["MMIF_RUN_PHASE"] == "Succeeded"
    [states] = plan.create_config_maps
    assert states["metadata"]["name"] == "run-1-states-uid1"
    payload = json.loads(zlib.decompress(base64.b64decode(states["binaryData"]["item-states.json.z"])))
    assert payload["owner"] == "uid-1"
    assert itemstates.decode(payload["itemStates"]) == [ItemState(1, ItemPhase.SUCCEEDED)] * 3
    assert manifest_env["MMIF_ITEM_STATES_FILE"] == "/etc/mmif-runner/item-states.json.z"
    sim.finish("run-1-manifest")
    plan = sim.step()
    assert plan.delete_config_maps == ["run-1-states-uid1"], "read: deleted with the manifest Job"
    st = sim.run["status"]
    assert plan.phase == "Succeeded" and plan.phase_event == "AllItemsSucceeded"
    assert cond(st)["status"] == "True" and cond(st)["reason"] == "Succeeded"
    assert st["completionTime"] and st["progress"] == "3/3"
    assert st["manifestPath"] == "/data/mmif-runs/run-1/manifest.json"
    assert "run-1-manifest" in plan.delete
    check_schema(st)
    # A terminal run does nothing more.
    assert sim.step().create == []


def test_manifest_failure_fails_the_run_through_the_table():
    sim = Sim(make_run(n_items=2, parallelism=2))
    sim.started(2)
    for _ in range(2):
        for job in list(sim.jobs.values()):
            sim.finish(job.name)
        sim.step()
    sim.finish("run-1-manifest", ok=False, tm={"reason": "ManifestError", "message": "disk full"})
    assert "run-1-manifest" in R.termination_messages_needed(sim.run, sim.jobs.values())
    plan = sim.step()
    st = sim.run["status"]
    assert plan.phase == "Failed" and plan.phase_event == "ManifestFailed"
    assert cond(st)["status"] == "False" and cond(st)["reason"] == "ManifestFailed"
    assert "disk full" in cond(st)["message"]
    assert st["history"][-1]["from"] == "Running" and st["history"][-1]["reason"] == "ManifestFailed"
    assert "manifestPath" not in st, "no manifest was written"
    check_schema(st)


def test_stop_failure_and_items_failed_message():
    sim = Sim(make_run(n_items=5, parallelism=5))
    sim.started(5)
    sim.run_all(fail={(0, 0), (1, 0), (2, 1)})
    st = sim.run["status"]
    assert st["phase"] == "Failed"
    c = cond(st)
    assert c["status"] == "False" and c["reason"] == "ItemsFailed"
    assert c["message"] == "3 of 5 items failed: 2 at step asr, 1 at step ner"
    assert st["itemsFailed"] == 3 and st["itemsSucceeded"] == 2
    states = sim.states()
    assert states[0] == ItemState(0, ItemPhase.FAILED) and states[2] == ItemState(1, ItemPhase.FAILED)
    # Stop: a failed item never reaches the next step.
    created = [
        (j.item, j.step)
        for p in sim.plans
        for j in map(ObservedJob.from_job, p.create)
        if j.kind is JobKind.STEP
    ]
    assert (0, 1) not in created and (1, 1) not in created
    assert {(f["index"], f["step"]) for f in st["failures"]} == {(0, "asr"), (1, "asr"), (2, "ner")}
    f0 = next(f for f in st["failures"] if f["index"] == 0)
    assert f0["item"] == "doc-0" and f0["reason"] == "AppError" and f0["message"] == "boom 0"
    assert st["steps"][0] == {"name": "asr", "pending": 0, "running": 0, "succeeded": 3, "failed": 2}
    assert st["steps"][1] == {"name": "ner", "pending": 0, "running": 0, "succeeded": 2, "failed": 1}
    assert not any(j.kind is JobKind.STEP for j in sim.jobs.values())  # all recorded, all deleted
    check_schema(st)


def test_continue_failure_goes_on_and_counts_as_failed():
    sim = Sim(make_run(n_items=2, parallelism=2, onItemFailure="Continue"))
    sim.started(2)
    sim.finish(names.step_job_name("run-1", 0, 0), ok=False, tm={"reason": "AppError", "message": "x"})
    plan = sim.step()
    assert names.step_job_name("run-1", 0, 1) in [j["metadata"]["name"] for j in plan.create]
    assert sim.states()[0] == ItemState(1, ItemPhase.RUNNING)
    assert R.decode_failed_steps(sim.run["status"]["itemFailedSteps"], 2) == [0b01, 0]
    assert sim.run["status"]["steps"][0]["failed"] == 1
    sim.run_all()
    st = sim.run["status"]
    assert sim.states()[0] == ItemState(0, ItemPhase.FAILED)  # FAILED at its first failing step
    assert sim.states()[1] == ItemState(1, ItemPhase.SUCCEEDED)
    assert st["phase"] == "Failed" and cond(st)["message"] == "1 of 2 items failed: 1 at step asr"
    assert st["steps"][0] == {"name": "asr", "pending": 0, "running": 0, "succeeded": 1, "failed": 1}
    assert st["steps"][1] == {"name": "ner", "pending": 0, "running": 0, "succeeded": 2, "failed": 0}


def test_continue_failure_at_several_steps():
    pipeline = {"steps": [{"name": n, "image": "x"} for n in ("a", "b", "c")]}
    sim = Sim(make_run(n_items=1, parallelism=1, onItemFailure="Continue"), pipeline)
    sim.started(1)
    sim.run_all(fail={(0, 1), (0, 2)})
    assert sim.states()[0] == ItemState(1, ItemPhase.FAILED)
    assert R.decode_failed_steps(sim.run["status"]["itemFailedSteps"], 1) == [0b110]
    assert [s["failed"] for s in sim.run["status"]["steps"]] == [0, 1, 1]
    assert [s["succeeded"] for s in sim.run["status"]["steps"]] == [1, 0, 0]


@pytest.mark.parametrize("mode", ["Stop", "Continue"])
def test_replay_after_restart_creates_and_counts_nothing_twice(mode):
    sim = Sim(make_run(n_items=4, parallelism=2, onItemFailure=mode))
    sim.started(4)
    sim.finish(names.step_job_name("run-1", 0, 0))
    sim.finish(names.step_job_name("run-1", 1, 0), ok=False, tm={"reason": "AppError", "message": "m"})
    # The operator patched the status, then died before deleting the finished Jobs.
    first = sim.apply(sim.plan(), delete=False)
    assert first.delete and first.create
    status_after = copy.deepcopy(sim.run["status"])
    replay = sim.apply(sim.plan())
    existing = {j["metadata"]["name"] for j in first.create}
    assert {j["metadata"]["name"] for j in replay.create} <= existing  # at most re-creates (409)
    assert [j for j in replay.create if j["metadata"]["name"] not in sim.jobs] == []
    assert set(replay.delete) == set(first.delete)
    assert replay.events == []
    for key in ("itemStates", "itemsFailed", "itemsSucceeded", "failures", "steps", "progress"):
        assert sim.run["status"].get(key) == status_after.get(key), key
    assert len(sim.run["status"]["failures"]) == 1


def test_replay_when_the_status_patch_was_lost():
    """Created the next Jobs, died before patching: the same plan again, nothing new."""
    sim = Sim(make_run(n_items=4, parallelism=2))
    sim.started(4)
    sim.finish(names.step_job_name("run-1", 0, 0))
    before = copy.deepcopy(sim.run["status"])
    first = sim.apply(sim.plan(), patch=False, delete=False)
    again = sim.plan()
    assert [j["metadata"]["name"] for j in again.create] == []  # (0, 1) exists now
    assert again.delete == first.delete
    assert again.status_patch == first.status_patch
    assert sim.run["status"] == before


def test_pending_item_whose_job_exists_counts_as_in_flight():
    sim = Sim(make_run(n_items=4, parallelism=2))
    sim.started(4)
    # Status lost: every item back to Pending while Jobs (0,0) and (1,0) run.
    sim.run["status"]["itemStates"] = itemstates.encode([ItemState()] * 4)
    plan = sim.step()
    assert plan.create == []
    assert [s.phase for s in sim.states()][:2] == [ItemPhase.RUNNING] * 2


def test_cancel_deletes_active_jobs_then_manifest_then_cancelled():
    sim = Sim(make_run(n_items=4, parallelism=2))
    sim.started(4)
    sim.finish(names.step_job_name("run-1", 0, 0))  # recorded before cancelling
    sim.run["spec"]["status"] = "Cancelled"
    plan = sim.step()
    assert names.step_job_name("run-1", 1, 0) in plan.delete
    assert [j["metadata"]["name"] for j in plan.create] == ["run-1-manifest"]
    states = sim.states()
    assert states[0] == ItemState(1, ItemPhase.CANCELLED)  # had advanced to step 1
    assert all(s.phase is ItemPhase.CANCELLED for s in states)
    st = sim.run["status"]
    assert st["itemsCancelled"] == 4 and cond(st)["reason"] == "Cancelling"
    assert st["phase"] == "Running"
    assert any(e.reason == "Cancelling" for e in plan.events)
    sim.step()  # manifest still running: no change
    assert sim.run["status"]["phase"] == "Running"
    sim.finish("run-1-manifest")
    plan = sim.step()
    assert plan.phase == "Cancelled" and plan.phase_event == "Cancelled"
    assert cond(sim.run["status"])["status"] == "False" and cond(sim.run["status"])["reason"] == "Cancelled"
    check_schema(sim.run["status"])


def test_cancel_before_start_and_while_preparing():
    sim = Sim(make_run())
    sim.run["spec"]["status"] = "Cancelled"
    plan = sim.step()
    assert plan.phase == "Cancelled" and plan.create == []
    sim = Sim(make_run())
    sim.step()
    sim.run["spec"]["status"] = "Cancelled"
    plan = sim.step()
    assert plan.phase == "Cancelled" and plan.delete == ["run-1-prepare"]


def test_timeout_cancels_items_and_fails_with_timeout():
    sim = Sim(make_run(n_items=3, parallelism=1, timeoutSeconds=600))
    plan = sim.step()
    assert plan.requeue_after == pytest.approx(600)
    sim.finish(names.prepare_job_name("run-1"), tm={"itemCount": 3})
    sim.now = T0 + timedelta(seconds=100)
    plan = sim.step()
    assert plan.requeue_after == pytest.approx(500)
    sim.now = T0 + timedelta(seconds=601)
    # Even after spec.status changes later, the recorded reason (TimingOut) decides.
    plan = sim.step()
    assert plan.delete == [names.step_job_name("run-1", 0, 0)]
    assert cond(sim.run["status"])["reason"] == "TimingOut"
    assert sim.run["status"]["itemsCancelled"] == 3
    sim.finish("run-1-manifest")
    plan = sim.step()
    st = sim.run["status"]
    assert plan.phase == "Failed" and plan.phase_event == "TimedOut"
    assert cond(st)["reason"] == "Timeout" and "600s" in cond(st)["message"]


def test_timeout_while_preparing():
    sim = Sim(make_run(timeoutSeconds=10))
    sim.step()
    sim.now = T0 + timedelta(seconds=11)
    plan = sim.step()
    assert plan.phase == "Failed" and plan.phase_event == "TimedOut" and plan.delete == ["run-1-prepare"]


def test_prepare_failures():
    sim = Sim(make_run())
    sim.step()
    sim.finish("run-1-prepare", ok=False, tm={"reason": "OutputConflict", "message": "owned by another run"})
    assert R.termination_messages_needed(sim.run, list(sim.jobs.values())) == ["run-1-prepare"]
    plan = sim.step()
    assert plan.phase == "Failed" and cond(sim.run["status"])["reason"] == "OutputConflict"
    assert "run-1-prepare" not in plan.delete  # kept for its logs
    sim = Sim(make_run())
    sim.step()
    sim.finish("run-1-prepare", ok=False, tm='{"reason": "InvalidItems", "message": "v3.mp4 missing"}')
    sim.step()
    assert cond(sim.run["status"])["reason"] == "PrepareFailed"
    assert cond(sim.run["status"])["message"] == "v3.mp4 missing"
    assert not {"outputPath", "manifestPath"} & set(sim.run["status"]), "neither exists after PrepareFailed"


def test_prepare_count_falls_back_to_inline_items():
    sim = Sim(make_run(n_items=3))
    sim.step()
    sim.finish("run-1-prepare")
    sim.step()
    assert sim.run["status"]["itemCount"] == 3


def test_pipeline_or_workspace_missing_keeps_pending():
    sim = Sim(make_run(), pipeline=None)
    plan = sim.step()
    assert plan.phase == "Pending" and cond(sim.run["status"])["reason"] == "PipelineNotFound"
    assert [e.reason for e in plan.events] == ["PipelineNotFound"]
    assert plan.requeue_after
    assert sim.step().events == []  # no repeated Event
    sim.pipeline = PIPELINE
    plan = sim.step(workspace_found=False)
    assert cond(sim.run["status"])["reason"] == "WorkspaceNotFound"
    plan = sim.step()
    assert plan.phase == "Running"
    c = cond(sim.run["status"])
    assert c["status"] == "Unknown" and c["lastTransitionTime"] == "2025-01-01T12:00:00Z"


def test_invalid_params_fail_the_run():
    sim = Sim(make_run(params={"nope": {"a": "b"}}))
    plan = sim.step()
    assert plan.phase == "Failed" and cond(sim.run["status"])["reason"] == "InvalidSpec"
    assert "nope" in cond(sim.run["status"])["message"]


def test_snapshot_wins_over_the_live_pipeline():
    sim = Sim(make_run(n_items=1, parallelism=1))
    sim.started(1)
    sim.pipeline = {"steps": [{"name": "other", "image": "o"}]}
    sim.run_all()
    assert sim.run["status"]["phase"] == "Succeeded"
    assert [s["name"] for s in sim.run["status"]["steps"]] == ["asr", "ner"]


def test_jobs_of_another_run_uid_are_ignored():
    sim = Sim(make_run(n_items=2, parallelism=2))
    sim.started(2)
    name = names.step_job_name("run-1", 0, 0)
    sim.jobs[name] = dataclasses.replace(sim.jobs[name], owner_uid="old-uid", state=JobState.SUCCEEDED)
    plan = sim.step()
    assert name not in plan.delete and sim.states()[0] == ItemState(0, ItemPhase.RUNNING)


def test_failures_are_capped_to_the_latest_20():
    sim = Sim(make_run(n_items=30, parallelism=30))
    sim.started(30)
    sim.run_all(fail={(i, 0) for i in range(30)})
    st = sim.run["status"]
    assert len(st["failures"]) == 20
    assert [f["index"] for f in st["failures"]] == list(range(10, 30))
    assert cond(st)["message"] == "30 of 30 items failed: 30 at step asr"
    check_schema(st)


def test_long_failure_messages_are_cut():
    sim = Sim(make_run(n_items=1, parallelism=1))
    sim.started(1)
    sim.finish(names.step_job_name("run-1", 0, 0), ok=False, tm={"reason": "AppError", "message": "x" * 5000})
    sim.step()
    assert len(sim.run["status"]["failures"][0]["message"]) <= 512


def test_item_name_from_the_runner_summary():
    sim = Sim(make_run(n_items=0, parallelism=1, items=None, itemsFrom={"path": "b.jsonl"}))
    sim.step()
    sim.finish("run-1-prepare", tm='{"items": 2}')  # what runner/prepare.py writes
    sim.step()
    assert sim.run["status"]["itemCount"] == 2
    sim.finish(
        names.step_job_name("run-1", 0, 0),
        ok=False,
        tm={"item": 0, "name": "news-1", "step": "asr", "reason": "InvalidOutput", "message": "no view"},
    )
    plan = sim.step()
    (f,) = sim.run["status"]["failures"]
    assert f["item"] == "news-1" and f["reason"] == "InvalidOutput" and f["step"] == "asr"
    assert [e.reason for e in plan.events] == ["StepFailed"] and "news-1" in plan.events[0].message


def test_job_condition_reason_when_no_termination_message():
    sim = Sim(make_run(n_items=1, parallelism=1))
    sim.started(1)
    sim.finish(names.step_job_name("run-1", 0, 0), ok=False, reason="DeadlineExceeded")
    sim.step()
    assert sim.run["status"]["failures"][0]["reason"] == "Timeout"


def test_status_stays_small_for_10000_items():
    n = 10_000
    pipeline = {
        "steps": [{"name": f"step-{k}", "image": f"app-{k}:1", "parameters": {"p": "v"}} for k in range(20)]
    }
    rng = random.Random(1)
    sim = Sim(
        make_run(
            n_items=0,
            parallelism=1000,
            onItemFailure="Continue",
            items=None,
            itemsFrom={"path": "batch.jsonl"},
        ),
        pipeline,
    )
    sim.started(n)
    # A run in the middle: a mix of every state, some Continue failures, and 1000 Jobs finishing.
    states = []
    for _ in range(n):
        r = rng.random()
        phase = ItemPhase.SUCCEEDED if r < 0.5 else ItemPhase.PENDING if r < 0.85 else ItemPhase.FAILED
        states.append(
            ItemState(
                19 if phase is ItemPhase.SUCCEEDED else rng.randrange(20) if phase is ItemPhase.FAILED else 0,
                phase,
            )
        )
    masks = [1 << s.step if s.phase is ItemPhase.FAILED and rng.random() < 0.5 else 0 for s in states]
    for i, _ in sim.step_jobs():
        states[i] = ItemState(0, ItemPhase.RUNNING)
    sim.run["status"]["itemStates"] = itemstates.encode(states)
    sim.run["status"]["itemFailedSteps"] = R.encode_failed_steps(masks)
    for job in list(sim.jobs.values()):
        sim.finish(job.name, ok=rng.random() < 0.7, tm={"reason": "AppError", "message": "e" * 2000})
    plan = sim.step()
    size = len(json.dumps(plan.status_patch))
    whole = len(json.dumps(sim.run["status"]))
    assert whole < 64 * 1024, whole
    assert size < 64 * 1024
    assert len(sim.run["status"]["failures"]) == 20
    check_schema(sim.run["status"])


def test_conditions_follow_api_conventions():
    sim = Sim(make_run(n_items=2, parallelism=1))
    sim.started(2)
    c1 = cond(sim.run["status"])
    sim.now = T0 + timedelta(minutes=5)
    sim.finish(names.step_job_name("run-1", 0, 0))
    sim.step()
    c2 = cond(sim.run["status"])
    assert c2["lastTransitionTime"] == c1["lastTransitionTime"]  # still Unknown
    assert c2["observedGeneration"] == 1 and c2["reason"] == "Running"
    sim.run_all()
    c3 = cond(sim.run["status"])
    assert c3["status"] == "True" and c3["lastTransitionTime"] == "2025-01-01T12:05:00Z"
    assert sim.run["status"]["observedGeneration"] == 1


def test_ttl_after_finished():
    sim = Sim(make_run(n_items=1, parallelism=1, ttlSecondsAfterFinished=60))
    sim.started(1)
    sim.run_all()
    plan = sim.plans[-1]
    assert plan.requeue_after == pytest.approx(60) and not plan.delete_run
    sim.now = T0 + timedelta(seconds=61)
    assert sim.step().delete_run


def test_termination_messages_needed_skips_recorded_jobs():
    sim = Sim(make_run(n_items=2, parallelism=2))
    sim.started(2)
    name = names.step_job_name("run-1", 0, 0)
    sim.finish(name, ok=False)
    assert R.termination_messages_needed(sim.run, list(sim.jobs.values())) == [name]
    sim.apply(sim.plan(), delete=False)
    assert R.termination_messages_needed(sim.run, list(sim.jobs.values())) == []


def test_failed_steps_encoding_roundtrip():
    masks = [0, 1, 1 << 31, 0b1010]
    assert R.decode_failed_steps(R.encode_failed_steps(masks), 4) == masks
    assert R.decode_failed_steps(None, 3) == [0, 0, 0]
    assert R.first_failed_step(0b1000) == 3
    with pytest.raises(ValueError):
        R.decode_failed_steps(R.encode_failed_steps(masks), 5)


def test_item_failed_steps_is_part_of_the_status_schema():
    from pathlib import Path

    import yaml

    fields = {f.alias or name for name, f in PipelineRunStatus.model_fields.items()}
    assert "itemFailedSteps" in fields
    crd = yaml.safe_load((Path(__file__).parents[2] / "crds" / "mmif.dev_pipelineruns.yaml").read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert "itemFailedSteps" in status["properties"]


def test_inline_items_reach_the_prepare_job_in_a_configmap_deleted_once_read():
    sim = Sim(make_run(n_items=3))
    plan = sim.step()
    [cm] = plan.create_config_maps
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "run-1-items-uid1"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    payload = json.loads(zlib.decompress(base64.b64decode(cm["binaryData"]["items.json.z"])))
    assert payload == {"owner": "uid-1", "items": sim.run["spec"]["items"]}
    assert sim.step().create_config_maps == [], "not again while the prepare Job runs"
    sim.finish(names.prepare_job_name("run-1"), tm={"itemCount": 3})
    assert sim.step().delete_config_maps == ["run-1-items-uid1"]
    # itemsFrom: no ConfigMap
    sim = Sim(make_run(items=None, itemsFrom={"path": "batch.jsonl"}))
    assert sim.step().create_config_maps == []


def test_inline_items_that_do_not_fit_in_a_configmap_fail_the_run_saying_so():
    import os

    noise = [
        {"documents": [{"location": os.urandom(500).hex(), "mimeType": "video/mp4"} for _ in range(4)]}
        for _ in range(1000)
    ]
    sim = Sim(make_run(items=noise))
    plan = sim.step()
    assert plan.phase == "Failed" and plan.create == [] and plan.create_config_maps == []
    c = cond(sim.run["status"])
    assert c["reason"] == "PrepareFailed"
    assert "spec.items cannot reach the prepare Job: the 1000 inline items take" in c["message"]
    assert "spec.itemsFrom" in c["message"]
