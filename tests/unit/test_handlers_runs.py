"""kinds/pipelinerun/handler.py: one reconcile pass applies the plan in order, against a fake cluster."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from mmif_operator.core.kube import ops
from mmif_operator.core.kube.ops import KubeError
from mmif_operator.core.observed import ObservedJob
from mmif_operator.core.runtime.loop import MAX_CREATES_PER_PASS
from mmif_operator.kinds.pipelinerun import handler as H

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
PIPELINE = {"steps": [{"name": "asr", "image": "asr:1"}, {"name": "ner", "image": "ner:1"}]}


def make_run(n=3, **spec):
    base = {
        "pipelineRef": {"name": "pipe"},
        "workspace": {"claimName": "media"},
        "items": [
            {"name": f"d{i}", "documents": [{"location": f"v{i}.mp4", "mimeType": "video/mp4"}]}
            for i in range(n)
        ],
        "parallelism": 2,
    }
    base.update(spec)
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {
            "name": "run-1",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": base,
        "status": {},
    }


class FakeKube:
    """Just enough of k8s.ops.Kube for reconcile_run; records every write in order."""

    def __init__(self, run, pipeline=PIPELINE, pvc=True):
        self.run = run
        self.pipeline = pipeline
        self.pvc = pvc
        self.jobs: dict[str, dict] = {}
        self.config_maps: dict[str, dict] = {}
        self.messages: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.conflict_once = False
        self.rv = 1

    async def get_custom(self, plural, ns, name):
        if plural == "pipelineruns":
            return copy.deepcopy(self.run) if self.run else None
        if not self.pipeline:
            return None
        return {
            "metadata": {"name": name, "generation": 1},
            "spec": copy.deepcopy(self.pipeline),
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "NoServiceSteps", "observedGeneration": 1}
                ],
            },
        }

    async def read_pvc(self, ns, name):
        return {"metadata": {"name": name}} if self.pvc else None

    async def job_termination_message(self, ns, name):
        self.calls.append(("tm", name))
        return self.messages.get(name)

    async def create(self, body):
        name = body["metadata"]["name"]
        self.calls.append(("create", name))
        store = self.config_maps if body["kind"] == "ConfigMap" else self.jobs
        if name in store:  # as Kube.create: ours exists (False), or someone else's (NameConflict)
            return ops._ours_or_raise(body["kind"], body, store[name])
        store[name] = copy.deepcopy(body)
        return True

    async def get(self, kind, ns, name):
        assert kind == "ConfigMap"
        return copy.deepcopy(self.config_maps.get(name))

    async def delete(self, kind, ns, name, uid=None):
        assert kind == "ConfigMap"
        self.calls.append(("delete", name))
        return self.config_maps.pop(name, None) is not None

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        self.calls.append(("patch", ",".join(sorted(patch))))
        if self.conflict_once:
            self.conflict_once = False
            raise KubeError(409, "Conflict", "the object has been modified")
        assert resource_version == self.run["metadata"]["resourceVersion"]
        self.run["status"].update(json.loads(json.dumps(patch)))
        self.rv += 1
        self.run["metadata"]["resourceVersion"] = str(self.rv)
        return self.run

    async def delete_job(self, ns, name):
        self.calls.append(("delete", name))
        return self.jobs.pop(name, None) is not None

    async def list_jobs(self, ns, labels):
        self.calls.append(("list", labels["mmif.dev/run"]))
        return [copy.deepcopy(j) for j in self.jobs.values()]

    async def delete_custom(self, plural, ns, name, uid=None):
        self.calls.append(("delete-run", name))
        self.run = None
        return True

    # -- test helpers --
    def observed(self):
        return [ObservedJob.from_job(j) for j in self.jobs.values()]

    def finish(self, name, ok=True, message=None):
        cond = "Complete" if ok else "Failed"
        self.jobs[name]["status"] = {
            "conditions": [{"type": cond, "status": "True", "reason": None if ok else "PodFailurePolicy"}]
        }
        if message is not None:
            self.messages[name] = message


def reconcile(kube, now=T0, events=None):
    posted = events if events is not None else []
    return asyncio.run(
        H.reconcile_run(
            kube,
            "ns",
            "run-1",
            "uid-1",
            kube.observed(),
            operator_image="img",
            now=now,
            post_event=lambda obj, t, r, m: posted.append((t, r, m)),
        )
    )


def finish_all(kube, fail=()):
    for name in list(kube.jobs):
        if kube.jobs[name].get("status"):
            continue
        labels = kube.jobs[name]["metadata"]["labels"]
        if labels["app.kubernetes.io/component"] == "prepare":
            kube.finish(name, message=json.dumps({"itemCount": len(kube.run["spec"]["items"])}))
        elif name in fail:
            kube.finish(name, ok=False, message=json.dumps({"reason": "AppError", "message": "boom"}))
        else:
            kube.finish(name)


def test_a_run_goes_to_the_end_and_the_writes_come_in_order():
    kube = FakeKube(make_run(3))
    events = []
    result = reconcile(kube, events=events)
    # The ConfigMap the prepare Job reads its items from, before the Job.
    assert kube.calls == [
        ("create", "run-1-items-uid1"),
        ("create", "run-1-prepare"),
        ("patch", kube.calls[2][1]),
    ]
    assert kube.run["status"]["phase"] == "Running" and not result.done
    for _ in range(20):
        kube.calls.clear()
        finish_all(kube)
        result = reconcile(kube, events=events)
        kinds = [c[0] for c in kube.calls if c[0] not in ("tm", "list")]
        # Creates first, then (at most) one status patch, then the deletes.
        assert kinds == sorted(kinds, key=["create", "patch", "delete"].index)
        if result.done:
            break
    st = kube.run["status"]
    assert st["phase"] == "Succeeded" and st["progress"] == "3/3" and result.done
    assert kube.jobs == {} and kube.config_maps == {}, "the runner inputs are deleted once read"
    assert ("Normal", "Succeeded", "3 of 3 items succeeded") in events


def test_a_configmap_of_the_items_name_that_is_not_ours_is_not_counted_as_ours_and_said_so():
    """Its name holds the run's UID: someone made it on purpose. It is not taken for ours (a
    Warning Event names it); the prepare Job goes ahead, and its runner refuses the content (unit
    tests of runner/inputs.py), so the run fails with that reason rather than waiting."""
    kube = FakeKube(make_run(2))
    kube.config_maps["run-1-items-uid1"] = {"kind": "ConfigMap", "metadata": {"name": "run-1-items-uid1"}}
    events = []
    reconcile(kube, events=events)
    assert ("Warning", "NameConflict") in [(t, r) for t, r, _ in events], events
    assert any("ConfigMap run-1-items-uid1 already exists and is not ours" in m for _, _, m in events), events
    assert kube.config_maps["run-1-items-uid1"]["metadata"].get("ownerReferences") is None, "left as it was"
    assert "run-1-prepare" in kube.jobs


def test_a_failed_configmap_create_creates_no_job_in_that_pass():
    kube = FakeKube(make_run(2))
    real = kube.create

    async def refuse(body):
        if body["kind"] == "ConfigMap":
            raise KubeError(403, "Forbidden", "configmaps is forbidden")
        return await real(body)

    kube.create = refuse
    events = []
    result = reconcile(kube, events=events)
    assert "run-1-prepare" not in kube.jobs and result.requeue_after == 10.0
    assert any(r == "CreateFailed" and "forbidden" in m for _, r, m in events), events
    kube.create = real
    reconcile(kube)
    assert "run-1-prepare" in kube.jobs and "run-1-items-uid1" in kube.config_maps


def test_a_conflicting_status_patch_deletes_nothing_and_retries_at_once():
    kube = FakeKube(make_run(2))
    reconcile(kube)
    finish_all(kube)
    kube.conflict_once = True
    kube.calls.clear()
    result = reconcile(kube)
    assert result.requeue_after == 0.0 and not result.done
    assert not [c for c in kube.calls if c[0] == "delete"]
    assert "run-1-prepare" in kube.jobs
    kube.calls.clear()
    reconcile(kube)
    assert ("delete", "run-1-prepare") in kube.calls
    assert kube.run["status"]["itemCount"] == 2


def test_termination_messages_are_read_only_for_failed_or_prepare_jobs():
    kube = FakeKube(make_run(2, parallelism=2))
    reconcile(kube)
    finish_all(kube)
    kube.calls.clear()
    reconcile(kube)
    assert [c for c in kube.calls if c[0] == "tm"] == [("tm", "run-1-prepare")]
    kube.calls.clear()
    finish_all(kube, fail={"run-1-00001-0"})
    reconcile(kube)
    assert [c for c in kube.calls if c[0] == "tm"] == [("tm", "run-1-00001-0")]
    st = kube.run["status"]
    assert st["failures"][0]["reason"] == "AppError" and st["failures"][0]["message"] == "boom"


def test_pending_without_pvc_waits_and_requeues():
    kube = FakeKube(make_run(), pvc=False)
    events = []
    result = reconcile(kube, events=events)
    assert kube.run["status"]["phase"] == "Pending"
    assert kube.run["status"]["conditions"][0]["reason"] == "WorkspaceNotFound"
    assert result.requeue_after == 30.0 and not [c for c in kube.calls if c[0] == "create"]
    assert events and events[0][1] == "WorkspaceNotFound"
    kube.pvc = True
    reconcile(kube)
    assert kube.run["status"]["phase"] == "Running"


def test_gone_replaced_or_deleting_runs_end_the_loop():
    kube = FakeKube(None)
    assert reconcile(kube).done
    kube = FakeKube(make_run())
    kube.run["metadata"]["uid"] = "another"
    assert reconcile(kube).done and kube.calls == []
    kube = FakeKube(make_run())
    kube.run["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert reconcile(kube).done and kube.calls == []


def test_terminal_run_without_ttl_is_done_without_writes():
    run = make_run()
    run["status"] = {"phase": "Succeeded", "observedGeneration": 1, "completionTime": "2025-01-01T11:00:00Z"}
    kube = FakeKube(run)
    assert reconcile(kube).done and kube.calls == []


def test_ttl_deletes_the_run_when_due():
    run = make_run(ttlSecondsAfterFinished=60)
    run["status"] = {"phase": "Succeeded", "observedGeneration": 1, "completionTime": "2025-01-01T12:00:00Z"}
    kube = FakeKube(run)
    result = reconcile(kube, now=T0 + timedelta(seconds=10))
    assert not result.done and result.requeue_after == pytest.approx(50)
    result = reconcile(kube, now=T0 + timedelta(seconds=61))
    assert result.done and ("delete-run", "run-1") in kube.calls


def test_cancel_through_spec_status():
    kube = FakeKube(make_run(4, parallelism=2))
    reconcile(kube)
    finish_all(kube)
    reconcile(kube)
    assert len(kube.jobs) == 2
    kube.run["spec"]["status"] = "Cancelled"
    kube.run["metadata"]["generation"] = 2
    assert H.spec_changed(kube.run["metadata"], kube.run["status"])
    for _ in range(5):
        finish_all(kube)
        result = reconcile(kube)
        if result.done:
            break
    assert kube.run["status"]["phase"] == "Cancelled" and result.done
    assert kube.run["status"]["observedGeneration"] == 2
    assert not H.spec_changed(kube.run["metadata"], kube.run["status"])


def test_needs_loop_and_spec_changed():
    assert H.needs_loop({}, {})
    assert H.needs_loop({}, {"phase": "Running"})
    assert not H.needs_loop({}, {"phase": "Failed"})
    assert H.needs_loop({"ttlSecondsAfterFinished": 0}, {"phase": "Failed"})
    assert H.spec_changed({"generation": 2}, {"observedGeneration": 1})
    assert H.spec_changed({"generation": 1}, {})
    assert not H.spec_changed({"generation": 1}, {"observedGeneration": 1})


def test_create_errors_still_patch_and_requeue_soon():
    kube = FakeKube(make_run(2))

    async def failing_create(body):
        raise KubeError(403, "Forbidden", "exceeded quota")

    kube.create = failing_create
    events = []
    result = reconcile(kube, events=events)
    assert kube.run["status"]["phase"] == "Running"
    assert result.requeue_after == 10.0
    assert any(e[1] == "CreateFailed" for e in events)


def test_terminal_run_with_leftover_jobs_cleans_them_then_is_done():
    kube = FakeKube(make_run(2))
    reconcile(kube)
    finish_all(kube)
    reconcile(kube)
    leftover = sorted(kube.jobs)
    assert leftover
    kube.run["status"].update({"phase": "Cancelled", "completionTime": "2025-01-01T12:00:00Z"})
    kube.calls.clear()
    result = reconcile(kube)
    assert result.done
    assert sorted(n for c, n in kube.calls if c == "delete") == leftover


def test_the_pass_that_ends_a_run_sweeps_jobs_the_index_did_not_show():
    kube = FakeKube(make_run(2, parallelism=2))
    for _ in range(10):
        finish_all(kube)
        reconcile(kube)
        if "run-1-manifest" in kube.jobs:
            break
    finish_all(kube)
    observed = kube.observed()  # what the index shows
    stray = copy.deepcopy(kube.jobs["run-1-manifest"])
    stray["metadata"]["name"] = "run-1-00001-1"
    stray["metadata"]["labels"].update(
        {"app.kubernetes.io/component": "step", "mmif.dev/step-index": "1", "mmif.dev/item-index": "1"}
    )
    stray.pop("status")
    kube.jobs["run-1-00001-1"] = stray
    kube.calls.clear()
    result = asyncio.run(
        H.reconcile_run(
            kube, "ns", "run-1", "uid-1", observed, operator_image="img", now=T0, post_event=lambda *a: None
        )
    )
    assert result.done and kube.run["status"]["phase"] == "Succeeded"
    assert ("list", "run-1") in kube.calls and ("delete", "run-1-00001-1") in kube.calls
    assert kube.jobs == {}


def test_a_pass_creates_a_bounded_number_of_jobs_items_further_along_first():
    n = MAX_CREATES_PER_PASS * 2 + 10
    kube = FakeKube(make_run(n, parallelism=n))
    reconcile(kube)  # the prepare Job
    finish_all(kube)
    result = reconcile(kube)  # every item in flight; the first Jobs created
    created = [
        c[1] for c in kube.calls if c[0] == "create" and c[1] not in ("run-1-prepare", "run-1-items-uid1")
    ]
    assert len(created) == MAX_CREATES_PER_PASS and result.requeue_after == 0.0
    assert kube.run["status"]["steps"][0]["running"] == n  # all in flight, some Jobs still to come
    kube.finish(created[0])  # item 0 finishes step 0: its next Job comes before new items
    kube.calls.clear()
    result = reconcile(kube)
    created = [c[1] for c in kube.calls if c[0] == "create"]
    assert created[0] == "run-1-00000-1" and len(created) == MAX_CREATES_PER_PASS
    assert result.requeue_after == 0.0
    kube.calls.clear()
    result = reconcile(kube)  # the rest
    assert len([c for c in kube.calls if c[0] == "create"]) == n - 2 * MAX_CREATES_PER_PASS + 1
    assert result.requeue_after != 0.0
    assert len([j for j in kube.jobs if j.endswith("-0")]) == n - 1 and "run-1-00000-1" in kube.jobs


def test_recent_creates_are_skipped_until_the_index_shows_them():
    from mmif_operator.core.runtime.expectations import RecentCreates

    clock = [100.0]
    recent = RecentCreates(ttl=30, clock=lambda: clock[0])
    recent.note(["a", "b"])
    assert recent.pending([]) == {"a", "b"}
    assert recent.pending(["a"]) == {"b"} and recent.pending([]) == {"b"}  # seen once: forgotten
    clock[0] += 31
    assert recent.pending([]) == set() and len(recent) == 0  # expired: created again

    n = MAX_CREATES_PER_PASS + 10
    kube = FakeKube(make_run(n, parallelism=n))
    reconcile(kube)
    finish_all(kube)
    recent = RecentCreates()
    lagging_index = kube.observed()  # the index as it was before this pass's creates

    def pass_with(observed):
        kube.calls.clear()
        asyncio.run(
            H.reconcile_run(
                kube,
                "ns",
                "run-1",
                "uid-1",
                observed,
                operator_image="img",
                now=T0,
                post_event=lambda *a: None,
                recent=recent,
            )
        )
        return [c[1] for c in kube.calls if c[0] == "create"]

    first = pass_with(lagging_index)
    assert len(first) == MAX_CREATES_PER_PASS
    lagging_index = [j for j in kube.observed() if j.name not in first[:10]]  # 10 not indexed yet
    second = pass_with(lagging_index)
    assert not set(second) & set(first) and len(second) == 10  # only the rest, no 409s


class CountingKube(FakeKube):
    """FakeKube that counts reads of the run and answers a stale resourceVersion with 409."""

    def __init__(self, run):
        super().__init__(run)
        self.gets = 0

    async def get_custom(self, plural, ns, name):
        if plural == "pipelineruns":
            self.gets += 1
        return await super().get_custom(plural, ns, name)

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        if resource_version != self.run["metadata"]["resourceVersion"]:
            self.calls.append(("patch", "409"))
            raise KubeError(409, "Conflict", "the object has been modified")
        return copy.deepcopy(await super().patch_status(plural, ns, name, patch, resource_version))


def test_a_pass_reuses_the_run_its_last_patch_returned_and_a_stale_copy_only_costs_a_conflict():
    kube = CountingKube(make_run(2))

    def run_pass(known):
        return asyncio.run(
            H.reconcile_run(
                kube,
                "ns",
                "run-1",
                "uid-1",
                kube.observed(),
                operator_image="img",
                now=T0,
                post_event=lambda *a: None,
                known=known,
            )
        )

    first = run_pass(None)
    assert (
        kube.gets == 1
        and first.latest["metadata"]["resourceVersion"] == kube.run["metadata"]["resourceVersion"]
    )
    finish_all(kube)
    second = run_pass(first.latest)
    assert kube.gets == 1 and second.latest["status"]["phase"] == "Running"
    stale = copy.deepcopy(second.latest)
    kube.run["metadata"]["resourceVersion"] = "999"  # someone else wrote the run
    finish_all(kube)
    kube.calls.clear()
    third = run_pass(stale)
    assert ("patch", "409") in kube.calls and third.latest is None and third.requeue_after == 0.0
    assert not [c for c in kube.calls if c[0] == "delete"]  # nothing deleted on a stale plan
    run_pass(third.latest)  # read again, planned again
    assert kube.gets == 2 and not [j for j in kube.jobs.values() if j.get("status")]


def test_a_loop_deletes_recorded_jobs_beside_its_passes_and_awaits_them_when_the_run_ends():
    kube = FakeKube(make_run(2, parallelism=2))
    gate = asyncio.Event()

    async def scenario():
        deletes = H.BackgroundDeletes(lambda n: _gated_delete(kube, n, gate))
        recent = H.RecentCreates()

        async def run_pass():
            return await H.reconcile_run(
                kube,
                "ns",
                "run-1",
                "uid-1",
                kube.observed(),
                operator_image="img",
                now=T0,
                post_event=lambda *a: None,
                recent=recent,
                deletes=deletes,
            )

        await run_pass()  # prepare
        finish_all(kube)
        await run_pass()  # step 0 of both items
        finish_all(kube)
        kube.calls.clear()
        await run_pass()  # records step 0, creates step 1, deletes beside
        assert {c[1] for c in kube.calls if c[0] == "create"} == {"run-1-00000-1", "run-1-00001-1"}
        assert deletes.pending() >= {"run-1-00000-0", "run-1-00001-0"}
        assert "run-1-00000-0" in kube.jobs  # the pass returned before its deletes ended
        kube.calls.clear()
        await run_pass()  # a pass meanwhile deletes nothing twice
        assert not [c for c in kube.calls if c[0] in ("create", "delete")]
        gate.set()
        await deletes.drain()
        assert "run-1-00000-0" not in kube.jobs
        for _ in range(5):
            finish_all(kube)
            result = await run_pass()
            if result.done:
                break
        assert result.done and kube.run["status"]["phase"] == "Succeeded"
        assert kube.jobs == {} and len(deletes) == 0  # the last pass awaited every delete

    asyncio.run(scenario())


async def _gated_delete(kube, name, gate):
    await gate.wait()
    return await kube.delete_job("ns", name)


def test_progress_alone_waits_for_the_next_status_write_but_creates_do_not():
    kube = FakeKube(make_run(3, parallelism=3))

    def run_pass(wait):
        kube.calls.clear()
        return asyncio.run(
            H.reconcile_run(
                kube,
                "ns",
                "run-1",
                "uid-1",
                kube.observed(),
                operator_image="img",
                now=T0,
                post_event=lambda *a: None,
                progress_wait=wait,
            )
        )

    assert run_pass(0.5).patched  # a new run: its first status is not progress only
    finish_all(kube)  # the prepare Job
    assert run_pass(0.5).patched  # Pending -> Running: a phase change, written at once
    assert kube.run["status"]["phase"] == "Running"
    assert [c for c in kube.calls if c[0] == "create"]  # every item's first step
    before = copy.deepcopy(kube.run["status"])
    finish_all(kube)  # every first step done: progress only
    result = run_pass(0.5)
    assert not result.patched and kube.run["status"] == before
    assert {c[0] for c in kube.calls} == {"create"}  # next steps at once, nothing else
    assert 0 < result.requeue_after <= 0.5
    result = run_pass(0.0)  # the wait is over: the same plan, now written
    assert result.patched and [c for c in kube.calls if c[0] == "patch"]
    assert not [c for c in kube.calls if c[0] == "create"]  # nothing created twice
    assert [c for c in kube.calls if c[0] == "delete"]  # deleted once accounted for


def test_a_run_of_a_request_that_passes_wakes_its_siblings_and_is_planned_with_them():
    reviewed = {**PIPELINE, "review": {"required": True}}
    kube = FakeKube(make_run(1), pipeline=reviewed)
    kube.run["metadata"]["labels"] = {"mmif.dev/request": "req-1"}
    for _ in range(10):
        finish_all(kube)
        reconcile(kube)
        if kube.run["status"].get("phase") == "AwaitingReview":
            break
    assert kube.run["status"]["phase"] == "AwaitingReview"
    siblings = [
        {"metadata": {"name": "run-1"}, "status": copy.deepcopy(kube.run["status"])},
        {"metadata": {"name": "run-2"}, "status": {"phase": "AwaitingReview"}},
        {"metadata": {"name": "run-3"}, "status": {"phase": "Failed"}},
    ]
    listed: list[dict] = []

    async def list_custom(plural, ns, labels):
        listed.append(labels)
        return copy.deepcopy(siblings)

    kube.list_custom = list_custom
    kube.run["spec"]["review"] = {"decision": "Pass", "comment": "ok"}
    woken: list[str] = []
    result = asyncio.run(
        H.reconcile_run(
            kube, "ns", "run-1", "uid-1", kube.observed(), operator_image="img", now=T0,
            post_event=lambda *a: None, wake=woken.append,
        )
    )  # fmt: skip
    assert listed == [{"mmif.dev/request": "req-1"}], "one list of the request's runs"
    assert result.plan is not None and result.plan.phase == "Publishing"
    assert woken == ["run-2"], "only the siblings still awaiting review"
    assert "run-1-publish" in kube.jobs
    # Once a sibling passed first, this one (awaiting) is superseded.
    kube2 = FakeKube(make_run(1), pipeline=reviewed)
    kube2.run["metadata"]["labels"] = {"mmif.dev/request": "req-1"}
    kube2.run["status"] = copy.deepcopy(siblings[0]["status"])
    siblings[1]["status"] = {"phase": "Publishing", "review": {"decision": "Pass"}}
    kube2.list_custom = list_custom
    asyncio.run(
        H.reconcile_run(
            kube2, "ns", "run-1", "uid-1", [], operator_image="img", now=T0, post_event=lambda *a: None
        )
    )
    cond = next(c for c in kube2.run["status"]["conditions"] if c["type"] == "Succeeded")
    assert cond["reason"] == "Superseded" and "run-2" in cond["message"]


def test_a_pass_meeting_conflicts_is_blocked_and_both_projects_are_told():
    reviewed = {**PIPELINE, "review": {"required": True}}
    kube = FakeKube(make_run(1), pipeline=reviewed)
    for _ in range(10):
        finish_all(kube)
        reconcile(kube)
        if kube.run["status"].get("phase") == "AwaitingReview":
            break
    assert kube.run["status"]["phase"] == "AwaitingReview"
    parent = "sha256:" + "a" * 64
    # (Set here, past prepare: outside a project's namespace such a run would not start.)
    kube.run["spec"]["items"] = [{"name": "tape", "record": parent}]
    kube.run["spec"]["review"] = {"decision": "Pass", "comment": "ok"}
    snapshots: list[int] = []

    def record_runs():
        snapshots.append(1)
        return {"other": [{"run": "theirs", "records": [parent], "phase": "Running", "publishes": True}]}

    posted: list[tuple] = []
    result = asyncio.run(
        H.reconcile_run(
            kube, "ns", "run-1", "uid-1", kube.observed(), operator_image="img", now=T0,
            post_event=lambda obj, t, r, m: posted.append((obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"], r)),
            record_runs=record_runs,
        )
    )  # fmt: skip
    assert snapshots == [1], "the index is copied once, for a run awaiting review"
    assert result.plan is not None and result.plan.phase == "AwaitingReview"
    assert "run-1-publish" not in kube.jobs
    assert kube.run["status"]["conflicts"]["conflicts"][0]["run"] == "theirs"
    assert ("PipelineRun", "ns", "run-1", "ConflictsFound") in posted  # its row's Event
    assert ("PipelineRun", "other", "theirs", "Conflict") in posted  # the other party's run
    assert {(k, n) for k, _, n, r in posted if k == "Project"} == {("Project", "ns"), ("Project", "other")}


def _awaiting_from_record(name: str, parent: str) -> FakeKube:
    reviewed = {**PIPELINE, "review": {"required": True}}
    run = make_run(1)
    run["metadata"].update(name=name, uid=f"uid-{name}", creationTimestamp="2025-01-01T11:00:00Z")
    kube = FakeKube(run, pipeline=reviewed)
    for _ in range(10):
        finish_all(kube)
        asyncio.run(
            H.reconcile_run(kube, "ns", name, f"uid-{name}", kube.observed(), operator_image="img", now=T0, post_event=lambda *a: None)
        )  # fmt: skip
        if kube.run["status"].get("phase") == "AwaitingReview":
            break
    assert kube.run["status"]["phase"] == "AwaitingReview"
    kube.run["spec"]["items"] = [{"name": "tape", "record": parent}]
    kube.run["spec"]["review"] = {"decision": "Pass", "decidedAt": "2025-01-01T12:00:00Z"}
    return kube


def test_two_runs_of_one_project_passed_at_once_from_one_record_the_second_sees_the_first():
    parent = "sha256:" + "b" * 64
    H.RECENT_PUBLICATIONS._entries.clear()
    first, second = _awaiting_from_record("run-a", parent), _awaiting_from_record("run-b", parent)
    # The index still shows both awaiting review (the watch has not delivered run-a's patch yet).
    stale = {
        "ns": [
            {"run": n, "records": [parent], "phase": "AwaitingReview", "publishes": True}
            for n in ("run-a", "run-b")
        ]
    }

    def one(kube, name):
        return asyncio.run(
            H.reconcile_run(kube, "ns", name, f"uid-{name}", kube.observed(), operator_image="img", now=T0, post_event=lambda *a: None, record_runs=lambda: copy.deepcopy(stale))
        )  # fmt: skip

    assert one(first, "run-a").plan.phase == "Publishing"
    result = one(second, "run-b")
    assert result.plan.phase == "AwaitingReview"  # blocked: run-a publishes a newer version
    (found,) = second.run["status"]["conflicts"]["conflicts"]
    assert (found["kind"], found["run"], found["publishedAt"]) == (
        "NewerVersion",
        "run-a",
        "2025-01-01T12:00:00Z",
    )
    H.RECENT_PUBLICATIONS._entries.clear()
