"""Nothing hangs silently, end to end on the real cluster: every wait a run or an AnalysisJob can
get stuck in is bounded, and the reason is on the object (the `Succeeded` condition, the failed
item in `status.failures` and the manifest), with the kubelet's, the scheduler's or the API
server's message. Each test sets small bounds (`startupTimeoutSeconds`, `startTimeoutSeconds`)
so it takes seconds, asserts the time it took, and keeps a healthy run beside the broken one to
show that nothing else is affected.

Issue 10, case 5: a missing or malformed image; a step `port` the app does not listen on; a
namespace enforcing the `restricted` Pod Security level; the PVC deleted mid-run;
`workspace.mountPath: /tmp`; an AnalysisJob whose subPath the kubelet refuses; a run whose
Pipeline or volume is missing or whose Pipeline is not Ready. And the documented `kubectl wait`
that returns when a run ends either way (point 9).
"""

from __future__ import annotations

import json
import posixpath
import shlex
import subprocess
import time

import pytest

from tests import kube

pytestmark = pytest.mark.cluster

MISSING_IMAGE = "mmif.local/does-not-exist:dev"  # never loaded; nothing can be pulled here
MALFORMED_IMAGE = "mmif.local/Not-A-Valid-Name:dev"  # upper case: the kubelet cannot parse it
# What the README and docs/howto.md tell users to run (minus the object name and timeout).
DOCUMENTED_WAIT = "kubectl wait --for=jsonpath='{.status.completionTime}' pipelinerun/%s --timeout=%s"


# --- helpers ------------------------------------------------------------------------------------


def condition(obj: dict, type_: str = "Succeeded") -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == type_), {})


def finished(runs, namespace: str, name: str, within: float) -> tuple[dict, float]:
    """The run once it ended, and how long that took from now."""
    start = time.monotonic()
    run = runs.wait_to_finish(namespace, name, timeout=within)
    return run, time.monotonic() - start


def ended(runs, namespace: str, run: dict, status: str, reason: str) -> dict:
    cond = condition(run)
    assert (cond.get("status"), cond.get("reason")) == (status, reason), (
        f"{run['metadata']['name']}: {cond}\n{runs.diagnostics(namespace, run['metadata']['name'])}"
    )
    assert run["status"].get("completionTime"), run["status"]
    return cond


def only_failure(run: dict) -> dict:
    failures = run["status"].get("failures") or []
    assert len(failures) == 1, failures
    return failures[0]


def manifest_items(workspace, run: dict) -> list[dict]:
    return json.loads(workspace.read_file(run["status"]["manifestPath"]))["items"]


def healthy_run(build, workspace, namespace: str, name: str = "healthy", **spec) -> None:
    """A one-step textgen run beside the broken one: it must succeed as usual."""
    workspace.write_media({"media/ok.mp4": "fine\n"})
    build.apply(
        build.pipeline(
            f"{name}-pipe", [build.step("transcript", "textgen")], claim_name=workspace.claim_name
        ),
        namespace,
    )
    build.apply(
        build.run(
            name, f"{name}-pipe", [build.item("media/ok.mp4")], claim_name=workspace.claim_name, **spec
        ),
        namespace,
    )


def assert_healthy(runs, namespace: str, name: str = "healthy") -> None:
    run = runs.wait_to_finish(namespace, name, timeout=180)
    ended(runs, namespace, run, "True", "Succeeded")


# --- 1. a missing or a malformed image in a Job-mode step --------------------------------------


def test_a_missing_or_malformed_image_fails_its_item_with_the_kubelets_reason(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/a.mp4": "a\n"})
    build.apply(
        build.pipeline(
            "missing",
            [{"name": "asr", "image": MISSING_IMAGE, "startupTimeoutSeconds": 8}],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    # A bound of 10 minutes: an image name that can never work must not wait for it.
    build.apply(
        build.pipeline(
            "malformed",
            [{"name": "asr", "image": MALFORMED_IMAGE, "startupTimeoutSeconds": 600}],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    for name in ("missing", "malformed"):
        build.apply(
            build.run(
                f"{name}-run", name, [build.item("media/a.mp4", name="a")], claim_name=workspace.claim_name
            ),
            namespace,
        )
    healthy_run(build, workspace, namespace)

    run, took = finished(runs, namespace, "missing-run", within=120)
    ended(runs, namespace, run, "False", "ItemsFailed")
    failure = only_failure(run)
    assert (failure["item"], failure["step"], failure["reason"]) == ("a", "asr", "ImagePullFailed"), failure
    assert MISSING_IMAGE in failure["message"] and "not started within 8 s" in failure["message"], failure
    assert "ErrImagePull" in failure["message"] or "ImagePullBackOff" in failure["message"], failure
    (entry,) = manifest_items(workspace, run)
    assert (entry["state"], entry["failedStep"], entry["reason"]) == ("Failed", "asr", "ImagePullFailed"), (
        entry
    )
    assert MISSING_IMAGE in entry["message"]
    assert took < 90, took  # 8 s bound + a look + the manifest Job

    run, took = finished(runs, namespace, "malformed-run", within=120)
    ended(runs, namespace, run, "False", "ItemsFailed")
    failure = only_failure(run)
    assert failure["reason"] == "ImagePullFailed" and "InvalidImageName" in failure["message"], failure
    assert took < 90, took  # at the first look, not after 600 s
    assert not kube.get_list("jobs", namespace, "mmif.dev/run=missing-run,app.kubernetes.io/component=step")
    assert_healthy(runs, namespace)


# --- 2. a step port the app does not listen on ---------------------------------------------------


def test_a_port_the_app_does_not_listen_on_fails_with_app_not_listening(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/a.mp4": "a\n"})
    # The test apps listen on 5000; the step says 5001.
    build.apply(
        build.pipeline(
            "deaf",
            [build.step("asr", "textgen", port=5001, startupTimeoutSeconds=8)],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.run("deaf-run", "deaf", [build.item("media/a.mp4", name="a")], claim_name=workspace.claim_name),
        namespace,
    )
    healthy_run(build, workspace, namespace)

    run, took = finished(runs, namespace, "deaf-run", within=120)
    ended(runs, namespace, run, "False", "ItemsFailed")
    failure = only_failure(run)
    assert failure["reason"] == "AppNotListening", failure
    assert failure["message"].startswith("nothing listened on port 5001 within 8 s"), failure
    (entry,) = manifest_items(workspace, run)
    assert (entry["reason"], entry["failedStep"]) == ("AppNotListening", "asr"), entry
    # Exit 7 is final: one pod, not `retries` + 1 of them waiting in turn.
    pods = [
        e
        for e in kube.get_list("events", namespace)
        if e.get("reason") == "SuccessfulCreate" and e["involvedObject"]["name"] == "deaf-run-00000-0"
    ]
    assert sum(int(e.get("count") or 1) for e in pods) == 1, pods
    assert took < 90, took
    assert_healthy(runs, namespace)


# --- 3. a namespace enforcing the restricted Pod Security level ---------------------------------


def test_a_restricted_namespace_fails_the_item_with_the_pod_security_message(
    operator_deployed, namespace, build, runs, request
):
    kube.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    workspace = request.getfixturevalue("workspace")  # its helper pod is restricted-compliant
    workspace.write_media({"media/a.mp4": "a\n"})
    # The app runs as its image's user: the Job controller may not create the pod.
    build.apply(
        build.pipeline(
            "loose", [build.step("asr", "textgen", startupTimeoutSeconds=8)], claim_name=workspace.claim_name
        ),
        namespace,
    )
    build.apply(
        build.run(
            "loose-run", "loose", [build.item("media/a.mp4", name="a")], claim_name=workspace.claim_name
        ),
        namespace,
    )
    # The same app as a non-root user passes `restricted` (docs/howto.md): it runs.
    build.apply(
        build.pipeline(
            "strict",
            [build.step("asr", "textgen", runAsUser=65532, runAsNonRoot=True)],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.run(
            "strict-run", "strict", [build.item("media/a.mp4", name="a")], claim_name=workspace.claim_name
        ),
        namespace,
    )

    run, took = finished(runs, namespace, "loose-run", within=120)
    ended(runs, namespace, run, "False", "ItemsFailed")
    failure = only_failure(run)
    assert failure["reason"] == "PodCreateFailed", failure
    assert 'violates PodSecurity "restricted:latest"' in failure["message"], failure
    assert "runAsNonRoot != true" in failure["message"] and "made no pod within 8 s" in failure["message"]
    (entry,) = manifest_items(workspace, run)
    assert entry["reason"] == "PodCreateFailed" and "restricted:latest" in entry["message"], entry
    assert took < 90, took
    strict = runs.wait_to_finish(namespace, "strict-run", timeout=180)
    ended(runs, namespace, strict, "True", "Succeeded")


# --- 4. the volume deleted mid-run --------------------------------------------------------------


def test_a_volume_deleted_mid_run_fails_the_waiting_items_and_ends_the_run(
    operator_deployed, namespace, workspace, build, runs
):
    from tests.e2e.conftest import write_media

    workspace.write_media({"media/a.mp4": "a\n", "media/b.mp4": "b\n"})
    build.apply(
        build.pipeline(
            "napper",
            [build.step("nap", "sleeper", parameters={"seconds": "6"}, startupTimeoutSeconds=12)],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.run(
            "doomed",
            "napper",
            [build.item("media/a.mp4", name="a"), build.item("media/b.mp4", name="b")],
            claim_name=workspace.claim_name,
            parallelism=1,
            startTimeoutSeconds=15,
        ),
        namespace,
    )
    # Another run of the namespace, on a volume of its own, is not affected.
    build.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "other"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        namespace,
    )
    write_media(namespace, {"media/ok.mp4": "ok\n"}, claim_name="other")
    build.apply(
        build.pipeline("other-pipe", [build.step("transcript", "textgen")], claim_name="other"), namespace
    )

    def first_item_running():
        pods = kube.get_list("pods", namespace, "mmif.dev/run=doomed,app.kubernetes.io/component=step")
        return [
            p
            for p in pods
            if any(
                cs["name"] == "runner" and cs.get("state", {}).get("running")
                for cs in p.get("status", {}).get("containerStatuses") or []
            )
        ]

    kube.eventually(first_item_running, timeout=120, what="item a of run doomed running")
    kube.kubectl("delete", "pvc", workspace.claim_name, "-n", namespace, "--wait=false")
    build.apply(
        build.run("other-run", "other-pipe", [build.item("media/ok.mp4")], claim_name="other"), namespace
    )

    # The PVC stays Terminating while pods use it; new pods cannot be scheduled onto it. Item b
    # fails after its 12 s, the manifest Job after the run's 15 s: the run ends, saying why.
    run, took = finished(runs, namespace, "doomed", within=150)
    cond = ended(runs, namespace, run, "False", "ManifestFailed")
    assert "not scheduled within 15 s" in cond["message"] and workspace.claim_name in cond["message"], cond
    failure = only_failure(run)
    assert (failure["item"], failure["reason"]) == ("b", "Unschedulable"), failure
    assert f'persistentvolumeclaim "{workspace.claim_name}"' in failure["message"], failure
    assert run["status"]["itemsSucceeded"] == 1, run["status"]  # item a had its volume: it finished
    assert took < 120, took
    other = runs.wait_to_finish(namespace, "other-run", timeout=180)
    ended(runs, namespace, other, "True", "Succeeded")


# --- 5. a reserved mountPath is refused at admission, with the field named -----------------------


def test_a_reserved_mount_path_is_refused_with_the_field_named(operator_deployed, namespace, build):
    # /tmp was a 422 on every Job create, the run "preparing the batch" for ever: now the API
    # server refuses the run (and the Pipeline) itself, naming the field.
    start = time.monotonic()
    for mount_path in ("/tmp", "/tmp/media", "/var", "/etc/data", "/", "/opt", "/data/", "//tmp"):
        run = build.run("r", "p", [build.item("media/a.mp4")])
        run["spec"]["workspace"]["mountPath"] = mount_path
        pipeline = build.pipeline("p", [build.step("asr", "textgen")])
        pipeline["spec"]["workspace"]["mountPath"] = mount_path
        for obj in (run, pipeline):
            proc = kube.kubectl(
                "create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False
            )
            assert proc.returncode != 0, f"{obj['kind']} with mountPath {mount_path} was accepted"
            assert "spec.workspace.mountPath" in proc.stderr, proc.stderr
            assert (
                "must not be one of the folders the pods need" in proc.stderr
                or "must be a clean absolute path" in proc.stderr
            ), proc.stderr
    for mount_path in ("/data", "/mnt/media", "/tmpdata"):
        ok = build.run("fine", "p", [build.item("media/a.mp4")])
        ok["spec"]["workspace"]["mountPath"] = mount_path
        kube.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(ok))
    assert not kube.get_list("pipelineruns", namespace)
    assert time.monotonic() - start < 60


# --- 6. an AnalysisJob whose subPath the kubelet refuses -----------------------------------------


def test_an_analysis_whose_subpath_the_kubelet_refuses_fails_with_the_kubelets_message(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/a.mp4": "a\n"})
    build.apply(
        build.pipeline("plain", [build.step("transcript", "textgen")], claim_name=workspace.claim_name),
        namespace,
    )
    for name in ("source", "control"):
        build.apply(
            build.run(name, "plain", [build.item("media/a.mp4", name="a")], claim_name=workspace.claim_name),
            namespace,
        )
    source = runs.wait_to_finish(namespace, "source", timeout=180)
    ended(runs, namespace, source, "True", "Succeeded")
    control = runs.wait_to_finish(namespace, "control", timeout=180)
    # Someone with write access to the volume turns the run's analyses folder into a symlink out
    # of the volume: the kubelet refuses to create the AnalysisJob's subPath through it.
    from tests.e2e.conftest import ensure_volume_pod

    helper = ensure_volume_pod(namespace, workspace.claim_name)
    kube.kubectl(
        "exec",
        helper,
        "-n",
        namespace,
        "--",
        "ln",
        "-s",
        "/",
        posixpath.join(source["status"]["outputPath"], "analyses"),
    )

    def analysis(name, run):
        return {
            "apiVersion": "mmif.dev/v1alpha1",
            "kind": "AnalysisJob",
            "metadata": {"name": name},
            "spec": {
                "runRef": {"name": run},
                "app": {"image": build.app_image("timeframes"), "startupTimeoutSeconds": 8},
            },
        }

    build.apply(analysis("refused", "source"), namespace)
    build.apply(analysis("fine", control["metadata"]["name"]), namespace)

    def over(name):
        aj = kube.get("analysisjob", name, namespace)
        return aj if condition(aj).get("status") in ("True", "False") else None

    start = time.monotonic()
    aj = kube.eventually(lambda: over("refused"), timeout=150, interval=2, what="analysisjob/refused to end")
    took = time.monotonic() - start
    cond = condition(aj)
    # Its item fails after 8 s; its manifest Job cannot mount the folder either, so it ends
    # ManifestFailed after 8 s more: both say what the kubelet said.
    assert cond["status"] == "False" and cond["reason"] == "ManifestFailed", aj["status"]
    (failure,) = aj["status"]["failures"]
    assert failure["reason"] == "MountFailed" and "subPath" in failure["message"], failure
    assert "not started within 8 s" in cond["message"] and "subPath" in cond["message"], cond
    assert took < 120, took
    fine = kube.eventually(lambda: over("fine"), timeout=150, interval=2, what="analysisjob/fine to end")
    assert condition(fine)["status"] == "True", fine["status"]


# --- 7. a run whose Pipeline or volume is missing, or whose Pipeline is not Ready ----------------


def test_a_run_waits_for_its_pipeline_volume_and_readiness_for_a_bounded_time_then_fails_with_why(
    operator_deployed, namespace, workspace, build, runs
):
    workspace.write_media({"media/a.mp4": "a\n"})
    # A Service-mode step whose image cannot be pulled: the Pipeline never becomes Ready.
    build.apply(
        build.pipeline(
            "unready",
            [{"name": "asr", "image": MISSING_IMAGE, "mode": "Service"}],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.pipeline("ready", [build.step("transcript", "textgen")], claim_name=workspace.claim_name),
        namespace,
    )
    bound = {"startTimeoutSeconds": 20}
    for name, pipeline, claim in (
        ("no-pipeline", "nowhere", workspace.claim_name),
        ("no-volume", "ready", "nowhere"),
        ("not-ready", "unready", workspace.claim_name),
        ("on-time", "ready", workspace.claim_name),
    ):
        build.apply(
            build.run(name, pipeline, [build.item("media/a.mp4")], claim_name=claim, **bound), namespace
        )

    expected = {
        "no-pipeline": ("PipelineNotFound", "Pipeline 'nowhere' not found in namespace"),
        "no-volume": ("WorkspaceNotFound", "PersistentVolumeClaim 'nowhere' not found in namespace"),
        "not-ready": ("PipelineNotReady", "Pipeline 'unready' is not Ready: "),
    }
    # While waiting, each says what for and until when.
    for name, (reason, what) in expected.items():

        def waiting(name=name, reason=reason):
            cond = condition(kube.get("pipelinerun", name, namespace))
            return cond if (cond.get("status"), cond.get("reason")) == ("Unknown", reason) else None

        cond = kube.eventually(waiting, timeout=15, what=f"run {name} waiting with {reason}")
        assert (
            what in cond["message"]
            and "(spec.startTimeoutSeconds 20 s), then the run fails" in cond["message"]
        )
    # Then each fails with that reason, once its 20 s are over (counted from its creation).
    for name, (reason, what) in expected.items():
        run = runs.wait_to_finish(namespace, name, timeout=60)
        cond = ended(runs, namespace, run, "False", reason)
        assert (
            what in cond["message"]
            and "for 20 s (spec.startTimeoutSeconds): the run gave up" in cond["message"]
        )
        waited = _time(run["status"]["completionTime"]) - _time(run["metadata"]["creationTimestamp"])
        assert 19 <= waited <= 50, (name, waited)
        assert not kube.get_list("jobs", namespace, f"mmif.dev/run={name}")
    # The Pipeline says why it is not Ready; the run's message carries it.
    assert condition(kube.get("pipeline", "unready", namespace), "Ready")["status"] == "False"
    on_time = runs.wait_to_finish(namespace, "on-time", timeout=180)
    ended(runs, namespace, on_time, "True", "Succeeded")


def _time(text: str) -> float:
    from datetime import datetime

    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").timestamp()


# --- point 9: the documented `kubectl wait` returns when a run fails ----------------------------


def test_the_documented_kubectl_wait_returns_promptly_when_a_run_fails(operator_deployed, namespace, build):
    build.apply(build.run("lost", "nowhere", [build.item("media/a.mp4")], startTimeoutSeconds=5), namespace)
    command = DOCUMENTED_WAIT % ("lost", "120s") + " -o jsonpath='{.status.phase}'"
    start = time.monotonic()
    proc = subprocess.run(
        [*shlex.split(command), "-n", namespace], capture_output=True, text=True, timeout=150
    )
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Failed", proc.stdout
    assert took < 40, took  # the 5 s bound and a pass, not the 120 s timeout
    # `--for=condition=Succeeded` (what the README used to show) would still be waiting.
    proc = subprocess.run(
        ["kubectl", "wait", "--for=condition=Succeeded", "pipelinerun/lost", "-n", namespace, "--timeout=3s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "timed out" in proc.stderr, (proc.returncode, proc.stderr)
