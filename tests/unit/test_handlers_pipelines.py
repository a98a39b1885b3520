"""kinds/pipeline/handler.py: app Deployments/Services and the Pipeline's status, on a fake cluster."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime

from mmif_operator.core import names, ownership
from mmif_operator.core.kube.ops import KubeError, NameConflict
from mmif_operator.kinds.pipeline import handler as H

NAME = names.app_service_name("pipe", "ner")  # pipe-ner--<hash>

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def make_pipeline(**step):
    svc = {"name": "ner", "image": "ner:1", "mode": "Service", **step}
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "name": "pipe",
            "namespace": "ns",
            "uid": "p-uid",
            "generation": 1,
            "resourceVersion": "5",
        },
        "spec": {"workspace": {"claimName": "media"}, "steps": [{"name": "asr", "image": "asr:1"}, svc]},
    }


class FakeKube:
    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.objects: dict[tuple[str, str], dict] = {}
        self.pods: list[dict] = []
        self.calls: list[tuple[str, str]] = []

    async def get_custom(self, plural, ns, name):
        return copy.deepcopy(self.pipeline)

    async def list(self, kind, ns, labels):
        if kind == "Pod":
            return self.pods
        return [copy.deepcopy(o) for (k, _), o in self.objects.items() if k == kind]

    async def get(self, kind, ns, name):
        return copy.deepcopy(self.objects.get((kind, name)))

    async def create(self, body):
        """As Kube.create: a 409 is success only for our own object."""
        key = (body["kind"], body["metadata"]["name"])
        self.calls.append(("create", f"{key[0]}/{key[1]}"))
        if key in self.objects:
            existing = self.objects[key]
            if ownership.classify(existing, body) is ownership.Ownership.FOREIGN:
                raise NameConflict(key[0], key[1], existing)
            return False
        self.objects[key] = copy.deepcopy(body)
        return True

    async def apply(self, body):
        key = (body["kind"], body["metadata"]["name"])
        self.calls.append(("apply", f"{key[0]}/{key[1]}"))
        self.objects[key] = {**copy.deepcopy(body), "status": self.objects.get(key, {}).get("status", {})}
        return self.objects[key]

    async def delete(self, kind, ns, name, uid=None):
        self.calls.append(("delete", f"{kind}/{name}"))
        return self.objects.pop((kind, name), None) is not None

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        self.calls.append(("patch", "status"))
        self.pipeline["status"] = copy.deepcopy(patch)
        return self.pipeline


def reconcile(kube, events=None):
    posted = events if events is not None else []
    return asyncio.run(
        H.reconcile_pipeline(
            kube, "ns", "pipe", "p-uid", now=T0, post_event=lambda o, t, r, m: posted.append((t, r, m))
        )
    )


def test_creates_the_app_objects_then_writes_nothing_while_unchanged():
    kube = FakeKube(make_pipeline())
    events = []
    result = reconcile(kube, events)
    assert [c for c in kube.calls if c[0] == "create"] == [
        ("create", f"Deployment/{NAME}"),
        ("create", f"Service/{NAME}"),
        ("create", f"NetworkPolicy/{NAME}"),
    ]
    assert result.requeue_after == H.NOT_READY_REQUEUE_SECONDS
    cond = kube.pipeline["status"]["conditions"][0]
    assert cond["status"] == "False" and cond["reason"] == "AppNotAvailable"
    dep = kube.objects[("Deployment", NAME)]
    assert dep["metadata"]["annotations"][H.HASH_ANNOTATION] == H.desired_hash(
        {k: v for k, v in dep.items() if k != "status"}
    )
    # The Deployment becomes available: status patched once, nothing else written.
    dep["status"] = {"readyReplicas": 1, "availableReplicas": 1}
    kube.calls.clear()
    result = reconcile(kube, events)
    assert kube.calls == [("patch", "status")]
    assert kube.pipeline["status"]["conditions"][0]["status"] == "True"
    assert result.requeue_after is None
    assert events[-1][:2] == ("Normal", "Ready")
    kube.calls.clear()
    reconcile(kube, events)
    assert kube.calls == []


def test_a_changed_step_is_applied_and_a_removed_one_deleted():
    kube = FakeKube(make_pipeline())
    reconcile(kube)
    kube.pipeline["spec"]["steps"][1]["replicas"] = 3
    kube.calls.clear()
    reconcile(kube)
    assert ("apply", f"Deployment/{NAME}") in kube.calls
    assert ("apply", f"Service/{NAME}") not in kube.calls
    assert kube.objects[("Deployment", NAME)]["spec"]["replicas"] == 3
    kube.pipeline["spec"]["steps"][1] = {"name": "ner", "image": "ner:1"}  # Job mode now
    kube.calls.clear()
    reconcile(kube)
    assert ("delete", f"Deployment/{NAME}") in kube.calls and ("delete", f"Service/{NAME}") in kube.calls
    assert kube.pipeline["status"]["conditions"][0]["reason"] == "NoServiceSteps"


def test_objects_not_owned_by_the_pipeline_are_left_alone():
    kube = FakeKube(make_pipeline())
    kube.objects[("Deployment", NAME)] = {
        "kind": "Deployment",
        "metadata": {"name": NAME, "ownerReferences": [{"uid": "someone-else", "controller": True}]},
    }
    events = []
    reconcile(kube, events)
    assert ("apply", f"Deployment/{NAME}") not in kube.calls
    assert kube.objects[("Deployment", NAME)]["metadata"]["ownerReferences"][0]["uid"] == "someone-else"
    assert any(e[1] == "NameConflict" for e in events)
    cond = kube.pipeline["status"]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "NameConflict")
    assert (
        f"Deployment {NAME} already exists and is not ours" in cond["message"]
        and "someone-else" in cond["message"]
    )
    assert kube.pipeline["status"]["steps"][1]["ready"] is False
    # ...and it is not "stale" either: never deleted.
    assert ("delete", f"Deployment/{NAME}") not in kube.calls


def test_image_pull_errors_make_ready_false_with_a_clear_reason():
    kube = FakeKube(make_pipeline())
    kube.pods = [
        {
            "metadata": {"labels": {"mmif.dev/step": "ner"}},
            "status": {
                "containerStatuses": [
                    {"state": {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}}
                ]
            },
        }
    ]
    reconcile(kube)
    cond = kube.pipeline["status"]["conditions"][0]
    assert cond["status"] == "False" and cond["reason"] == "ImagePullFailed"
    assert "ErrImageNeverPull" in cond["message"]


def test_gone_or_replaced_pipeline_ends_the_loop():
    kube = FakeKube(None)
    assert reconcile(kube).done
    p = make_pipeline()
    p["metadata"]["uid"] = "other"
    kube = FakeKube(p)
    assert reconcile(kube).done and kube.calls == []


def test_status_conflict_retries_at_once():
    kube = FakeKube(make_pipeline())

    async def conflict(*a, **k):
        raise KubeError(409, "Conflict")

    kube.patch_status = conflict
    assert reconcile(kube).requeue_after == 0.0


def test_desired_hash_ignores_its_own_annotation():
    obj = {"kind": "Service", "metadata": {"name": "x"}, "spec": {"a": 1}}
    hashed = H.with_hash(obj)
    assert H.desired_hash(hashed) == H.desired_hash(obj)
    assert H.desired_hash({**obj, "spec": {"a": 2}}) != H.desired_hash(obj)
    assert "annotations" not in obj["metadata"]
