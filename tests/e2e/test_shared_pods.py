"""Consecutive Service-mode steps share one pod per item (`ownPod`, docs/design.md), end to end:
each step's MMIF and result record on the volume as before, one pod for all of them, a failure
named at the step where it happened, and a step that asks for a pod of its own gets one."""

from __future__ import annotations

import json
import posixpath

import pytest
from mmif import Mmif

from tests import kube

pytestmark = pytest.mark.cluster


def record(workspace, run: dict, index: int, k: int, step: str) -> dict:
    path = posixpath.join(run["status"]["outputPath"], f"items/{index:05d}/{k:02d}-{step}.json")
    return json.loads(workspace.read_file(path))


def test_three_service_steps_run_in_one_pod_per_item_and_a_failure_is_named_at_its_step(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/ok-0.mp4": b"x", "media/ok-1.mp4": b"y", "media/boom-2.mp4": b"z"})
    steps = [
        build.step("transcript", "textgen", mode="Service"),
        build.step("check", "failer", mode="Service", parameters={"failOn": "boom"}),
        build.step("segments", "timeframes", mode="Service", parameters={"count": "2"}),
    ]
    build.apply(build.pipeline("chain", steps, claim_name=workspace.claim_name), namespace)
    items = [build.item(f"media/{n}.mp4", name=n) for n in ("ok-0", "ok-1", "boom-2")]
    build.apply(build.run("chain-1", "chain", items, claim_name=workspace.claim_name), namespace)

    run = runs.wait_to_finish(namespace, "chain-1", timeout=420)
    status = run["status"]
    assert (status["itemsSucceeded"], status["itemsFailed"]) == (2, 1), runs.diagnostics(namespace, "chain-1")
    (failure,) = status["failures"]
    assert (failure["item"], failure["step"], failure["reason"]) == ("boom-2", "check", "AppError"), failure
    assert "failOn 'boom' matched" in failure["message"]
    assert [(s["name"], s["succeeded"], s["failed"]) for s in status["steps"]] == [
        ("transcript", 3, 0),
        ("check", 2, 1),
        ("segments", 2, 0),
    ]

    for index in (0, 1):
        records = [record(workspace, run, index, k, s["name"]) for k, s in enumerate(steps)]
        assert [r["state"] for r in records] == ["Succeeded"] * 3
        pods = {r["pod"] for r in records}
        assert len(pods) == 1, records  # one pod ran the item's three steps
        assert pods.pop().startswith(f"chain-1-{index:05d}-0-")  # the Job of its first step
        final = Mmif(
            workspace.read_file(
                posixpath.join(status["outputPath"], f"items/{index:05d}/final.mmif")
            ).decode()
        )
        assert [v.metadata.app for v in final.views] == [
            build.app_identifier(a) for a in ("textgen", "failer", "timeframes")
        ]
    failed = [record(workspace, run, 2, k, s["name"]) for k, s in enumerate(steps[:2])]
    assert [r["state"] for r in failed] == ["Succeeded", "Failed"] and failed[0]["pod"] == failed[1]["pod"]
    manifest = json.loads(workspace.read_file(status["manifestPath"]))
    assert [(e["name"], e["state"]) for e in manifest["items"]] == [
        ("ok-0", "Succeeded"),
        ("ok-1", "Succeeded"),
        ("boom-2", "Failed"),
    ]
    assert not kube.get_list("jobs", namespace, "mmif.dev/run=chain-1,app.kubernetes.io/component=step")


def test_a_step_with_own_pod_runs_in_a_pod_of_its_own(operator_deployed, namespace, workspace, build, runs):
    workspace.write_media({"media/a.mp4": b"x"})
    steps = [
        build.step("transcript", "textgen", mode="Service"),
        build.step("segments", "timeframes", mode="Service", ownPod=True),
    ]
    build.apply(build.pipeline("apart", steps, claim_name=workspace.claim_name), namespace)
    build.apply(
        build.run("apart-1", "apart", [build.item("media/a.mp4", name="a")], claim_name=workspace.claim_name),
        namespace,
    )
    run = runs.wait_to_finish(namespace, "apart-1", timeout=420)
    assert run["status"]["itemsSucceeded"] == 1, runs.diagnostics(namespace, "apart-1")
    first, second = (record(workspace, run, 0, k, s["name"]) for k, s in enumerate(steps))
    assert first["pod"].startswith("apart-1-00000-0-") and second["pod"].startswith("apart-1-00000-1-")
