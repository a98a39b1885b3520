"""A Service-mode step with `autoscaling` (kinds/pipeline/scaling.py), end to end: no app pod
while no run needs the app, replicas up when a run does (its first items wait for the app's
start-up and are not failed by it), and back to zero once the run ended and the delay is over."""

from __future__ import annotations

import time

import pytest

from tests import kube

pytestmark = pytest.mark.cluster

DELAY = 30  # autoscaling.scaleDownDelaySeconds
STARTUP = 8  # the app's start-up (CLAMS_STARTUP_DELAY_SECONDS)
# Back to zero replicas within this long after the run ends: the delay, the Pipeline's pass and
# the app pods' termination (gunicorn stops at SIGTERM).
SCALE_DOWN_BOUND = DELAY + 40


def deployment(namespace: str) -> dict:
    (dep,) = kube.get_list("deployments", namespace, "mmif.dev/pipeline=elastic")
    return dep


def app_pods(namespace: str) -> list[dict]:
    return kube.get_list(
        "pods", namespace, "mmif.dev/pipeline=elastic,app.kubernetes.io/component=app-service"
    )


def test_an_autoscaled_app_runs_only_while_a_run_needs_it(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({f"media/{n}.mp4": n.encode() for n in ("a", "b", "c")})
    step = build.step(
        "transcript",
        "textgen",
        mode="Service",
        replicas=2,
        autoscaling={"minReplicas": 0, "scaleDownDelaySeconds": DELAY},
        env=[
            {"name": "CLAMS_GUNICORN_WORKERS", "value": "1"},
            {"name": "CLAMS_STARTUP_DELAY_SECONDS", "value": str(STARTUP)},
        ],
    )
    build.apply(build.pipeline("elastic", [step], claim_name=workspace.claim_name), namespace)

    # No run: Ready, at zero replicas, and no app pod.
    kube.wait("pipeline/elastic", "condition=Ready", namespace, timeout=120)
    pipeline = kube.get("pipeline", "elastic", namespace)
    ready = next(c for c in pipeline["status"]["conditions"] if c["type"] == "Ready")
    assert "scaled to zero until a run needs them: transcript" in ready["message"], ready
    assert pipeline["status"]["steps"][0]["replicas"] == 0
    assert deployment(namespace)["spec"]["replicas"] == 0
    assert not app_pods(namespace)

    items = [build.item(f"media/{n}.mp4", name=n) for n in ("a", "b", "c")]
    build.apply(build.run("elastic-1", "elastic", items, claim_name=workspace.claim_name), namespace)
    # Three items at the step: as many replicas as allowed (2).
    kube.eventually(lambda: deployment(namespace)["spec"]["replicas"] == 2, timeout=60, what="2 replicas")

    run = runs.wait_to_finish(namespace, "elastic-1", timeout=300)
    status = run["status"]
    assert status["itemsSucceeded"] == 3, runs.diagnostics(namespace, "elastic-1")
    assert not status.get("failures")

    ended = time.monotonic()
    # Its items were done a few seconds before (the manifest came after): still there (the delay).
    assert deployment(namespace)["spec"]["replicas"] == 2
    kube.eventually(
        lambda: deployment(namespace)["spec"]["replicas"] == 0 and not app_pods(namespace),
        timeout=SCALE_DOWN_BOUND,
        what="the app scaled back to zero",
    )
    print(f"scaled to zero {time.monotonic() - ended:.1f} s after the run was seen ending")
