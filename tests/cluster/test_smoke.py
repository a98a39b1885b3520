"""The local cluster does what the operator relies on, for real: Jobs run locally built images,
volumes are shared between pods, Services resolve by DNS name, CRDs validate with CEL and have a
status subresource, and pod logs can be read."""

import json

import pytest

from tests import kube

BASE_IMAGE = "mmif.local/debian-python:bookworm"
pytestmark = pytest.mark.cluster

SECURE = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_spec(command: list[str], volumes: list | None = None, mounts: list | None = None) -> dict:
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "main",
                "image": BASE_IMAGE,
                "imagePullPolicy": "Never",
                "command": command,
                "securityContext": SECURE,
                "volumeMounts": mounts or [],
            }
        ],
        "volumes": volumes or [],
    }


def test_a_job_writes_to_a_volume_that_a_second_pod_reads(namespace):
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "shared"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Mi"}}},
        },
        namespace,
    )
    vol = [{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}]
    mnt = [{"name": "data", "mountPath": "/data"}]
    kube.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "writer"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": pod_spec(
                        ["python3", "-c", "open('/data/hello.txt','w').write('written by a job')"], vol, mnt
                    )
                },
            },
        },
        namespace,
    )
    kube.wait("job/writer", "condition=Complete", namespace)

    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "reader"},
            "spec": pod_spec(["cat", "/data/hello.txt"], vol, mnt),
        },
        namespace,
    )
    kube.wait("pod/reader", "jsonpath={.status.phase}=Succeeded", namespace)
    assert kube.kubectl("logs", "reader", "-n", namespace).stdout == "written by a job"


# kube-proxy programs a new endpoint within about a second of it becoming ready: a client retries.
CLIENT = """
import time, urllib.request
for attempt in range(30):
    try:
        print(urllib.request.urlopen('{url}', timeout=5).read().decode()); break
    except OSError:
        time.sleep(1)
else:
    raise SystemExit('service never answered')
"""


def test_a_service_is_reachable_by_its_dns_name_from_another_pod(namespace):
    kube.apply(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            **pod_spec(
                                [
                                    "sh",
                                    "-c",
                                    "mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html"
                                    " && cd /tmp/www && exec python3 -m http.server 8080",
                                ]
                            ),
                            "restartPolicy": "Always",
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        ],
        namespace,
    )
    kube.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s", timeout=150)

    url = f"http://web.{namespace}.svc.cluster.local/"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client"},
            "spec": pod_spec(["python3", "-c", CLIENT.format(url=url)]),
        },
        namespace,
    )
    kube.wait("pod/client", "jsonpath={.status.phase}=Succeeded", namespace)
    assert kube.kubectl("logs", "client", "-n", namespace).stdout.strip() == "hello-from-web"


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.mmif.dev"},
    "spec": {
        "group": "smoke.mmif.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.min <= self.max",
                                        "message": "spec.min must not exceed spec.max",
                                    }
                                ],
                            },
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


def test_a_crd_rejects_a_bad_object_with_its_cel_message_and_has_a_status_subresource(namespace):
    kube.apply(CRD)
    kube.wait("crd/widgets.smoke.mmif.dev", "condition=Established", "default")

    bad = kube.apply(
        {
            "apiVersion": "smoke.mmif.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "bad"},
            "spec": {"min": 5, "max": 1},
        },
        namespace,
        check=False,
    )
    assert bad.returncode != 0
    assert "spec.min must not exceed spec.max" in bad.stderr

    kube.apply(
        {
            "apiVersion": "smoke.mmif.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "good"},
            "spec": {"min": 1, "max": 5},
        },
        namespace,
    )
    kube.kubectl(
        "patch",
        "widget",
        "good",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Ready"}}),
    )
    widget = kube.get("widget", "good", namespace)
    assert widget["status"] == {"phase": "Ready"}
    # status is a subresource: a write to the main resource does not change it
    kube.kubectl(
        "patch",
        "widget",
        "good",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "X"}}),
    )
    assert kube.get("widget", "good", namespace)["status"] == {"phase": "Ready"}


def test_pod_logs_can_be_read_with_kubectl_logs(namespace):
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "talker"},
            "spec": pod_spec(["sh", "-c", "echo line-one; echo line-two"]),
        },
        namespace,
    )
    kube.wait("pod/talker", "jsonpath={.status.phase}=Succeeded", namespace)
    logs = kube.kubectl("logs", "talker", "-n", namespace).stdout.splitlines()
    assert logs == ["line-one", "line-two"]
