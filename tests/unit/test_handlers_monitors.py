"""kinds/monitor/handler.py: a pass writes in order (reports, then the runs they report, then the
next run, then pruning and status) against a small fake cluster; a crash after any write, replayed,
neither loses nor doubles a report; a report of that name that is not ours is never taken."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from mmif_operator.core.kube import ops
from mmif_operator.core.kube.ops import NameConflict
from mmif_operator.kinds.monitor import handler as H

T0 = datetime(2026, 12, 1, 18, 33, 5, tzinfo=UTC)
SAMPLE = {
    "workspace": {"claimName": "media"},
    "items": [{"documents": [{"location": "m/a.mp4", "mimeType": "video/mp4"}]}],
}


class Crash(Exception):
    pass


class FakeCluster:
    """Custom objects by (plural, name); `crash_after` writes raise Crash (the operator dies)."""

    def __init__(self, monitor):
        self.objects: dict[tuple[str, str], dict] = {("monitors", "web"): monitor}
        self.writes: list[tuple[str, str, str]] = []
        self.crash_after: int | None = None
        self.rv = 1
        self.uids = 0

    def _write(self, what, plural, name):
        if self.crash_after is not None and len(self.writes) >= self.crash_after:
            raise Crash(f"crashed before {what} {plural}/{name}")
        self.writes.append((what, plural, name))

    async def get_custom(self, plural, ns, name):
        return copy.deepcopy(self.objects.get((plural, name)))

    async def list_custom(self, plural, ns, labels):
        ((key, value),) = labels.items()
        return [
            copy.deepcopy(o)
            for (p, _), o in sorted(self.objects.items())
            if p == plural and (o["metadata"].get("labels") or {}).get(key) == value
        ]

    async def create_custom(self, plural, body):
        name = body["metadata"]["name"]
        if (plural, name) in self.objects:
            return ops._ours_or_raise(body["kind"], body, self.objects[(plural, name)])
        self._write("create", plural, name)
        obj = copy.deepcopy(body)
        self.uids += 1
        obj["metadata"]["uid"] = f"uid-{self.uids}"
        obj["metadata"]["creationTimestamp"] = "2026-12-01T18:33:05Z"
        self.objects[(plural, name)] = obj
        return True

    async def delete_custom(self, plural, ns, name, uid=None):
        obj = self.objects.get((plural, name))
        if obj is None or (uid and obj["metadata"]["uid"] != uid):
            return False
        self._write("delete", plural, name)
        del self.objects[(plural, name)]
        return True

    async def patch_custom(self, plural, ns, name, patch):
        self._write("patch-spec", plural, name)
        obj = self.objects[(plural, name)]
        obj["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
        obj["spec"] = copy.deepcopy(patch["spec"])
        return obj

    async def patch_status(self, plural, ns, name, patch, resource_version=None):
        self._write("patch", plural, name)
        obj = self.objects[(plural, name)]
        status = obj.setdefault("status", {})
        for k, v in json.loads(json.dumps(patch)).items():
            if v is None:
                status.pop(k, None)
            else:
                status[k] = v
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return obj

    # -- what the run's own loop would do --
    def finish_runs(self, failed=False):
        for (plural, _), obj in self.objects.items():
            if plural == "pipelineruns" and not obj.get("status"):
                obj["status"] = {
                    "phase": "Failed" if failed else "Succeeded",
                    "completionTime": "2026-12-01T18:33:09Z",
                    "pipelineSpec": {"steps": [{"name": "a", "image": "a:1"}]},
                    "steps": [{"name": "a", "failed": 1} if failed else {"name": "a", "succeeded": 1}],
                    "failures": [
                        {
                            "index": 0,
                            "step": "a",
                            "reason": "AppError",
                            "message": "boom",
                            "time": "2026-12-01T18:33:09Z",
                        }
                    ]
                    if failed
                    else [],
                }

    def names(self, plural):
        return sorted(n for p, n in self.objects if p == plural)


def monitor():
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "Monitor",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "m-uid",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": "2026-12-01T18:33:05Z",
        },
        "spec": {"target": {"pipeline": "pipe"}, "interval": "PT10S", "sample": SAMPLE, "keep": {"count": 3}},
    }


def reconcile(cluster, now, events=None):
    post = (
        (lambda obj, type_, reason, message: events.append((type_, reason, message)))
        if events is not None
        else (lambda *a: None)
    )
    return asyncio.run(H.reconcile_monitor(cluster, "ns", "web", "m-uid", now=now, post_event=post))


def test_a_pass_reports_then_deletes_then_starts_the_next_test():
    cluster = FakeCluster(monitor())
    reconcile(cluster, T0)
    assert cluster.names("pipelineruns") == ["web-20261201t183305z"]
    cluster.finish_runs()
    cluster.writes.clear()
    events = []
    reconcile(cluster, T0 + timedelta(seconds=10), events)
    assert cluster.writes == [
        ("create", "healthreports", "web-20261201t183305z"),
        ("delete", "pipelineruns", "web-20261201t183305z"),
        ("create", "pipelineruns", "web-20261201t183315z"),
        ("patch", "monitors", "web"),
    ]
    status = cluster.objects[("monitors", "web")]["status"]
    assert status["health"] == "Healthy" and status["currentTest"]["id"] == "20261201T183315Z"
    assert events == [("Normal", "HealthChanged", "Unknown -> Healthy: test 20261201T183305Z passed")]


@pytest.mark.parametrize("crash_after", range(0, 4))
def test_a_crash_after_any_write_neither_loses_nor_doubles_a_report(crash_after):
    cluster = FakeCluster(monitor())
    reconcile(cluster, T0)
    cluster.finish_runs(failed=True)
    cluster.writes.clear()
    cluster.crash_after = crash_after
    with pytest.raises(Crash):
        reconcile(cluster, T0 + timedelta(seconds=10))
    cluster.crash_after = None
    reconcile(cluster, T0 + timedelta(seconds=11))  # the restarted operator's first pass
    assert cluster.names("healthreports") == ["web-20261201t183305z"]
    report = cluster.objects[("healthreports", "web-20261201t183305z")]["spec"]
    assert report["result"] == "Failed" and report["failedActivities"][0]["message"] == "boom"
    assert cluster.names("pipelineruns") == ["web-20261201t183315z"]
    creates = [w for w in cluster.writes if w[0] == "create"]
    assert len(creates) == len(set(creates)) == 2  # each object created once, across the crash
    assert cluster.objects[("monitors", "web")]["status"]["health"] == "Degraded"


def test_reports_beyond_keep_count_are_pruned_and_ids_stay_on_the_grid():
    cluster = FakeCluster(monitor())
    now = T0
    for _ in range(5):
        reconcile(cluster, now)
        cluster.finish_runs()
        now += timedelta(seconds=10)
    reconcile(cluster, now)
    assert cluster.names("healthreports") == [f"web-20261201t1833{s}z" for s in ("25", "35", "45")]
    status = cluster.objects[("monitors", "web")]["status"]
    assert status["reportsKept"] == 3 and status["reliability"] == 1.0


def test_a_report_name_held_by_someone_else_is_never_taken():
    cluster = FakeCluster(monitor())
    reconcile(cluster, T0)
    cluster.finish_runs()
    cluster.objects[("healthreports", "web-20261201t183305z")] = {
        "kind": "HealthReport",
        "metadata": {"name": "web-20261201t183305z", "uid": "x", "labels": {}, "ownerReferences": []},
        "spec": {},
    }
    with pytest.raises(NameConflict):
        reconcile(cluster, T0 + timedelta(seconds=10))
    assert cluster.names("pipelineruns") == ["web-20261201t183305z"]  # not deleted: not reported


def test_a_probe_pipeline_name_held_by_someone_else_stalls_the_monitor_once():
    body = monitor()
    body["spec"]["target"] = {"app": {"image": "a:1"}}
    cluster = FakeCluster(body)
    cluster.objects[("pipelines", "web-probe")] = {
        "kind": "Pipeline",
        "metadata": {"name": "web-probe", "uid": "p", "labels": {}},
        "spec": {"steps": [{"name": "x", "image": "x"}]},
    }
    events = []
    reconcile(cluster, T0, events)
    reconcile(cluster, T0 + timedelta(seconds=30), events)
    assert cluster.names("pipelineruns") == []
    conds = {c["type"]: c for c in cluster.objects[("monitors", "web")]["status"]["conditions"]}
    assert (conds["Stalled"]["status"], conds["Stalled"]["reason"]) == ("True", "NameConflict")
    assert "Pipeline web-probe already exists and is not ours" in conds["Stalled"]["message"]
    assert conds["Reconciling"]["status"] == "False"
    assert [e[1] for e in events] == ["NameConflict"]


def test_the_probe_pipeline_follows_the_app():
    body = monitor()
    body["spec"]["target"] = {"app": {"image": "a:1", "parameters": {"x": "1"}}}
    cluster = FakeCluster(body)
    reconcile(cluster, T0)
    probe = cluster.objects[("pipelines", "web-probe")]
    assert probe["spec"]["steps"][0]["image"] == "a:1"
    assert probe["metadata"]["ownerReferences"][0]["uid"] == "m-uid"
    cluster.objects[("monitors", "web")]["spec"]["target"]["app"]["image"] = "a:2"
    reconcile(cluster, T0 + timedelta(seconds=1))
    assert cluster.objects[("pipelines", "web-probe")]["spec"]["steps"][0]["image"] == "a:2"
