"""Issue 10, cases 1, 3, 4 and 6, the pure decisions and the handlers on fake clusters:

- ownership: a child found by name is the operator's only with the expected owner uid
  (core/ownership.py, Kube.create, loop.create_jobs, the planners);
- names: injective over adversarial run, AnalysisJob, pipeline and step names (core/names.py);
- the NetworkPolicy of a Service-mode app (kinds/pipeline/children.py);
- drift of the app objects from what the operator sets (kinds/pipeline/planning.drift);
- the url an app may not be called at from another namespace (admission/urls.py).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import itertools
import json
from datetime import UTC, datetime

import pytest

from mmif_operator.admission import urls as U
from mmif_operator.admission import validation as HV
from mmif_operator.core import itemstates, names
from mmif_operator.core import labels as L
from mmif_operator.core import ownership as O
from mmif_operator.core.itemstates import ItemPhase, ItemState
from mmif_operator.core.kube import ops
from mmif_operator.core.kube.ops import KubeError, NameConflict
from mmif_operator.core.observed import JobState, ObservedJob, refused
from mmif_operator.core.runtime import loop
from mmif_operator.kinds.analysisjob import handler as HA
from mmif_operator.kinds.analysisjob import planning as RA
from mmif_operator.kinds.analysisjob import triggers
from mmif_operator.kinds.pipeline import children as services
from mmif_operator.kinds.pipeline import handler as HP
from mmif_operator.kinds.pipeline import planning as RP
from mmif_operator.kinds.pipeline.model import PipelineSpec
from mmif_operator.kinds.pipelinerun import handler as HR
from mmif_operator.kinds.pipelinerun import planning as R
from tests.unit import typed as T

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def owner(kind="PipelineRun", name="run-1", uid="uid-1"):
    return {"apiVersion": "mmif.dev/v1alpha1", "kind": kind, "name": name, "uid": uid, "controller": True}


def obj(name="run-1-00000-0", refs=(), **meta):
    return {
        "kind": "Job",
        "metadata": {"name": name, "namespace": "ns", "ownerReferences": list(refs), **meta},
    }


# --- ownership: the one rule ------------------------------------------------------------------


def test_ours_only_with_the_expected_owner_uid():
    wanted = obj(refs=[owner()])
    assert O.classify(obj(refs=[owner()]), wanted) is O.Ownership.OURS
    # Someone's Job of the same name: no owner, another owner, or ours only as a non-controller.
    assert O.classify(obj(), wanted) is O.Ownership.FOREIGN
    assert O.classify(obj(refs=[owner(name="bob-run", uid="uid-b")]), wanted) is O.Ownership.FOREIGN
    assert O.classify(obj(refs=[{**owner(), "controller": False}]), wanted) is O.Ownership.FOREIGN
    assert O.classify(obj(refs=[owner(kind="AnalysisJob", uid="uid-x")]), wanted) is O.Ownership.FOREIGN
    # An earlier run of the same name (being collected), or anything being deleted: wait.
    assert O.classify(obj(refs=[owner(uid="old-uid")]), wanted) is O.Ownership.RELEASING
    assert O.classify(obj(deletionTimestamp="2026-12-01T12:00:00Z"), wanted) is O.Ownership.RELEASING
    assert "has no controlling owner" in O.conflict_message("Job", "j", obj())
    assert "PipelineRun bob-run (uid uid-b)" in O.conflict_message(
        "Job", "j", obj(refs=[owner(name="bob-run", uid="uid-b")])
    )


class _Response:
    def __init__(self, status, body):
        self.status, self._body, self.reason = status, json.dumps(body).encode(), ""

    async def read(self):
        return self._body

    def release(self):
        pass


class _BatchApi:
    """Just the calls Kube makes on BatchV1Api, over a dict of Jobs."""

    def __init__(self, jobs):
        self.jobs = jobs
        self.deletes = []

    async def _answer(self, status, body):
        return _Response(status, body)

    def create_namespaced_job(self, ns, body, **_):
        name = body["metadata"]["name"]
        if name in self.jobs:
            return self._answer(
                409, {"reason": "AlreadyExists", "message": f"jobs.batch {name!r} already exists"}
            )
        if body.get("invalid"):
            return self._answer(
                422, {"reason": "Invalid", "message": "spec.template...mountPath: must be unique"}
            )
        self.jobs[name] = body
        return self._answer(201, body)

    def read_namespaced_job(self, name, ns, **_):
        if name not in self.jobs:
            return self._answer(404, {"reason": "NotFound"})
        return self._answer(200, self.jobs[name])

    def delete_namespaced_job(self, name, ns, body=None, **_):
        self.deletes.append((name, (body or {}).get("preconditions")))
        job = self.jobs.get(name)
        if job is None:
            return self._answer(404, {"reason": "NotFound"})
        want = ((body or {}).get("preconditions") or {}).get("uid")
        if want and job["metadata"].get("uid") != want:
            return self._answer(409, {"reason": "Conflict", "message": "Precondition failed: UID"})
        del self.jobs[name]
        return self._answer(200, {})


def fake_kube(jobs):
    kube = ops.Kube.__new__(ops.Kube)
    kube.timeout = 1.0
    kube.batch = _BatchApi(jobs)
    kube.apps = kube.core = kube.networking = None
    return kube


def test_a_409_is_success_only_for_our_own_job():
    mine = obj("mine", refs=[owner()])
    kube = fake_kube({"mine": mine, "bobs": obj("bobs"), "old": obj("old", refs=[owner(uid="old-uid")])})
    assert asyncio.run(kube.create(obj("new", refs=[owner()]))) is True
    assert asyncio.run(kube.create(copy.deepcopy(mine))) is False  # ours: exists, success
    with pytest.raises(NameConflict) as err:
        asyncio.run(kube.create(obj("bobs", refs=[owner()])))
    assert err.value.message == "Job bobs already exists and is not ours: it has no controlling owner"
    with pytest.raises(KubeError) as err:  # an earlier same-named run's
        asyncio.run(kube.create(obj("old", refs=[owner()])))
    assert err.value.conflict and not isinstance(err.value, NameConflict)
    with pytest.raises(KubeError) as err:
        asyncio.run(kube.create({**obj("bad", refs=[owner()]), "invalid": True}))
    assert err.value.invalid and "mountPath" in err.value.message


def test_a_delete_with_a_uid_spares_another_object_of_that_name():
    kube = fake_kube({"j": obj("j", uid="bobs-uid")})
    assert asyncio.run(kube.delete_job("ns", "j", uid="our-uid")) is False
    assert "j" in kube.batch.jobs and kube.batch.deletes == [("j", {"uid": "our-uid"})]
    assert asyncio.run(kube.delete_job("ns", "j", uid="bobs-uid")) is True


# --- refused creates: failed with the reason, never deleted, never counted ---------------------

PIPELINE = {"steps": [{"name": "asr", "image": "asr:1"}, {"name": "ner", "image": "ner:1"}]}


def make_run(n=2):
    return {
        "metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "pipelineRef": {"name": "pipe"},
            "workspace": {"claimName": "media"},
            "items": [{"documents": [{"location": f"v{i}.mp4", "mimeType": "video/mp4"}]} for i in range(n)],
            "parallelism": n,
        },
        "status": {},
    }


def plan(run, jobs, **kw):
    return T.plan_run(copy.deepcopy(run), PIPELINE, jobs, T0, operator_image="img", **kw)


def started(n=2):
    """A run whose prepare Job reported `n` items: its first step Jobs are planned."""
    run = make_run(n)
    p = plan(run, [])
    run["status"].update(p.status_patch)
    prep = dataclasses.replace(ObservedJob.from_job(p.create[0]), state=JobState.SUCCEEDED)
    p = plan(run, [prep], termination_messages={prep.name: {"itemCount": n}})
    run["status"].update(p.status_patch)
    return run, p.create


def test_create_jobs_turns_conflicts_and_invalid_jobs_into_refused_jobs():
    run, bodies = started(2)

    class Kube:
        async def create(self, body):
            name = body["metadata"]["name"]
            if name.endswith("-00000-0"):
                raise NameConflict("Job", name, obj(name))
            raise KubeError(
                422, "Invalid", 'volumeMounts[1].mountPath: Invalid value: "/tmp": must be unique'
            )

    events = []
    out = asyncio.run(loop.create_jobs(Kube(), bodies, run, "run ns/run-1", lambda *e: events.append(e)))
    assert out.created == [] and out.failed is False and events == []
    by = {j.name: j for j in out.refused}
    conflict, invalid = by["run-1-00000-0"], by["run-1-00001-0"]
    assert (conflict.state, conflict.reason, conflict.exists, conflict.item, conflict.step) == (
        JobState.FAILED,
        "NameConflict",
        False,
        0,
        0,
    )
    assert "has no controlling owner" in conflict.message
    assert (
        invalid.reason == "CreateFailed" and "/tmp" in invalid.message and "run-1-00001-0" in invalid.message
    )


def test_a_refused_step_job_fails_its_item_and_is_never_deleted():
    run, bodies = started(2)
    body = next(b for b in bodies if b["metadata"]["name"] == "run-1-00000-0")
    conflict = refused(
        body, "NameConflict", "Job run-1-00000-0 already exists and is not ours: it has no controlling owner"
    )
    mine = ObservedJob.from_job(next(b for b in bodies if b is not body))
    p = plan(run, [conflict, mine])
    states = itemstates.decode(p.status["itemStates"])
    assert states[0] == ItemState(0, ItemPhase.FAILED) and states[1] == ItemState(0, ItemPhase.RUNNING)
    assert p.status["failures"][0]["reason"] == "NameConflict"
    assert "not ours" in p.status["failures"][0]["message"]
    assert "run-1-00000-0" not in p.delete and not p.create  # not deleted, not created again
    assert R.termination_messages_needed(run, [conflict]) == []  # no pod of ours to read
    assert any(e.reason == "StepFailed" and "NameConflict" in e.message for e in p.events)


def test_a_job_of_the_runs_name_and_labels_without_its_uid_is_not_counted():
    run, bodies = started(1)
    forged = copy.deepcopy(bodies[0])
    forged["metadata"]["ownerReferences"] = []  # bob's copy, no owner
    forged["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    p = plan(run, [ObservedJob.from_job(forged)])
    assert itemstates.decode(p.status["itemStates"])[0] == ItemState(0, ItemPhase.RUNNING)
    assert p.delete == [] and [b["metadata"]["name"] for b in p.create] == ["run-1-00000-0"]
    assert R.termination_messages_needed(run, [ObservedJob.from_job(forged)]) == []


@pytest.mark.parametrize(
    "reason,phase_reason", [("NameConflict", "NameConflict"), ("CreateFailed", "CreateFailed")]
)
def test_a_refused_prepare_job_fails_the_run_with_the_reason(reason, phase_reason):
    run = make_run()
    p = plan(run, [])
    run["status"].update(p.status_patch)
    p = plan(run, [refused(p.create[0], reason, "Job run-1-prepare: why")])
    cond = next(c for c in p.status["conditions"] if c["type"] == "Succeeded")
    assert p.phase == "Failed" and (cond["status"], cond["reason"]) == ("False", phase_reason)
    assert cond["message"] == "the prepare Job could not be created: Job run-1-prepare: why"
    assert p.delete == []


def test_a_refused_manifest_job_fails_the_run_and_is_not_deleted():
    run, bodies = started(1)
    job = dataclasses.replace(ObservedJob.from_job(bodies[0]), state=JobState.SUCCEEDED)
    p = plan(run, [job])
    run["status"].update(p.status_patch)
    job2 = dataclasses.replace(ObservedJob.from_job(p.create[0]), state=JobState.SUCCEEDED)
    p = plan(run, [job2])
    run["status"].update(p.status_patch)
    manifest = next(b for b in p.create if b["metadata"]["name"] == "run-1-manifest")
    p = plan(run, [refused(manifest, "NameConflict", "Job run-1-manifest already exists and is not ours")])
    cond = next(c for c in p.status["conditions"] if c["type"] == "Succeeded")
    assert p.phase == "Failed" and cond["reason"] == "NameConflict" and "run-1-manifest" in cond["message"]
    assert "run-1-manifest" not in p.delete


def test_refusals_stand_in_only_while_no_job_of_ours_has_the_name():
    run, bodies = started(1)
    memory = loop.Refusals()
    assert memory.add([refused(bodies[0], "NameConflict", "x")]) == 1
    assert memory.add([refused(bodies[0], "NameConflict", "x")]) == 0
    foreign = dataclasses.replace(ObservedJob.from_job(bodies[0]), owner_uid=None, uid="bobs")
    assert [j.exists for j in memory.merged([foreign], "uid-1")] == [True, False]
    ours = dataclasses.replace(ObservedJob.from_job(bodies[0]), uid="ours")
    assert memory.merged([ours], "uid-1") == [ours]


class RunKube:
    """Enough of Kube for reconcile_run: Bob holds the name of item 0's first Job."""

    def __init__(self, run):
        self.run = run
        self.jobs: dict[str, dict] = {}
        self.config_maps: dict[str, dict] = {}
        self.calls: list[tuple] = []

    async def get_custom(self, plural, ns, name):
        if plural == "pipelineruns":
            return copy.deepcopy(self.run)
        return {
            "metadata": {"name": name, "generation": 1},
            "spec": copy.deepcopy(PIPELINE),
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "NoServiceSteps", "observedGeneration": 1}
                ],
            },
        }

    async def read_pvc(self, ns, name):
        return {}

    async def job_termination_message(self, ns, name, uid=None):
        self.calls.append(("tm", name))
        return None

    async def create(self, body):
        name = body["metadata"]["name"]
        self.calls.append(("create", name))
        if name == "run-1-00000-0":
            raise NameConflict("Job", name, obj(name))
        (self.config_maps if body["kind"] == "ConfigMap" else self.jobs)[name] = copy.deepcopy(body)
        return True

    async def get(self, kind, ns, name):
        assert kind == "ConfigMap"
        return copy.deepcopy(self.config_maps.get(name))

    async def delete(self, kind, ns, name, uid=None):
        assert kind == "ConfigMap"
        return self.config_maps.pop(name, None) is not None

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        self.run["status"].update(json.loads(json.dumps(patch)))
        return self.run

    async def delete_job(self, ns, name, uid=None):
        self.calls.append(("delete", name))
        return self.jobs.pop(name, None) is not None

    async def list_jobs(self, ns, labels):
        return list(self.jobs.values())

    def observed(self):
        return [ObservedJob.from_job(j) for j in self.jobs.values()]


def test_a_run_pass_fails_the_item_whose_job_name_someone_holds_and_leaves_it_alone():
    run = make_run(2)
    run["metadata"]["resourceVersion"] = "1"
    kube = RunKube(run)
    memory = loop.Refusals()
    events = []

    def post(o, t, r, m):
        events.append((t, r, m))

    for _ in range(6):
        result = asyncio.run(
            HR.reconcile_run(
                kube,
                "ns",
                "run-1",
                "uid-1",
                kube.observed(),
                operator_image="img",
                now=T0,
                post_event=post,
                refusals=memory,
            )
        )
        for job in kube.jobs.values():  # everything of ours succeeds at once
            job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
        if result.done:
            break
    st = kube.run["status"]
    assert st["phase"] == "Failed" and st["itemsFailed"] == 1 and st["itemsSucceeded"] == 1
    assert st["failures"][0]["reason"] == "NameConflict" and st["failures"][0]["index"] == 0
    assert kube.calls.count(("create", "run-1-00000-0")) == 1  # refused once, not retried
    assert ("delete", "run-1-00000-0") not in kube.calls and ("tm", "run-1-00000-0") not in kube.calls
    assert any(r == "StepFailed" and "NameConflict" in m for _, r, m in events)


def test_an_analysis_item_whose_job_is_refused_fails_and_a_refused_manifest_fails_the_analysis():
    aj = {
        "metadata": {"name": "run-1-seg", "namespace": "a1", "uid": "aj-uid", "generation": 1},
        "spec": {"runRef": {"name": "run-1"}, "trigger": "Live", "parallelism": 4, "app": {"image": "t:1"}},
        "status": {},
    }
    source = {
        "metadata": {"name": "run-1", "namespace": "a1", "uid": "run-uid"},
        "spec": {"workspace": {"claimName": "media"}},
        "status": {
            "phase": "Succeeded",
            "itemCount": 1,
            "outputPath": "/data/mmif-runs/run-1",
            "itemStates": itemstates.encode([ItemState(1, ItemPhase.SUCCEEDED)]),
        },
    }
    p = T.plan_analysis(aj, source, [], T0, operator_image="img")
    aj["status"] = p.status
    conflict = refused(p.create[0], "NameConflict", "Job run-1-seg-a00000 already exists and is not ours")
    p = T.plan_analysis(aj, source, [conflict], T0, operator_image="img")
    assert p.status["failures"][0]["reason"] == "NameConflict" and conflict.name not in p.delete
    assert RA.needs_termination_messages([conflict]) == []
    aj["status"] = p.status
    manifest = next(b for b in p.create if b["metadata"]["name"] == "run-1-seg-amanifest")
    p = T.plan_analysis(
        aj,
        source,
        [conflict, refused(manifest, "CreateFailed", "the API server refused it")],
        T0,
        operator_image="img",
    )
    cond = next(c for c in p.status["conditions"] if c["type"] == "Succeeded")
    assert p.phase == "Failed" and cond["reason"] == "CreateFailed" and "refused it" in cond["message"]
    assert p.delete == []


# --- case 4: an AnalysisJob squatting `<run>-<analysis>` ----------------------------------------

ALICE = {"username": "alice", "groups": ["system:authenticated"]}


def analysed_run():
    return {
        "metadata": {"name": "alice-run", "namespace": "v", "uid": "run-uid", "generation": 1},
        "spec": {"pipelineRef": {"name": "p"}, "requester": ALICE},
        "status": {
            "pipelineSpec": {
                "steps": [{"name": "t", "image": "t:1"}],
                "analyses": [
                    {"name": "seg", "app": {"image": "s:1"}},
                    {"name": "ner", "app": {"image": "n:1"}},
                ],
            }
        },
    }


class TriggerKube:
    def __init__(self, existing):
        self.existing = existing  # name -> AnalysisJob already there
        self.created, self.patches = [], []

    async def subject_access_review(self, body):
        return {"status": {"allowed": True}}

    async def create_custom(self, plural, body):
        name = body["metadata"]["name"]
        have = self.existing.get(name)
        if have is None:
            self.created.append(name)
            return True
        if O.classify(have, body) is O.Ownership.OURS:
            return False
        raise NameConflict("AnalysisJob", name, have)

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        self.patches.append(patch)


def test_an_analysis_job_the_run_does_not_own_is_recorded_name_conflict_not_created():
    bobs = {
        "metadata": {"name": "alice-run-seg", "ownerReferences": []},
        "spec": {"requester": {"username": "bob"}},
    }
    kube = TriggerKube({"alice-run-seg": bobs})
    events = []
    decisions = asyncio.run(
        HA.trigger_analyses(
            kube, analysed_run(), now=T0, post_event=lambda o, t, r, m: events.append((t, r, m))
        )
    )
    assert [d.recorded_state for d in decisions] == ["NameConflict", "Created"]
    assert kube.created == ["alice-run-ner"]
    entries = {e["name"]: e for e in kube.patches[0]["analyses"]}
    assert entries["seg"]["state"] == "NameConflict" and "analysisJob" not in entries["seg"]
    assert (
        "AnalysisJob alice-run-seg already exists and is not ours: it has no controlling owner"
        in entries["seg"]["message"]
    )
    assert entries["ner"] == {"name": "ner", "state": "Created", "analysisJob": "alice-run-ner"}
    cond = next(c for c in kube.patches[0]["conditions"] if c["type"] == "AnalysesCreated")
    assert (cond["status"], cond["reason"]) == ("False", "NameConflict") and "seg" in cond["message"]
    assert ("Warning", "NameConflict") in [e[:2] for e in events]
    assert ("Normal", "AnalysisCreated") in [e[:2] for e in events]
    assert bobs == {
        "metadata": {"name": "alice-run-seg", "ownerReferences": []},
        "spec": {"requester": {"username": "bob"}},
    }  # untouched


def test_the_runs_own_analysis_job_found_again_is_created():
    run = analysed_run()
    mine = triggers.analysis_job(run, run["status"]["pipelineSpec"]["analyses"][0])
    kube = TriggerKube({"alice-run-seg": mine})
    decisions = asyncio.run(HA.trigger_analyses(kube, run, now=T0, post_event=lambda *a: None))
    assert [d.recorded_state for d in decisions] == ["Created", "Created"]
    cond = next(c for c in kube.patches[0]["conditions"] if c["type"] == "AnalysesCreated")
    assert (cond["status"], cond["reason"]) == ("True", "Created")


# --- case 3: names ----------------------------------------------------------------------------


def _run_job_names(
    run: str, items=(0, 1, 12, 99999, 100000, 123456), steps=(0, 1, 9, 19)
) -> dict[str, tuple]:
    out = {names.prepare_job_name(run): ("prepare", run), names.manifest_job_name(run): ("manifest", run)}
    for i, k in itertools.product(items, steps):
        out[names.step_job_name(run, i, k)] = ("step", run, i, k)
    return out


def _analysis_job_names(aj: str, items=(0, 1, 12, 99999, 100000, 123456)) -> dict[str, tuple]:
    out = {names.analysis_manifest_job_name(aj): ("amanifest", aj)}
    for i in items:
        out[names.analysis_job_name(aj, i)] = ("analyze", aj, i)
    return out


LONG = "a" * 60 + "-one"


def adversarial_owner_names() -> list[str]:
    """Run / AnalysisJob names built to collide with each other's children under a naive scheme."""
    base = [
        "r",
        "r-1",
        "r-00001",
        "r-00001-0",
        "r-1-0",
        "x-prepare",
        "x",
        "x-manifest",
        "x-a00001",
        "x-amanifest",
        "q-a00000",
        "deadbeef",
        "a",
        "1",
        "a-b",
        "a.b",
        "a--b",
        "a-b-prepare",
        LONG,
        "a" * 60 + "-two",
        "a" * 253,
        "a" * 252 + "b",
        "my.run.with.dots",
        "my-run-with-dots",
        "batch-20250101",
        "r" * 63,
        "r" * 54,
        "r" * 55,
    ]
    # The attack on "cut and hash": name a run exactly like another's hashed form.
    for victim in ("a.b", LONG, "a" * 253, "my.run.with.dots", "a--b"):
        hashed = names.prepare_job_name(victim)[: -len("-prepare")]
        base += [hashed, hashed.replace("--", "-")]
    return sorted(set(base))


def test_child_job_names_are_injective_over_adversarial_names():
    """Every Job name of every run and every AnalysisJob of one namespace (a run and an
    AnalysisJob may share a name) is distinct, a DNS-1123 label of at most 63 characters."""
    seen: dict[str, tuple] = {}
    for owner_name in adversarial_owner_names():
        for child, who in [*_run_job_names(owner_name).items(), *_analysis_job_names(owner_name).items()]:
            assert names.is_dns1123_label(child), child
            assert seen.setdefault(child, who) == who, f"{child}: {seen[child]} and {who}"
    assert len(seen) > 1000


def test_the_hashed_form_never_equals_an_as_is_name():
    assert "--" not in names.step_job_name("r-1", 0, 0)
    for victim in ("a.b", LONG, "a--b"):
        assert "--" in names.prepare_job_name(victim)
        forged = names.prepare_job_name(victim)[: -len("-prepare")]
        assert names.prepare_job_name(forged) != names.prepare_job_name(victim)


def test_app_names_are_injective_over_adversarial_pipeline_and_step_names():
    pairs = [
        ("col", "a-b"),
        ("col-a", "b"),
        ("col-a-b", "x"),
        ("col", "a-b-x"),
        ("a.b", "c"),
        ("a-b", "c"),
        ("a", "b-c"),
        ("1pipe", "asr"),
        ("app-1pipe", "asr"),
        ("p" * 253, "s" * 30),
        ("p" * 252 + "q", "s" * 30),
        ("p" * 253, "s" * 29 + "t"),
        ("x--y", "z"),
        ("x-y", "z"),
        ("x", "y--z"),
    ]
    pairs += [(f"pl{i}", f"st{j}") for i in range(20) for j in range(20)]
    seen: dict[str, tuple] = {}
    for pair in pairs:
        name = names.app_service_name(*pair)
        assert names.is_dns1035_label(name), name
        assert seen.setdefault(name, pair) == pair, f"{name}: {seen[name]} and {pair}"
        # The pods' selector is the name too: no two steps select each other's pods.
        assert L.app_service_selector(*pair)[L.APP] == name
    assert names.app_service_name("col", "a-b") != names.app_service_name("col-a", "b")


# --- case 1: the NetworkPolicy ----------------------------------------------------------------


def test_the_app_network_policy_admits_only_this_namespaces_step_and_analysis_pods():
    ctx = services.PipelineContext(name="col", namespace="b", uid="p-uid")
    step = {"name": "a-b", "image": "t:1", "mode": "Service", "port": 8080}
    pipeline_spec = PipelineSpec.from_obj({"workspace": {"claimName": "media"}, "steps": [step]})
    dep = services.app_deployment(ctx, pipeline_spec, pipeline_spec.steps[0])
    policy = services.app_network_policy(ctx, pipeline_spec.steps[0])
    assert policy["kind"] == "NetworkPolicy" and policy["metadata"]["name"] == dep["metadata"]["name"]
    assert policy["metadata"]["ownerReferences"] == dep["metadata"]["ownerReferences"]
    assert policy["metadata"]["labels"] == dep["metadata"]["labels"]
    spec = policy["spec"]
    # It selects exactly the app's pods (the Deployment's selector), for ingress.
    assert spec["podSelector"] == {"matchLabels": dep["spec"]["selector"]["matchLabels"]}
    assert spec["podSelector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}  # no namespaceSelector: this namespace only
    sel = peer["podSelector"]
    assert sel["matchLabels"] == {L.MANAGED_BY: L.MANAGER}
    assert sel["matchExpressions"] == [{"key": L.COMPONENT, "operator": "In", "values": ["step", "analyze"]}]
    # The step pods of runs carry those labels.
    from mmif_operator.kinds.pipelinerun import children as jobs

    run_ctx = jobs.RunContext(name="r", namespace="b", uid="u", pipeline="col", claim_name="media")
    pod_labels = jobs.step_job(run_ctx, {}, pipeline_spec, 0, 0, "img")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert pod_labels[L.MANAGED_BY] == L.MANAGER and pod_labels[L.COMPONENT] in ["step", "analyze"]


# --- case 6: drift ------------------------------------------------------------------------------


def _desired():
    pipeline = {
        "metadata": {"name": "pipe", "namespace": "ns", "uid": "p-uid"},
        "spec": {
            "workspace": {"claimName": "media"},
            "steps": [
                {
                    "name": "ner",
                    "image": "ner:1",
                    "mode": "Service",
                    "replicas": 2,
                    "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}},
                }
            ],
        },
    }
    return [HP.with_hash(o) for o in RP.desired_app_objects(RP.parse_pipeline(pipeline))]


def _live(desired):
    """As the API server returns it: defaults added, quantities canonical, status."""
    live = copy.deepcopy(desired)
    live["metadata"].update(uid="x", resourceVersion="9", managedFields=[{}])
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    if live["kind"] == "Deployment":
        pod = live["spec"]["template"]["spec"]
        pod.update(dnsPolicy="ClusterFirst", schedulerName="default-scheduler")
        c = pod["containers"][0]
        c.update(terminationMessagePath="/dev/termination-log", imagePullPolicy="IfNotPresent")
        if "resources" in c:
            c["resources"]["requests"]["cpu"] = "500m"
        c["readinessProbe"].update(timeoutSeconds=1, successThreshold=1, failureThreshold=3)
        live["spec"].update(revisionHistoryLimit=10, progressDeadlineSeconds=600)
        live["status"] = {"replicas": 2, "availableReplicas": 2}
    if live["kind"] == "Service":
        live["spec"].update(clusterIP="10.96.0.9", clusterIPs=["10.96.0.9"], sessionAffinity="None")
    return live


def test_no_drift_when_only_defaults_and_canonical_quantities_differ():
    for desired in _desired():
        assert RP.drift(desired, _live(desired)) == [], desired["kind"]


def test_drift_is_every_field_the_operator_sets_changed_by_hand():
    dep, svc, policy = _desired()
    scaled = _live(dep)
    scaled["spec"]["replicas"] = 0
    assert RP.drift(dep, scaled) == [".spec.replicas"]
    image = _live(dep)
    image["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    assert RP.drift(dep, image) == [".spec.template.spec.containers[0].image"]
    unmounted = _live(dep)
    unmounted["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = False
    assert RP.drift(dep, unmounted) == [".spec.template.spec.containers[0].volumeMounts[0].readOnly"]
    selector = _live(svc)
    selector["spec"]["selector"] = {"app": "other"}
    assert RP.drift(svc, selector) and all(p.startswith(".spec.selector") for p in RP.drift(svc, selector))
    ports = _live(svc)
    ports["spec"]["ports"][0]["port"] = 80
    assert RP.drift(svc, ports) == [".spec.ports[0].port"]
    opened = _live(policy)
    opened["spec"]["ingress"] = [{}]
    assert RP.drift(policy, opened)
    relabelled = _live(dep)
    del relabelled["metadata"]["labels"][L.PIPELINE]
    assert RP.drift(dep, relabelled) == [f".metadata.labels.{L.PIPELINE}"]
    changed_spec = copy.deepcopy(dep)
    changed_spec["metadata"]["annotations"][HP.HASH_ANNOTATION] = "new"
    assert RP.drift(changed_spec, _live(dep)) == [f".metadata.annotations.{HP.HASH_ANNOTATION}"]


class PipelineKube:
    def __init__(self, pipeline, objects=None):
        self.pipeline, self.objects, self.calls = pipeline, dict(objects or {}), []

    async def get_custom(self, plural, ns, name):
        return copy.deepcopy(self.pipeline)

    async def list(self, kind, ns, labels):
        return [] if kind == "Pod" else [copy.deepcopy(o) for (k, _), o in self.objects.items() if k == kind]

    async def create(self, body):
        key = (body["kind"], body["metadata"]["name"])
        self.calls.append(("create", key[0]))
        have = self.objects.get(key)
        if have is None:
            self.objects[key] = _live(body)
            return True
        verdict = O.classify(have, body)
        if verdict is O.Ownership.FOREIGN:
            raise NameConflict(key[0], key[1], have)
        if verdict is O.Ownership.RELEASING:
            raise KubeError(409, "AlreadyExists", "being deleted")
        return False

    async def apply(self, body):
        key = (body["kind"], body["metadata"]["name"])
        self.calls.append(("apply", key[0]))
        self.objects[key] = _live(body)
        return self.objects[key]

    async def delete(self, kind, ns, name, uid=None):
        self.calls.append(("delete", kind))
        return self.objects.pop((kind, name), None) is not None

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        self.pipeline["status"] = copy.deepcopy(patch)
        return self.pipeline


def service_pipeline():
    return {
        "metadata": {
            "name": "pipe",
            "namespace": "ns",
            "uid": "p-uid",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {
            "workspace": {"claimName": "media"},
            "steps": [{"name": "ner", "image": "ner:1", "mode": "Service", "replicas": 2}],
        },
    }


def reconcile_pipeline(kube, events=None):
    post = (lambda o, t, r, m: events.append((t, r, m))) if events is not None else (lambda *a: None)
    return asyncio.run(HP.reconcile_pipeline(kube, "ns", "pipe", "p-uid", now=T0, post_event=post))


def test_a_deployment_scaled_to_zero_by_hand_is_scaled_back():
    kube = PipelineKube(service_pipeline())
    reconcile_pipeline(kube)
    name = names.app_service_name("pipe", "ner")
    kube.calls.clear()
    reconcile_pipeline(kube)
    assert kube.calls == []  # as desired: no write
    kube.objects[("Deployment", name)]["spec"]["replicas"] = 0  # kubectl scale --replicas=0
    reconcile_pipeline(kube)
    assert kube.calls == [("apply", "Deployment")]
    assert kube.objects[("Deployment", name)]["spec"]["replicas"] == 2
    del kube.objects[("NetworkPolicy", name)]  # kubectl delete networkpolicy
    kube.calls.clear()
    reconcile_pipeline(kube)
    assert kube.calls == [("create", "NetworkPolicy")]


def test_a_squatted_app_name_makes_the_step_not_ready_with_name_conflict_once():
    name = names.app_service_name("pipe", "ner")
    squatter = {
        "kind": "Service",
        "metadata": {"name": name, "namespace": "ns", "ownerReferences": []},
        "spec": {"selector": {"app": "bob"}},
    }
    kube = PipelineKube(service_pipeline(), {("Service", name): squatter})
    events = []
    result = reconcile_pipeline(kube, events)
    cond = kube.pipeline["status"]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "NameConflict")
    assert (
        f"step ner: Service {name} already exists and is not ours: it has no controlling owner"
        in cond["message"]
    )
    assert kube.pipeline["status"]["steps"][0]["ready"] is False
    assert kube.objects[("Service", name)] == squatter and ("apply", "Service") not in kube.calls
    assert result.requeue_after == HP.NOT_READY_REQUEUE_SECONDS
    # Even once the Deployment is available, the step stays not ready; the Event is not repeated.
    kube.objects[("Deployment", name)]["status"] = {"availableReplicas": 2, "readyReplicas": 2}
    reconcile_pipeline(kube, events)
    assert kube.pipeline["status"]["conditions"][0]["reason"] == "NameConflict"
    assert [e[1] for e in events].count("NameConflict") == 1
    # The squatter leaves: the Service is created, the step becomes ready.
    del kube.objects[("Service", name)]
    reconcile_pipeline(kube, events)
    assert kube.pipeline["status"]["conditions"][0]["status"] == "True"


def test_an_earlier_same_named_pipelines_object_is_waited_for_not_a_conflict():
    name = names.app_service_name("pipe", "ner")
    old = {
        "kind": "Service",
        "metadata": {"name": name, "ownerReferences": [owner("Pipeline", "pipe", "old")]},
    }
    kube = PipelineKube(service_pipeline(), {("Service", name): old})
    result = reconcile_pipeline(kube)
    assert kube.pipeline["status"]["conditions"][0]["reason"] != "NameConflict"
    assert result.requeue_after == HP.NOT_READY_REQUEUE_SECONDS and kube.objects[("Service", name)] == old


# --- case 1: the url check --------------------------------------------------------------------

APP_B = U.AppService("b", "col-a-b--7fa0514a", ("10.96.0.12",))
APP_A = U.AppService("a", "mine--12345678", ("10.96.0.13",))


def refused_for(url, namespace="a", kind="Pipeline"):
    spec = (
        {"steps": [{"name": "x", "image": "i"}, {"name": "s", "mode": "Service", "url": url}]}
        if kind == "Pipeline"
        else {"app": {"mode": "Service", "url": url}}
    )
    found = U.targets(kind, spec, namespace)
    return next((w for w in (U.refusal(t, namespace, [APP_A, APP_B]) for t in found) if w), None)


@pytest.mark.parametrize(
    "url",
    [
        "http://col-a-b--7fa0514a.b:5000",
        "http://col-a-b--7fa0514a.b.svc:5000/",
        "http://col-a-b--7fa0514a.b.svc.cluster.local:5000",
        "http://COL-A-B--7FA0514A.B.SVC.cluster.local.:5000",
        "https://user@col-a-b--7fa0514a.b.svc.other-domain:443/x?y",
        "http://10.96.0.12:5000",
        "http://10.96.12",
        "http://0x0a60000c:5000",
        "http://174063628",
        "http://[::ffff:10.96.0.12]:5000",
        "http://10-96-0-12.a.pod.cluster.local:5000",
        "http://10-96-0-12.b.pod:5000",
    ],
)
def test_a_url_naming_another_namespaces_app_service_is_refused_with_the_field(url):
    why = refused_for(url)
    assert why and why.startswith(f"spec.steps[1].url: {url!r} ") and "col-a-b--7fa0514a" in why
    assert "namespace b" in why


@pytest.mark.parametrize(
    "url",
    [
        "http://col-a-b--7fa0514a:5000",  # a bare name resolves in the caller's namespace
        "http://mine--12345678.a.svc:5000",
        "http://10.96.0.13:5000",  # its own namespace's app
        "http://other.b.svc:5000",
        "http://10.96.0.99",
        "https://apps.example.org/ner",
        "http://deadbeef:5000",
    ],
)
def test_other_urls_are_allowed(url):
    assert refused_for(url) is None


def test_analysis_urls_are_checked_too():
    why = refused_for("http://10.96.0.12:5000", kind="AnalysisJob")
    assert why.startswith("spec.app.url: ")
    spec = {
        "steps": [{"name": "s", "image": "i"}],
        "analyses": [{"name": "seg", "app": {"mode": "Service", "url": "http://col-a-b--7fa0514a.b:5000"}}],
    }
    assert [t.field for t in U.targets("Pipeline", spec, "a")] == ["spec.analyses[0].app.url"]
    assert U.targets("Pipeline", spec, "b") == []


def test_the_webhook_looks_up_only_what_the_urls_name():
    class Kube:
        def __init__(self):
            self.calls = []

        async def get(self, kind, ns, name):
            self.calls.append(("get", ns, name))
            return (
                {
                    "metadata": {
                        "name": name,
                        "namespace": ns,
                        "labels": {L.MANAGED_BY: L.MANAGER, L.COMPONENT: L.COMPONENT_APP_SERVICE},
                    },
                    "spec": {"clusterIP": "10.96.0.12"},
                }
                if (ns, name) == ("b", "col-a-b--7fa0514a")
                else {
                    "metadata": {
                        "name": name,
                        "namespace": ns,
                        "labels": {L.MANAGED_BY: L.MANAGER, L.COMPONENT: L.COMPONENT_APP_POOL},
                    },
                    "spec": {"clusterIP": "10.96.0.13"},
                }
                if (ns, name) == ("b", "run-1-s--0c1d2e3f-pool")
                else None
            )

        async def list(self, kind, ns, labels):
            self.calls.append(("list", ns, labels))
            return [
                {
                    "metadata": {"name": "col-a-b--7fa0514a", "namespace": "b"},
                    "spec": {"clusterIP": "10.96.0.12"},
                }
            ]

    def check(url):
        kube = Kube()
        spec = {"steps": [{"name": "s", "mode": "Service", "url": url}]}
        return asyncio.run(HV.check_urls(kube, "Pipeline", spec, "a")), kube.calls

    why, calls = check("http://col-a-b--7fa0514a.b.svc:5000")
    assert why.startswith("spec.steps[0].url") and calls == [("get", "b", "col-a-b--7fa0514a")]
    why, _ = check("http://run-1-s--0c1d2e3f-pool.b.svc:5000")  # a run's pool (a warm step's app)
    assert why.startswith("spec.steps[0].url")
    why, calls = check("http://10.96.0.12:5000")
    assert why and calls[0][:2] == ("list", "")
    assert check("https://apps.example.org")[0] is None
    assert check("http://app:5000") == (None, [])
