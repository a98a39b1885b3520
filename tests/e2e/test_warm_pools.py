"""Warm Job-mode steps (`Step.warm`, kinds/pipelinerun/pools.py), end to end: the run starts each
step's app once, in a pool it owns, while it runs; every item calls it (the two steps in one pod
per item), an app error fails only its item, the first items wait through the app's start-up,
and the pools are gone once the run's items are done."""

from __future__ import annotations

import json
import posixpath

import pytest
from mmif import Mmif

from tests import kube
from tests.e2e.test_cli import explain, mmif

pytestmark = pytest.mark.cluster

STARTUP = 8  # the textgen app's start-up (CLAMS_STARTUP_DELAY_SECONDS)
POOL = "app.kubernetes.io/component=app-pool,mmif.dev/run=warm-1"


def record(workspace, run: dict, index: int, k: int, step: str) -> dict:
    path = posixpath.join(run["status"]["outputPath"], f"items/{index:05d}/{k:02d}-{step}.json")
    return json.loads(workspace.read_file(path))


def pool_objects(namespace: str) -> list[dict]:
    return [
        o
        for kind in ("deployments", "services", "networkpolicies", "pods")
        for o in kube.get_list(kind, namespace, POOL)
    ]


def test_a_warm_steps_app_runs_once_per_run_in_a_pool_the_run_owns_and_removes(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/ok-0.mp4": b"x", "media/ok-1.mp4": b"y", "media/boom-2.mp4": b"z"})
    steps = [
        build.step(
            "transcript",
            "textgen",
            warm=True,
            env=[
                {"name": "CLAMS_GUNICORN_WORKERS", "value": "1"},
                {"name": "CLAMS_STARTUP_DELAY_SECONDS", "value": str(STARTUP)},
            ],
        ),
        build.step("check", "failer", warm=True, parameters={"failOn": "boom"}),
    ]
    build.apply(build.pipeline("warmed", steps, claim_name=workspace.claim_name), namespace)
    kube.wait("pipeline/warmed", "condition=Ready", namespace, timeout=120)
    items = [build.item(f"media/{n}.mp4", name=n) for n in ("ok-0", "ok-1", "boom-2")]
    build.apply(build.run("warm-1", "warmed", items, claim_name=workspace.claim_name), namespace)

    # While it runs: one Deployment of one app pod per warm step, the run's own.
    uid = kube.eventually(
        lambda: kube.get("pipelinerun", "warm-1", namespace)["metadata"].get("uid"),
        timeout=30,
        what="the run",
    )
    kube.eventually(
        lambda: len(kube.get_list("deployments", namespace, POOL)) == 2,
        timeout=60,
        what="the run's two pools",
    )
    for dep in kube.get_list("deployments", namespace, POOL):
        (owner,) = dep["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("PipelineRun", "warm-1", uid)
        assert dep["spec"]["replicas"] == 1
        volume = dep["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]
        assert volume == {"claimName": workspace.claim_name, "readOnly": True}

    run = runs.wait_to_finish(namespace, "warm-1", timeout=300)
    status = run["status"]
    # The first items waited through the app's start-up; the app error failed its item only.
    assert (status["itemsSucceeded"], status["itemsFailed"]) == (2, 1), runs.diagnostics(namespace, "warm-1")
    (failure,) = status["failures"]
    assert (failure["item"], failure["step"], failure["reason"]) == ("boom-2", "check", "AppError"), failure
    assert {e["step"] for e in status.get("appImages") or ()} == {"transcript", "check"}  # read off the pools

    for index in (0, 1):
        records = [record(workspace, run, index, k, s["name"]) for k, s in enumerate(steps)]
        assert [r["state"] for r in records] == ["Succeeded"] * 2
        pods = {r["pod"] for r in records}
        assert len(pods) == 1, records  # both steps' calls from one item pod
        assert pods.pop().startswith(f"warm-1-{index:05d}-0-")
        final = Mmif(
            workspace.read_file(
                posixpath.join(status["outputPath"], f"items/{index:05d}/final.mmif")
            ).decode()
        )
        assert [v.metadata.app for v in final.views] == [
            build.app_identifier(a) for a in ("textgen", "failer")
        ]

    # Its items are done: the pools are gone (their pods too).
    kube.eventually(lambda: not pool_objects(namespace), timeout=90, what="the run's pools removed")

    # The failed item-step's app log outlives the pool: the pool's, kept when the step failed.
    proc = mmif("logs", "warm-1", "boom-2", "--step", "check", namespace=namespace)
    assert proc.returncode == 0, explain(proc)
    assert "step check: the app in the run's pool (Deployment warm-1-check" in proc.stdout, explain(proc)
    assert "failer: refusing document" in proc.stdout and "it contains 'boom'" in proc.stdout, explain(proc)
