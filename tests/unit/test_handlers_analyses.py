"""kinds/analysisjob/handler.py: an AnalysisJob pass applies its plan as a run's pass does: at most
MAX_CREATES_PER_PASS creates (16 at a time), then the status, then the deletes."""

from __future__ import annotations

import asyncio

from mmif_operator.core.runtime import loop
from mmif_operator.kinds.analysisjob import handler as H
from mmif_operator.kinds.analysisjob.planning import AnalysisPlan


class FakeKube:
    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.in_flight = self.most_in_flight = 0

    async def get_custom(self, plural, ns, name):
        if plural == "pipelineruns":  # the source run
            return {
                "metadata": {"name": name, "uid": "uid-r"},
                "spec": {"workspace": {"claimName": "media"}},
                "status": {"phase": "Running"},
            }
        return {
            "metadata": {"name": name, "uid": "uid-a", "resourceVersion": "7"},
            "spec": {"runRef": {"name": "run-1"}, "app": {"image": "app:1"}},
            "status": {"phase": "Running"},
        }

    async def create(self, body):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        self.calls.append(("create", body["metadata"]["name"]))
        return True

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        self.calls.append(("patch", resource_version))

    async def delete_job(self, ns, name, uid=None):
        self.calls.append(("delete", name))


def test_a_pass_creates_a_bounded_number_then_patches_then_deletes(monkeypatch):
    n = loop.MAX_CREATES_PER_PASS + 36
    plan = AnalysisPlan(
        phase="Running",
        create=[{"metadata": {"name": f"aj-a{i:05d}"}} for i in range(n)],
        delete=["aj-a99999"],
        status_patch={"itemsRunning": n},
        requeue_after=30.0,
    )
    monkeypatch.setattr(H, "plan_analysis", lambda *a, **k: plan)
    kube = FakeKube()
    result = asyncio.run(
        H.reconcile_analysis(kube, "ns", "aj", "uid-a", [], operator_image="img", post_event=lambda *a: None)
    )
    creates = [c for c in kube.calls if c[0] == "create"]
    assert len(creates) == loop.MAX_CREATES_PER_PASS and result.requeue_after == 0.0
    assert 1 < kube.most_in_flight <= loop.MAX_CONCURRENT_WRITES
    assert kube.calls[len(creates) :] == [("patch", "7"), ("delete", "aj-a99999")]
