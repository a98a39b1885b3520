"""Counting the operator's API requests where they land: the API server's priority-and-fairness
(APF) counters. Two FlowSchemas match the operator's service account, one for reads (get, list,
watch) and one for writes (create, update, patch, delete, deletecollection), and send its
requests to the same priority level the default `service-accounts` schema would (`workload-low`),
so nothing changes but the counting. `apiserver_flowcontrol_dispatched_requests_total` per
schema, read before and after, gives the operator's reads and writes: its own calls, kopf's
watches, finalizers and Events included."""

from __future__ import annotations

from typing import Any

from .kube import Kube
from .measure import flow_schema_counts

READS = "mmif-bench-operator-reads"
WRITES = "mmif-bench-operator-writes"
READ_VERBS = ["get", "list", "watch"]
WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]
PATH = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas"


def flow_schema(name: str, verbs: list[str], namespace: str, account: str) -> dict[str, Any]:
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name, "labels": {"mmif.dev/bench": "true"}},
        "spec": {
            "matchingPrecedence": 90,  # before service-accounts (9000)
            "priorityLevelConfiguration": {"name": "workload-low"},
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "serviceAccount": {"namespace": namespace, "name": account},
                        }
                    ],
                    "resourceRules": [
                        {
                            "verbs": verbs,
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                    "nonResourceRules": [{"verbs": verbs, "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


async def install(kube: Kube, namespace: str = "mmif-system", account: str = "mmif-operator") -> None:
    for name, verbs in ((READS, READ_VERBS), (WRITES, WRITE_VERBS)):
        await kube.call("DELETE", f"{PATH}/{name}", allow=(404,))
        await kube.call("POST", PATH, body=flow_schema(name, verbs, namespace, account))


async def remove(kube: Kube) -> None:
    for name in (READS, WRITES):
        await kube.call("DELETE", f"{PATH}/{name}", allow=(404,))


async def counts(kube: Kube) -> tuple[float, float]:
    """(reads, writes) the operator's service account made so far (since the API server started
    or the schemas were installed)."""
    status, raw = await kube.raw("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics: {status}")
    by_schema = flow_schema_counts(raw.decode("utf-8", "replace"))
    return by_schema.get(READS, 0.0), by_schema.get(WRITES, 0.0)
