"""Security of what the operator runs, on the real cluster: step pods without a ServiceAccount token,
privilege escalation or capabilities, under RuntimeDefault seccomp, the runner as non-root; a run
uses only a Pipeline and a volume of its own namespace."""

from __future__ import annotations

import json
import uuid

import pytest

from tests import kube

pytestmark = pytest.mark.cluster

STEP_POD = "app.kubernetes.io/component=step"


def reason_of(namespace: str, name: str) -> tuple[str | None, str | None]:
    run = kube.get("pipelinerun", name, namespace)
    cond = next(
        (c for c in (run.get("status") or {}).get("conditions") or [] if c.get("type") == "Succeeded"), {}
    )
    return cond.get("status"), cond.get("reason")


def test_step_pods_run_without_token_privileges_or_root(operator_deployed, namespace, workspace, build, runs):
    workspace.write_media({"media/a.mp4": "a\n", "media/b.mp4": "b\n"})
    build.apply(
        build.pipeline(
            "guarded",
            [build.step("nap", "sleeper", parameters={"seconds": "8"})],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )
    build.apply(
        build.run(
            "watched",
            "guarded",
            [build.item("media/a.mp4"), build.item("media/b.mp4")],
            claim_name=workspace.claim_name,
        ),
        namespace,
    )

    def running_pods():
        pods = kube.get_list("pods", namespace, f"mmif.dev/run=watched,{STEP_POD}")
        return [
            p
            for p in pods
            if p.get("status", {}).get("phase") == "Running"
            and any(
                cs["name"] == "runner" and cs.get("state", {}).get("running")
                for cs in p["status"].get("containerStatuses") or []
            )
        ]

    pods = kube.eventually(running_pods, timeout=120, what="step pods of run watched running")

    for pod in pods:
        name, spec = pod["metadata"]["name"], pod["spec"]
        assert spec.get("automountServiceAccountToken") is False, name
        volumes = spec.get("volumes") or []
        assert not any("projected" in v or v["name"].startswith("kube-api-access") for v in volumes), (
            name,
            volumes,
        )
        assert spec.get("securityContext", {}).get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        containers = spec["containers"] + (spec.get("initContainers") or [])
        assert {c["name"] for c in containers} >= {"runner", "app"}, name
        for c in containers:
            sc = c.get("securityContext") or {}
            assert sc.get("allowPrivilegeEscalation") is False, (name, c["name"], sc)
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (name, c["name"], sc)
            assert not (sc.get("capabilities") or {}).get("add"), (name, c["name"], sc)
            assert not sc.get("privileged"), (name, c["name"], sc)
            mounts = [m["mountPath"] for m in c.get("volumeMounts") or []]
            assert not any(m.startswith("/var/run/secrets/kubernetes.io") for m in mounts), (
                name,
                c["name"],
                mounts,
            )
            seccomp = (sc.get("seccompProfile") or {}).get("type")
            assert seccomp in (None, "RuntimeDefault"), (name, c["name"], sc)
        runner = next(c for c in spec["containers"] if c["name"] == "runner")
        pod_sc, runner_sc = spec.get("securityContext") or {}, runner.get("securityContext") or {}
        assert runner_sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, (name, pod_sc, runner_sc)
        assert runner_sc.get("runAsUser", pod_sc.get("runAsUser")) not in (None, 0), (name, pod_sc, runner_sc)
        # What the runner process really is: a non-zero uid, and no token file to read.
        probe = (
            "import os; print(os.getuid()); "
            "print(os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount/token'))"
        )
        out = kube.kubectl(
            "exec", name, "-n", namespace, "-c", "runner", "--", "python3", "-c", probe
        ).stdout.split()
        assert out[0] != "0" and out[1] == "False", (name, out)

    run = runs.wait_to_finish(namespace, "watched", timeout=180)
    assert runs.condition(run).get("status") == "True", runs.diagnostics(namespace, "watched")


def test_a_run_cannot_use_a_pipeline_of_another_namespace(
    operator_deployed, namespace, workspace, build, runs
):
    build.apply(
        build.pipeline("only-here", [build.step("transcript", "textgen")], claim_name=workspace.claim_name),
        namespace,
    )
    other = f"{namespace[:50]}-b{uuid.uuid4().hex[:4]}"
    kube.kubectl("create", "namespace", other)
    try:
        build.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "media"},
                "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
            },
            other,
        )
        build.apply(build.run("borrower", "only-here", [build.item("media/a.mp4")]), other)
        kube.eventually(
            lambda: reason_of(other, "borrower") == ("Unknown", "PipelineNotFound"),
            timeout=60,
            what="run borrower waiting with PipelineNotFound",
        )
        run = kube.get("pipelinerun", "borrower", other)
        assert run["status"].get("phase") in (None, "Pending"), run["status"]
        assert not run["status"].get("pipelineSpec"), run["status"]
        assert not kube.get_list("jobs", other, "mmif.dev/run=borrower")
        # pipelineRef has no namespace field: the API server refuses one.
        bad = build.run("reacher", "only-here", [build.item("media/a.mp4")])
        bad["spec"]["pipelineRef"]["namespace"] = namespace
        proc = kube.kubectl("create", "-n", other, "-f", "-", input=json.dumps(bad), check=False)
        if proc.returncode != 0:
            assert "namespace" in proc.stderr, proc.stderr
        else:  # pruned silently by the structural schema: it still must not reach `namespace`
            stored = kube.get("pipelinerun", "reacher", other)
            assert "namespace" not in stored["spec"]["pipelineRef"], stored["spec"]
            kube.eventually(
                lambda: reason_of(other, "reacher") == ("Unknown", "PipelineNotFound"),
                timeout=60,
                what="run reacher waiting with PipelineNotFound",
            )
    finally:
        kube.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_a_run_waits_for_its_volume_and_proceeds_once_it_exists(operator_deployed, namespace, build, runs):
    build.apply(
        build.pipeline("later", [build.step("transcript", "textgen")], claim_name="late-media"), namespace
    )
    build.apply(
        build.run("patient", "later", [build.item("media/a.mp4")], claim_name="late-media"), namespace
    )
    kube.eventually(
        lambda: reason_of(namespace, "patient") == ("Unknown", "WorkspaceNotFound"),
        timeout=60,
        what="run patient waiting with WorkspaceNotFound",
    )
    assert not kube.get_list("jobs", namespace, "mmif.dev/run=patient")

    build.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "late-media"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        namespace,
    )
    from tests.e2e.conftest import write_media

    write_media(namespace, {"media/a.mp4": "a\n"}, claim_name="late-media")
    run = runs.wait_to_finish(namespace, "patient", timeout=180)
    cond = runs.condition(run)
    assert (cond.get("status"), cond.get("reason")) == ("True", "Succeeded"), (
        f"{cond}\n{runs.diagnostics(namespace, 'patient')}"
    )
