"""What Argo CD and kstatus show for our objects, read live from the real cluster (issue 14,
parts 3 and 4), computed with the libraries those tools run: our health.lua scripts in
gopher-lua set up as Argo CD's Lua VM, and sigs.k8s.io/cli-utils' `status.Compute` (tests/health.py).

With MMIF_HEALTH_TESTDATA=1 the objects read here are also written (noise stripped) as the
testdata of config/argocd/resource_customizations (their health_test.yaml cases are run by
tests/unit/test_argocd_health.py).
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import yaml

from tests import health, kube
from tests.health import CUSTOMIZATIONS

pytestmark = pytest.mark.cluster

MISSING_IMAGE = "mmif.local/does-not-exist:dev"  # never loaded: its pull fails
API = "/apis/mmif.dev/v1alpha1/namespaces/{ns}/{plural}/{name}"
CLUSTER_API = "/apis/mmif.dev/v1alpha1/{plural}/{name}"
PLURALS = {
    "PipelineRun": "pipelineruns",
    "AnalysisJob": "analysisjobs",
    "Pipeline": "pipelines",
    "Monitor": "monitors",
    "Project": "projects",
}
CLUSTER_SCOPED = {"Project"}


def save(obj: dict, file_name: str) -> None:
    if os.environ.get("MMIF_HEALTH_TESTDATA") == "1":
        path = CUSTOMIZATIONS / obj["kind"] / "testdata" / file_name
        path.write_text(yaml.safe_dump(health.strip(obj), sort_keys=False, width=100))


def seen(obj: dict) -> tuple[dict, dict]:
    """(Argo CD's health, kstatus's status) of a live object."""
    return health.argocd_health(obj), health.kstatus(obj)


def condition(obj: dict, type_: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_), {})


def when(kind: str, name: str, namespace: str, test, what: str, timeout: float = 60) -> dict:
    """The object once `test(obj)` holds."""

    def probe():
        obj = kube.get(kind, name, namespace)
        return obj if test(obj) else None

    return kube.eventually(probe, timeout=timeout, what=what)


def deleting(obj: dict, propagation: str = "Background") -> dict:
    """The object as the API server makes it when it is deleted (a server-side dry run: a
    finalizer holds it, deletionTimestamp set), without deleting it. Foreground propagation (what
    Argo CD's prune uses by default) holds any object until its dependents are gone."""
    meta = obj["metadata"]
    if obj["kind"] in CLUSTER_SCOPED:
        url = CLUSTER_API.format(plural=PLURALS[obj["kind"]], name=meta["name"])
    else:
        url = API.format(ns=meta["namespace"], plural=PLURALS[obj["kind"]], name=meta["name"])
    out = json.loads(
        kube.kubectl("delete", "--raw", f"{url}?dryRun=All&propagationPolicy={propagation}").stdout
    )
    assert out.get("kind") == obj["kind"], out  # not a Status: the object would stay, being deleted
    return out


def created(obj: dict, namespace: str | None) -> dict:
    """The object as the API server stores it on creation, before the operator saw it (a
    server-side dry run: no status). `namespace` None: a cluster-scoped object."""
    where = ["-n", namespace] if namespace else []
    return json.loads(
        kube.kubectl(
            "create", *where, "-f", "-", "--dry-run=server", "-o", "json", input=json.dumps(obj)
        ).stdout
    )


def edited(kind: str, name: str, namespace: str | None, patch: dict) -> dict:
    """The object right after a spec edit, before the operator saw it (a server-side dry run)."""
    where = ["-n", namespace] if namespace else []
    return json.loads(
        kube.kubectl(
            "patch",
            kind,
            name,
            *where,
            "--type=merge",
            "-p",
            json.dumps(patch),
            "--dry-run=server",
            "-o",
            "json",
        ).stdout
    )


def test_runs_and_analyses_as_argocd_and_kstatus_see_them(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/ok.mp4": "fine\n", "media/bad.mp4": "bad\n"})
    claim = workspace.claim_name
    build.apply(build.pipeline("text", [build.step("transcript", "textgen")], claim_name=claim), namespace)
    build.apply(
        build.pipeline(
            "failing", [build.step("fail", "failer", parameters={"failOn": "bad"})], claim_name=claim
        ),
        namespace,
    )
    build.apply(
        build.pipeline(
            "slow", [build.step("nap", "sleeper", parameters={"seconds": "60"})], claim_name=claim
        ),
        namespace,
    )
    for name, pipeline, items, spec in (
        ("ok", "text", ["media/ok.mp4"], {}),
        ("bad", "failing", ["media/ok.mp4", "media/bad.mp4"], {}),
        ("waiting", "nowhere", ["media/ok.mp4"], {"startTimeoutSeconds": 600}),
        ("slow", "slow", ["media/ok.mp4"], {}),
    ):
        build.apply(
            build.run(name, pipeline, [build.item(i) for i in items], claim_name=claim, **spec), namespace
        )

    # Just created, no status yet: Progressing.
    fresh = created(build.run("fresh", "text", [build.item("media/ok.mp4")], claim_name=claim), namespace)
    save(fresh, "no-status.yaml")
    argo, ks = seen(fresh)
    assert argo == {"status": "Progressing", "message": "Waiting for the operator to start the run"}, argo
    assert ks["status"] == "Current", ks

    # Pending (its Pipeline does not exist yet): Progressing, with why; kstatus: Current.
    pending = when(
        "pipelinerun",
        "waiting",
        namespace,
        lambda r: condition(r, "Succeeded").get("reason") == "PipelineNotFound",
        "run waiting to be PipelineNotFound",
        timeout=30,
    )
    save(pending, "pending.yaml")
    argo, ks = seen(pending)
    assert argo["status"] == "Progressing", argo
    assert argo["message"].startswith("Pending") and "Pipeline 'nowhere' not found" in argo["message"], argo
    assert ks["status"] == "Current", ks  # kstatus knows no Succeeded condition: see docs/howto.md

    # Running: Progressing with the phase and progress.
    running = when(
        "pipelinerun",
        "slow",
        namespace,
        lambda r: (
            (r.get("status") or {}).get("phase") == "Running" and (r.get("status") or {}).get("progress")
        ),
        "run slow to be Running with a progress",
    )
    save(running, "running.yaml")
    argo, ks = seen(running)
    assert argo["status"] == "Progressing" and argo["message"].startswith("Running 0/1"), argo
    assert ks["status"] == "Current", ks

    # Being deleted: Progressing, naming the finalizer that holds it.
    argo, ks = seen(gone := deleting(running))
    save(gone, "deleting.yaml")
    assert argo == {
        "status": "Progressing",
        "message": "Being deleted, waiting for the finalizers mmif.dev/finalizer",
    }
    assert ks["status"] == "Terminating", ks

    # Cancelled: Degraded (a run that did not do its work must not look healthy).
    kube.kubectl(
        "patch",
        "pipelinerun",
        "slow",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"status":"Cancelled"}}',
    )
    cancelled = runs.wait_to_finish(namespace, "slow", timeout=60)
    save(cancelled, "cancelled.yaml")
    argo, ks = seen(cancelled)
    assert argo["status"] == "Degraded" and argo["message"].startswith("Cancelled"), argo
    assert ks["status"] == "Current", ks

    # Succeeded: Healthy; Failed: Degraded with the reason and message.
    ok = runs.wait_to_finish(namespace, "ok", timeout=120)
    assert condition(ok, "Succeeded")["status"] == "True", runs.diagnostics(namespace, "ok")
    save(ok, "succeeded.yaml")
    argo, ks = seen(ok)
    assert argo["status"] == "Healthy" and argo["message"].startswith("Succeeded 1/1"), argo
    assert ks["status"] == "Current", ks
    bad = runs.wait_to_finish(namespace, "bad", timeout=120)
    save(bad, "failed.yaml")
    cond = condition(bad, "Succeeded")
    assert (cond["status"], cond["reason"]) == ("False", "ItemsFailed"), cond
    argo, ks = seen(bad)
    assert argo == {"status": "Degraded", "message": f"Failed 2/2: ItemsFailed: {cond['message']}"}, argo
    assert ks["status"] == "Current", ks  # what kstatus really says of a failed run

    # Awaiting a person's review: Suspended (Argo CD's word for "waits for someone").
    build.apply(
        build.pipeline(
            "reviewed", [build.step("transcript", "textgen")], claim_name=claim, review={"required": True}
        ),
        namespace,
    )
    build.apply(build.run("gated", "reviewed", [build.item("media/ok.mp4")], claim_name=claim), namespace)
    gated = when(
        "pipelinerun",
        "gated",
        namespace,
        lambda r: (r.get("status") or {}).get("phase") == "AwaitingReview",
        "run gated to await its review",
        timeout=120,
    )
    save(gated, "awaiting-review.yaml")
    argo, ks = seen(gated)
    assert argo["status"] == "Suspended" and argo["message"].startswith("AwaitingReview 1/1"), argo
    assert ks["status"] == "Current", ks

    # AnalysisJobs of the finished run: one succeeds, one fails; one waits for a run not done.
    def analysis(name, run, image, parameters):
        return {
            "apiVersion": "mmif.dev/v1alpha1",
            "kind": "AnalysisJob",
            "metadata": {"name": name},
            "spec": {
                "runRef": {"name": run},
                "trigger": "AfterRun",
                "app": {"image": build.app_image(image), "parameters": parameters},
            },
        }

    for aj in (
        analysis("frames", "ok", "timeframes", {"count": "2"}),
        analysis("broken", "ok", "failer", {"failOn": "ok"}),
        analysis("later", "waiting", "timeframes", {}),
    ):
        kube.create(aj, namespace)

    def ended(name):
        aj = kube.get("analysisjob", name, namespace)
        return aj if condition(aj, "Succeeded").get("status") in ("True", "False") else None

    waiting_aj = when(
        "analysisjob",
        "later",
        namespace,
        lambda a: bool(condition(a, "Succeeded")),
        "analysisjob later to have a Succeeded condition",
        timeout=30,
    )
    save(waiting_aj, "pending.yaml")
    argo, ks = seen(waiting_aj)
    assert argo["status"] == "Progressing" and argo["message"].startswith("Pending"), argo
    frames = kube.eventually(lambda: ended("frames"), timeout=120, what="analysisjob frames to end")
    save(frames, "succeeded.yaml")
    assert seen(frames)[0]["status"] == "Healthy", frames["status"]
    assert seen(frames)[1]["status"] == "Current"
    broken = kube.eventually(lambda: ended("broken"), timeout=120, what="analysisjob broken to end")
    save(broken, "failed.yaml")
    argo, ks = seen(broken)
    assert argo["status"] == "Degraded" and "ItemsFailed" in argo["message"], argo
    assert ks["status"] == "Current", ks
    # An AnalysisJob has no finalizer of ours: deleted with foreground propagation (Argo CD's
    # prune), the API server's foregroundDeletion finalizer holds it.
    gone = deleting(frames, "Foreground")
    save(gone, "deleting.yaml")
    argo, ks = seen(gone)
    assert argo == {
        "status": "Progressing",
        "message": "Being deleted, waiting for the finalizers foregroundDeletion",
    }
    assert ks["status"] == "Terminating", ks


def argo_ready_message(pipeline: dict) -> str:
    c = condition(pipeline, "Ready")
    return f"{c['reason']}: {c['message']}"


def test_pipelines_as_argocd_and_kstatus_see_them(operator_deployed, namespace, workspace, build):
    claim = workspace.claim_name
    build.apply(
        build.pipeline("apps", [build.step("transcript", "textgen", mode="Service")], claim_name=claim),
        namespace,
    )
    build.apply(
        build.pipeline(
            "unpullable",
            [{"name": "asr", "image": MISSING_IMAGE, "mode": "Service"}],
            claim_name=claim,
            progressDeadlineSeconds=15,
        ),
        namespace,
    )
    start = time.monotonic()

    def reason_is(name, type_, status, reason):
        p = kube.get("pipeline", name, namespace)
        c = condition(p, type_)
        return p if (c.get("status"), c.get("reason")) == (status, reason) else None

    fresh = created(build.pipeline("fresh", [build.step("t", "textgen")], claim_name=claim), namespace)
    save(fresh, "no-status.yaml")
    assert seen(fresh)[0] == {
        "status": "Progressing",
        "message": "Waiting for the operator to check the pipeline's apps",
    }

    # Apps starting: Progressing, kstatus InProgress (Reconciling).
    starting = kube.eventually(
        lambda: reason_is("apps", "Reconciling", "True", "AppNotAvailable"),
        timeout=30,
        what="pipeline apps Reconciling while its app starts",
    )
    save(starting, "app-not-available.yaml")
    argo, ks = seen(starting)
    assert argo["status"] == "Progressing" and argo["message"].startswith(
        "AppNotAvailable: step transcript"
    ), argo
    assert ks["status"] == "InProgress", ks

    # Not pullable: Reconciling (kstatus InProgress, Argo CD Degraded: the pull failed) ...
    pulling = kube.eventually(
        lambda: reason_is("unpullable", "Reconciling", "True", "ImagePullFailed"),
        timeout=30,
        what="pipeline unpullable Reconciling with ImagePullFailed",
    )
    save(pulling, "image-pull-failed.yaml")
    argo, ks = seen(pulling)
    assert argo["status"] == "Degraded" and argo["message"].startswith("ImagePullFailed: step asr"), argo
    assert ks["status"] == "InProgress" and "step asr" in ks["message"], ks
    # ... then, past its 15 s, Stalled: kstatus Failed.
    stalled = kube.eventually(
        lambda: reason_is("unpullable", "Stalled", "True", "ImagePullFailed"),
        timeout=30,
        what="pipeline unpullable Stalled",
    )
    took = time.monotonic() - start
    assert 15 <= took <= 40, took
    save(stalled, "stalled.yaml")
    assert condition(stalled, "Reconciling")["status"] == "False"
    assert condition(stalled, "Ready")["status"] == "False"
    argo, ks = seen(stalled)
    assert ks["status"] == "Failed" and "progressDeadlineSeconds" in ks["message"], ks
    assert argo["status"] == "Degraded" and "not Ready for 15 s" in argo["message"], argo
    for c in stalled["status"]["conditions"]:
        assert c["observedGeneration"] == stalled["metadata"]["generation"], c

    # Ready: Healthy, kstatus Current.
    ready = kube.eventually(
        lambda: reason_is("apps", "Ready", "True", "Ready"), timeout=120, what="pipeline apps Ready"
    )
    ready = kube.eventually(
        lambda: reason_is("apps", "Reconciling", "False", "Ready"),
        timeout=60,
        what="pipeline apps rolled out",
    )
    save(ready, "ready.yaml")
    argo, ks = seen(ready)
    assert argo["status"] == "Healthy" and argo["message"].startswith("Ready: "), argo
    assert ks["status"] == "Current", ks

    # Just edited (generation ahead of observedGeneration): Progressing, kstatus InProgress.
    ahead = edited("pipeline", "apps", namespace, {"spec": {"progressDeadlineSeconds": 300}})
    assert ahead["metadata"]["generation"] == ready["status"]["observedGeneration"] + 1
    save(ahead, "generation-ahead.yaml")
    argo, ks = seen(ahead)
    assert argo["status"] == "Progressing" and "observe generation" in argo["message"], argo
    assert ks["status"] == "InProgress", ks

    # Being deleted: Progressing with the finalizer; kstatus Terminating.
    gone = deleting(ready)
    save(gone, "deleting.yaml")
    argo, ks = seen(gone)
    assert argo == {
        "status": "Progressing",
        "message": "Being deleted, waiting for the finalizers mmif.dev/finalizer",
    }
    assert ks["status"] == "Terminating", ks

    # Edited for real: while the app Deployment rolls out, Ready stays True but the Pipeline is
    # Reconciling (RollingOut): Progressing, kstatus InProgress; then Current again.
    kube.kubectl(
        "patch",
        "pipeline",
        "apps",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps([{"op": "add", "path": "/spec/steps/0/env/-", "value": {"name": "ROLL", "value": "1"}}]),
    )
    rolling = kube.eventually(
        lambda: reason_is("apps", "Reconciling", "True", "RollingOut"),
        timeout=30,
        what="pipeline apps rolling out",
    )
    save(rolling, "rolling-out.yaml")
    assert condition(rolling, "Ready")["status"] == "True"
    argo, ks = seen(rolling)
    assert argo["status"] == "Progressing" and argo["message"].startswith("RollingOut: step transcript"), argo
    assert ks["status"] == "InProgress", ks
    done = kube.eventually(
        lambda: reason_is("apps", "Reconciling", "False", "Ready"),
        timeout=60,
        what="pipeline apps rolled out again",
    )
    assert seen(done) == (
        {"status": "Healthy", "message": argo_ready_message(done)},
        {"status": "Current", "message": "Resource is Ready"},
    )


@pytest.fixture
def project_names(cluster):
    """Fresh project names; the Projects and namespaces of those names are deleted afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"hp-{uuid.uuid4().hex[:6]}")
        return made[-1]

    yield new
    for name in made:
        kube.kubectl("delete", "project", name, "--ignore-not-found", "--wait=false", check=False)
        kube.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


def project_body(name: str, **spec) -> dict:
    return {"apiVersion": "mmif.dev/v1alpha1", "kind": "Project", "metadata": {"name": name}, "spec": spec}


def test_projects_as_argocd_and_kstatus_see_them(operator_deployed, project_names):
    name, taken = project_names(), project_names()

    fresh = created(project_body(name, title="Health"), None)
    save(fresh, "no-status.yaml")
    argo, ks = seen(fresh)
    assert argo == {
        "status": "Progressing",
        "message": "Waiting for the operator to make the project's namespace",
    }, argo
    assert ks["status"] == "Current", ks  # no status at all: kstatus has nothing to wait for

    # Open and Ready: Healthy; kstatus Current.
    kube.create(project_body(name, title="Health", admins={"users": ["alice"]}))
    ready = when(
        "project", name, None, lambda p: condition(p, "Ready").get("status") == "True", "the project Ready"
    )
    save(ready, "open.yaml")
    argo, ks = seen(ready)
    assert argo == {"status": "Healthy", "message": argo_ready_message(ready)}, argo
    assert argo["message"].endswith("; Open"), argo
    assert ks["status"] == "Current", ks

    # Just edited: Progressing; kstatus InProgress.
    ahead = edited("project", name, None, {"spec": {"title": "Health, edited"}})
    assert ahead["metadata"]["generation"] == ready["status"]["observedGeneration"] + 1
    save(ahead, "generation-ahead.yaml")
    argo, ks = seen(ahead)
    assert argo == {"status": "Progressing", "message": f"Waiting for the operator to observe generation {ahead['metadata']['generation']}"}, argo  # fmt: skip
    assert ks["status"] == "InProgress", ks

    # Closed: still Healthy (a state the project is meant to reach), the phase in the message.
    kube.kubectl("patch", "project", name, "--type=merge", "-p", '{"spec":{"state":"Closed"}}')
    closed = when(
        "project",
        name,
        None,
        lambda p: (
            (p.get("status") or {}).get("phase") == "Closed"
            and (p.get("status") or {}).get("observedGeneration") == p["metadata"]["generation"]
        ),
        "the project Closed",
    )
    save(closed, "closed.yaml")
    argo, ks = seen(closed)
    assert argo == {"status": "Healthy", "message": argo_ready_message(closed)}, argo
    assert argo["message"].endswith("; Closed"), argo
    assert ks["status"] == "Current", ks

    # Being deleted (Argo CD's prune: foreground): Progressing with the finalizers; Terminating.
    gone = deleting(closed, "Foreground")
    save(gone, "deleting.yaml")
    argo, ks = seen(gone)
    assert argo["status"] == "Progressing", argo
    assert argo["message"].startswith("Being deleted, waiting for the finalizers "), argo
    assert "foregroundDeletion" in argo["message"], argo
    assert ks["status"] == "Terminating", ks

    # A namespace of the project's name that it did not make: Stalled -> Degraded; kstatus Failed.
    kube.kubectl("create", "namespace", taken)
    kube.create(project_body(taken))
    stalled = when(
        "project", taken, None, lambda p: condition(p, "Stalled").get("status") == "True", "project Stalled"
    )
    save(stalled, "name-conflict.yaml")
    argo, ks = seen(stalled)
    assert argo["status"] == "Degraded" and argo["message"].startswith("NameConflict: "), argo
    assert ks["status"] == "Failed", ks
    assert kube.get("namespace", taken)["metadata"].get("labels", {}).get("mmif.dev/project") is None


MONITOR_SAMPLE = "media/sample.mp4"


def monitor_body(name: str, claim: str, app: dict, **spec) -> dict:
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "Monitor",
        "metadata": {"name": name},
        "spec": {
            "target": {"app": app},
            "interval": "PT1H",
            "sample": {
                "workspace": {"claimName": claim},
                "items": [{"documents": [{"location": MONITOR_SAMPLE, "mimeType": "video/mp4"}]}],
            },
            "timeoutSeconds": 120,
            **spec,
        },
    }


def test_monitors_as_argocd_and_kstatus_see_them(operator_deployed, namespace, workspace, build):
    workspace.write_media({MONITOR_SAMPLE: "sample\n"})
    claim = workspace.claim_name
    good = {"image": build.app_image("textgen")}
    bad = {"image": build.app_image("failer"), "parameters": {"failOn": "sample"}}

    fresh = created(monitor_body("fresh", claim, good), namespace)
    save(fresh, "no-status.yaml")
    assert seen(fresh)[0] == {
        "status": "Progressing",
        "message": "Waiting for the operator to test the monitor's target",
    }

    for name, app in (("good", good), ("bad", bad)):
        build.apply(monitor_body(name, claim, app), namespace)
    # A probe Pipeline of the name the monitor would make, that is not its own: Stalled.
    build.apply(build.pipeline("taken-probe", [build.step("t", "textgen")], claim_name=claim), namespace)
    build.apply(monitor_body("taken", claim, good), namespace)

    # The first test in flight: Reconciling -> Progressing; kstatus InProgress.
    first = when(
        "monitor",
        "good",
        namespace,
        lambda m: condition(m, "Reconciling").get("status") == "True",
        "monitor good testing for the first time",
        timeout=30,
    )
    save(first, "first-test.yaml")
    argo, ks = seen(first)
    assert argo["status"] == "Progressing" and argo["message"].startswith("Unknown"), argo
    assert ks["status"] == "InProgress", ks

    # Passed: Healthy; kstatus Current.
    healthy = when(
        "monitor", "good", namespace, lambda m: (m.get("status") or {}).get("health") == "Healthy",
        "monitor good Healthy", timeout=150,
    )  # fmt: skip
    save(healthy, "healthy.yaml")
    argo, ks = seen(healthy)
    assert argo == {"status": "Healthy", "message": argo_ready_message(healthy)}, argo
    assert ks["status"] == "Current", ks

    # Its app failed the test: Degraded, naming the failure. kstatus reads the Ready condition
    # (False) as InProgress: a Flux or kpt health check waits for the target to pass again.
    failed = when(
        "monitor", "bad", namespace, lambda m: (m.get("status") or {}).get("health") == "Degraded",
        "monitor bad Degraded", timeout=150,
    )  # fmt: skip
    save(failed, "degraded.yaml")
    argo, ks = seen(failed)
    assert argo == {"status": "Degraded", "message": argo_ready_message(failed)}, argo
    assert "failOn" in argo["message"], argo
    assert ks["status"] == "InProgress" and "failOn" in ks["message"], ks

    # Suspended: Argo CD's Suspended, as for a suspended CronJob.
    kube.kubectl(
        "patch", "monitor", "bad", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    suspended = when(
        "monitor", "bad", namespace,
        lambda m: (m.get("status") or {}).get("observedGeneration") == m["metadata"]["generation"]
        and condition(m, "Ready").get("reason") == "Suspended",
        "monitor bad suspended",
    )  # fmt: skip
    save(suspended, "suspended.yaml")
    argo, ks = seen(suspended)
    assert argo == {"status": "Suspended", "message": argo_ready_message(suspended)}, argo
    assert argo["message"].startswith("Suspended: suspended (spec.suspend); "), argo
    assert ks["status"] == "InProgress" and ks["message"].startswith("suspended (spec.suspend)"), ks

    # Just edited: Progressing; kstatus InProgress.
    ahead = edited("monitor", "good", namespace, {"spec": {"interval": "PT2H"}})
    save(ahead, "generation-ahead.yaml")
    argo, ks = seen(ahead)
    assert argo["status"] == "Progressing" and "observe generation" in argo["message"], argo
    assert ks["status"] == "InProgress", ks

    # It cannot test at all (its probe Pipeline's name is taken): Stalled -> Degraded; Failed.
    stalled = when(
        "monitor", "taken", namespace, lambda m: condition(m, "Stalled").get("status") == "True",
        "monitor taken Stalled", timeout=60,
    )  # fmt: skip
    save(stalled, "stalled.yaml")
    argo, ks = seen(stalled)
    assert argo["status"] == "Degraded" and argo["message"].startswith("NameConflict: "), argo
    assert ks["status"] == "Failed", ks

    # Being deleted: Progressing with the finalizers; Terminating.
    gone = deleting(healthy, "Foreground")
    save(gone, "deleting.yaml")
    argo, ks = seen(gone)
    assert argo["status"] == "Progressing", argo
    assert argo["message"].startswith("Being deleted, waiting for the finalizers "), argo
    assert ks["status"] == "Terminating", ks
