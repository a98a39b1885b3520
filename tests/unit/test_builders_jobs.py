"""kinds/pipelinerun/children.py, services.py, security.py: the dicts the operator sends to the API."""

from __future__ import annotations

import json

import pytest

from mmif_operator.core import labels as L
from mmif_operator.core import names, runner_input
from mmif_operator.kinds.pipeline import children as services
from mmif_operator.kinds.pipelinerun import children as jobs
from mmif_operator.runner import env as E
from mmif_operator.runner import inputs
from tests.unit import typed as T

RUN = {
    "metadata": {"name": "run-1", "namespace": "ns", "uid": "uid-1"},
    "spec": {
        "pipelineRef": {"name": "pipe"},
        "workspace": {"claimName": "media", "mountPath": "/data"},
        "items": [{"documents": [{"location": "a.mp4", "mimeType": "video/mp4"}]}],
        "params": {"asr": {"model": "large", "pretty": "false"}},
    },
}
PIPELINE = {
    "steps": [
        {
            "name": "asr",
            "image": "asr:1",
            "port": 5000,
            "parameters": {"model": "small", "pretty": "true"},
            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"nvidia.com/gpu": 1}},
            "nodeSelector": {"gpu": "yes"},
            "env": [{"name": "A", "value": "1"}],
            "timeoutSeconds": 600,
            "retries": 3,
            "runAsUser": 1000,
            "runAsNonRoot": True,
        },
        {"name": "ner", "image": "ner:1", "mode": "Service", "port": 8080, "replicas": 2},
        {"name": "ext", "mode": "Service", "url": "https://apps.example.org/ext"},
    ],
    "workspace": {"claimName": "media", "mountPath": "/data"},
}
CTX = T.ctx(RUN)
PARAMS = T.runspec(RUN["spec"]).params


def env_of(container):
    return {e["name"]: e["value"] for e in container.get("env", [])}


def check_restricted(pod_spec):
    """The `restricted` Pod Security Standard (v1.33), as far as our pods can break it."""
    assert pod_spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod_spec.get("automountServiceAccountToken") is False
    pod_non_root = pod_spec["securityContext"].get("runAsNonRoot")
    for c in pod_spec.get("initContainers", []) + pod_spec["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert not sc["capabilities"].get("add"), c["name"]
        assert sc.get("runAsNonRoot", pod_non_root) is True, c["name"]
        assert sc.get("runAsUser", 1) != 0, c["name"]
        assert not sc.get("privileged"), c["name"]
    for v in pod_spec["volumes"]:
        assert set(v) - {"name"} <= {"persistentVolumeClaim", "emptyDir", "configMap", "secret", "projected"}
    assert not pod_spec.get("hostNetwork") and not pod_spec.get("hostPID")


def test_step_job_mode_layout():
    job = jobs.step_job(CTX, PARAMS, T.pipe(PIPELINE), 7, 0, "mmif-operator:dev")
    assert job["metadata"]["name"] == names.step_job_name("run-1", 7, 0)
    assert job["metadata"]["namespace"] == "ns"
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "PipelineRun",
        "name": "run-1",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = job["metadata"]["labels"]
    assert labels[L.RUN] == "run-1" and labels[L.PIPELINE] == "pipe" and labels[L.STEP] == "asr"
    assert labels[L.ITEM_INDEX] == "7" and labels[L.STEP_INDEX] == "0" and labels[L.COMPONENT] == "step"
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    spec = job["spec"]
    assert spec["backoffLimit"] == 3
    assert spec["activeDeadlineSeconds"] == 600
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["containerName"] == "runner"
    assert {1, 3, 4, 5} <= set(rules[0]["onExitCodes"]["values"]) and 2 not in rules[0]["onExitCodes"][
        "values"
    ]
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"gpu": "yes"}
    assert pod["volumes"][0] == {"name": "workspace", "persistentVolumeClaim": {"claimName": "media"}}
    (app,) = pod["initContainers"]
    assert app["restartPolicy"] == "Always" and app["image"] == "asr:1"
    # No startupProbe: the runner starts beside the app and waits for its port itself, bounded by
    # the step's startupTimeoutSeconds (a probe would keep a pod whose app never listens in Init).
    assert "startupProbe" not in app and app["ports"][0]["containerPort"] == 5000
    assert app["resources"] == PIPELINE["steps"][0]["resources"]
    assert {"name": "workspace", "mountPath": "/data", "readOnly": True} in app["volumeMounts"]
    assert env_of(app) == {"A": "1", "CLAMS_GUNICORN_WORKERS": "1"}
    assert app["securityContext"]["runAsUser"] == 1000 and app["securityContext"]["runAsNonRoot"] is True
    (runner,) = pod["containers"]
    assert runner["name"] == "runner" and runner["image"] == "mmif-operator:dev"
    assert runner["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert runner["resources"]["limits"]["memory"]
    assert {"name": "workspace", "mountPath": "/data"} in runner["volumeMounts"]
    assert runner["securityContext"]["runAsUser"] == 65532 and runner["securityContext"]["runAsNonRoot"]
    env = env_of(runner)
    assert env[E.APP_URL] == "http://127.0.0.1:5000"
    assert json.loads(env[E.APP_PARAMS]) == {"model": "large", "pretty": "false"}
    assert env[E.ITEM_INDEX] == "7" and env[E.STEP_INDEX] == "0"
    assert env[E.STEPS] == "asr,ner,ext"
    assert env[E.RUN_DIR] == "/data/mmif-runs/run-1" and env[E.WORKSPACE] == "/data"
    assert env[E.RUN_UID] == "uid-1"
    assert env[E.APP_STARTUP_TIMEOUT] == "900"  # the model's default startupTimeoutSeconds
    assert {1, 3, 4, 5, 6, 7} == set(rules[0]["onExitCodes"]["values"])  # 7: AppNotListening, final
    check_restricted(pod)


def test_job_is_json_serialisable():
    for job in (jobs.step_job(CTX, PARAMS, T.pipe(PIPELINE), 0, k, "img") for k in range(3)):
        json.dumps(job)


def test_step_job_service_mode_and_url():
    svc_job = jobs.step_job(CTX, PARAMS, T.pipe(PIPELINE), 0, 1, "img")
    pod = svc_job["spec"]["template"]["spec"]
    assert "initContainers" not in pod and len(pod["containers"]) == 1
    assert (
        env_of(pod["containers"][0])[E.APP_URL]
        == f"http://{names.app_service_name('pipe', 'ner')}.ns.svc:8080"
    )
    assert svc_job["spec"]["backoffLimit"] == 2 and "activeDeadlineSeconds" not in svc_job["spec"]
    check_restricted(pod)
    url_job = jobs.step_job(CTX, PARAMS, T.pipe(PIPELINE), 0, 2, "img")
    assert (
        env_of(url_job["spec"]["template"]["spec"]["containers"][0])[E.APP_URL]
        == "https://apps.example.org/ext"
    )


def test_root_app_is_not_forced_non_root():
    spec = {"steps": [{"name": "a", "image": "a:1"}]}
    pod = jobs.step_job(CTX, PARAMS, T.pipe(spec), 0, 0, "img")["spec"]["template"]["spec"]
    sc = pod["initContainers"][0]["securityContext"]
    assert "runAsUser" not in sc and "runAsNonRoot" not in sc
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    with pytest.raises(AssertionError):
        check_restricted(pod)


def config_map_payload(cm, key):
    import base64

    return base64.b64decode(cm["binaryData"][key])


def read_mounted(job, cm, tmp_path):
    """The runner's view: the file the Job's env names, with the ConfigMap's key as its content."""
    pod = job["spec"]["template"]["spec"]
    runner = pod["containers"][0]
    [volume] = [v for v in pod["volumes"] if v["name"] == runner_input.VOLUME]
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    [mnt] = [m for m in runner["volumeMounts"] if m["name"] == runner_input.VOLUME]
    assert mnt["readOnly"] is True and mnt["mountPath"] == runner_input.MOUNT_PATH
    [key] = cm["binaryData"]
    path = tmp_path / key
    path.write_bytes(config_map_payload(cm, key))
    return key, str(path)


def test_prepare_reads_inline_items_from_a_configmap_owned_by_the_run_never_the_environment(tmp_path):
    [cm] = jobs.prepare_inputs(CTX, T.runspec(RUN["spec"]))
    prep = jobs.prepare_job(CTX, T.runspec(RUN["spec"]), "img")
    assert prep["metadata"]["name"] == "run-1-prepare"
    assert prep["metadata"]["labels"][L.COMPONENT] == "prepare"
    runner = prep["spec"]["template"]["spec"]["containers"][0]
    assert runner["command"] == ["mmif-runner", "prepare"]
    assert cm["metadata"]["name"] == "run-1-items-uid1" and cm["immutable"] is True
    assert cm["metadata"]["ownerReferences"] == [CTX.owner_reference()]
    assert cm["metadata"]["labels"][L.RUN] == "run-1" and cm["metadata"]["labels"][L.MANAGED_BY] == L.MANAGER
    key, path = read_mounted(prep, cm, tmp_path)
    assert env_of(runner)[E.ITEMS_FILE] == f"{runner_input.MOUNT_PATH}/{key}"
    assert inputs.read(path, CTX.uid, "items")["items"] == RUN["spec"]["items"]
    check_restricted(prep["spec"]["template"]["spec"])
    # 1,000 items of 6 documents: nothing of them in the environment
    big = [
        {
            "name": f"item-{i}",
            "documents": [{"location": f"videos/{i:05d}-{d}.mp4", "mimeType": "video/mp4"} for d in range(6)],
        }
        for i in range(1000)
    ]
    big_job = jobs.prepare_job(CTX, T.runspec({**RUN["spec"], "items": big}), "img")
    assert len(json.dumps(big_job["spec"]["template"]["spec"]["containers"][0]["env"])) < 2000
    [big_cm] = jobs.prepare_inputs(CTX, T.runspec({**RUN["spec"], "items": big}))
    assert inputs.read(read_mounted(big_job, big_cm, tmp_path)[1], CTX.uid, "items")["items"] == big
    from_file = jobs.prepare_job(
        CTX, T.runspec({**RUN["spec"], "items": None, "itemsFrom": {"path": "b.jsonl"}}), "img"
    )
    env = env_of(from_file["spec"]["template"]["spec"]["containers"][0])
    assert env[E.ITEMS_FROM] == "b.jsonl" and E.ITEMS_FILE not in env
    assert (
        jobs.prepare_inputs(CTX, T.runspec({**RUN["spec"], "items": None, "itemsFrom": {"path": "b.jsonl"}}))
        == []
    )


def test_items_that_do_not_fit_in_a_configmap_are_refused_with_the_sizes():
    import os

    # random names barely compress: 1,000 items of 4 documents with 1,000-character locations
    noise = [
        {"documents": [{"location": os.urandom(500).hex(), "mimeType": "video/mp4"} for _ in range(4)]}
        for _ in range(1000)
    ]
    with pytest.raises(
        runner_input.TooLarge,
        match=r"the 1000 inline items take \d+ bytes compressed, more than "
        r"the 1048576 bytes \(1 MiB\) a ConfigMap holds",
    ):
        jobs.prepare_inputs(CTX, T.runspec({**RUN["spec"], "items": noise}))


def test_the_manifest_job_reads_the_item_states_from_a_configmap(tmp_path):
    man = jobs.manifest_job(CTX, T.pipe(PIPELINE), "img", "Succeeded")
    [cm] = jobs.manifest_inputs(CTX, "eJwDAAAAAAE=")
    assert man["metadata"]["name"] == "run-1-manifest"
    assert man["metadata"]["labels"][L.COMPONENT] == "manifest"
    env = env_of(man["spec"]["template"]["spec"]["containers"][0])
    assert env[E.RUN_PHASE] == "Succeeded" and env[E.RUN_UID] == CTX.uid
    assert env[E.STEPS] == "asr,ner,ext"
    assert cm["metadata"]["name"] == "run-1-states-uid1"
    key, path = read_mounted(man, cm, tmp_path)
    assert env[E.ITEM_STATES_FILE] == f"{runner_input.MOUNT_PATH}/{key}"
    assert inputs.read(path, CTX.uid, "states")["itemStates"] == "eJwDAAAAAAE="
    with pytest.raises(inputs.InputFileError, match="not for 'someone-else'"):
        inputs.read(path, "someone-else", "states")
    check_restricted(man["spec"]["template"]["spec"])


def test_app_deployment_and_service():
    ctx = services.PipelineContext(name="pipe", namespace="ns", uid="p-uid")
    step = PIPELINE["steps"][1]
    dep = services.app_deployment(ctx, T.pipe(PIPELINE), T.step(step))
    assert dep["metadata"]["name"] == names.app_service_name("pipe", "ner")
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "Pipeline"
    assert dep["metadata"]["ownerReferences"][0]["controller"] is True
    assert dep["spec"]["replicas"] == 2
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert dep["metadata"]["labels"][L.PIPELINE] == "pipe" and dep["metadata"]["labels"][L.STEP] == "ner"
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["readinessProbe"]["tcpSocket"]["port"] == 8080
    assert env_of(c)["CLAMS_GUNICORN_WORKERS"] == "1"
    assert {"name": "workspace", "mountPath": "/data", "readOnly": True} in c["volumeMounts"]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "media", "readOnly": True}
    assert pod["automountServiceAccountToken"] is False
    svc = services.app_service(ctx, T.step(step))
    assert svc["metadata"]["name"] == names.app_service_name("pipe", "ner")
    assert svc["spec"]["selector"] == sel
    assert svc["spec"]["ports"][0]["port"] == 8080
    custom = services.app_deployment(
        ctx, T.pipe(PIPELINE), T.step({**step, "env": [{"name": "CLAMS_GUNICORN_WORKERS", "value": "4"}]})
    )
    assert env_of(custom["spec"]["template"]["spec"]["containers"][0]) == {"CLAMS_GUNICORN_WORKERS": "4"}
    with pytest.raises(ValueError):
        services.app_deployment(ctx, T.pipe({"steps": [step]}), T.step(step))


KWOK = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [
        {"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}
    ],
}


def test_step_placement_reaches_every_step_pod_but_not_prepare_or_manifest():
    placed = {**PIPELINE, "steps": [{**s, **KWOK} for s in PIPELINE["steps"]]}
    for k in range(3):  # Job mode (sidecar), Service mode, Service mode with url
        pod = jobs.step_job(CTX, PARAMS, T.pipe(placed), 0, k, "img")["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"type": "kwok"}, k
        assert pod["tolerations"] == KWOK["tolerations"], k
    unplaced = jobs.step_job(CTX, PARAMS, T.pipe(PIPELINE), 0, 1, "img")["spec"]["template"]["spec"]
    assert "nodeSelector" not in unplaced and "tolerations" not in unplaced
    for job in (
        jobs.prepare_job(CTX, T.runspec(RUN["spec"]), "img"),
        jobs.manifest_job(CTX, T.pipe(placed), "img", "Succeeded"),
    ):
        pod = job["spec"]["template"]["spec"]
        assert "nodeSelector" not in pod and "tolerations" not in pod
    dep = services.app_deployment(
        services.PipelineContext(name="pipe", namespace="ns", uid="u"),
        T.pipe(placed),
        T.step(placed["steps"][1]),
    )
    assert dep["spec"]["template"]["spec"]["tolerations"] == KWOK["tolerations"]
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"type": "kwok"}
