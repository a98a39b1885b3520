"""The benchmark's namespace: a volume holding the batch file, the Pipeline whose steps land on
kwok nodes, and the PipelineRun body. Steps run nowhere (kwok only pretends), so the batch's
single document is never read by an app; the prepare and manifest Jobs do run, on the real node."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from .kube import ApiError, Kube

CLAIM = "media"
MEDIA = "bench/media/item.mp4"
PIPELINE = "bench"
STEP_URL = "http://bench-app.invalid:5000"  # Service mode with url: the step pod is the runner alone
KWOK_PLACEMENT = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [
        {"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}
    ],
}
BENCH_LABEL = {"mmif.dev/bench": "true"}


STEP_MODES = ("Service", "Warm")
WARM_IMAGE = "mmif.local/bench-app:never-pulled"  # kwok pretends to run it


def pipeline_spec(steps: int, step_mode: str = "Service") -> dict[str, Any]:
    """S steps on the kwok nodes: Service mode with `url` (no app object at all), or Job mode with
    `warm: true` (each run's pool: a Deployment, Service and NetworkPolicy per step, its pods on
    kwok nodes too). Either way the item's pod holds only the runner and the steps share it."""
    # `analyses: []` spelled out: the CRD's CEL rule on spec.analyses fails with "no such key"
    # when the field is absent (it has no default in the schema).
    if step_mode == "Warm":
        app: dict[str, Any] = {"mode": "Job", "image": WARM_IMAGE, "warm": True}
    else:
        app = {"mode": "Service", "url": STEP_URL}
    return {
        "steps": [{"name": f"s{k + 1}", **app, **KWOK_PLACEMENT} for k in range(steps)],
        "analyses": [],
    }


def items_path(n: int) -> str:
    return f"bench/items-{n}.jsonl"


def run_spec(n: int, parallelism: int) -> dict[str, Any]:
    return {
        "pipelineRef": {"name": PIPELINE},
        "workspace": {"claimName": CLAIM},
        "itemsFrom": {"path": items_path(n)},
        "parallelism": min(parallelism, n),
    }


def run_body(name: str, n: int, parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": "mmif.dev/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "labels": dict(BENCH_LABEL)},
        "spec": run_spec(n, parallelism),
    }


async def create_namespace(kube: Kube, name: str) -> None:
    await kube.call(
        "POST",
        "/api/v1/namespaces",
        body={
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(BENCH_LABEL)},
        },
    )


async def delete_namespace(kube: Kube, name: str, timeout: float = 600) -> None:
    """Delete and wait until it is gone (its Jobs, pods and runs with it)."""
    await kube.call("DELETE", f"/api/v1/namespaces/{name}", allow=(404,))
    deadline = time.monotonic() + timeout
    while await kube.get(f"/api/v1/namespaces/{name}") is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"namespace {name} is still there after {timeout:.0f}s")
        await asyncio.sleep(1)


async def clear_events(kube: Kube, namespace: str, timeout: float = 900) -> int:
    """Delete the namespace's Events and wait until they are gone; how many there were. Run
    between scenarios, so that each starts on the same cluster: 10,000 items leave ~20,000-60,000
    Events behind (the Job controller's, the scheduler's, the operator's), which live an hour.
    Deleting ~56,000 takes the API server longer than its request timeout (a 504, the deletion
    going on): the call is made again until none is left, within `timeout`."""
    path = f"/api/v1/namespaces/{namespace}/events"

    async def left() -> int:
        listed = await kube.call("GET", path, params={"limit": 1})
        return int((listed.get("metadata") or {}).get("remainingItemCount") or 0) + len(
            listed.get("items") or ()
        )

    count = remaining = await left()
    deadline = time.monotonic() + timeout
    while remaining:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Events of {namespace} are still there after {timeout:.0f}s")
        status, raw = await kube.raw("DELETE", path, timeout=180)  # longer than the server's 60 s
        if status >= 400 and status not in (404, 504):
            raise RuntimeError(f"deleting the Events of {namespace}: HTTP {status} {raw[:200]!r}")
        remaining = await left()
    return count


async def volume_dir(kube: Kube, namespace: str, timeout: float = 120) -> str:
    """Create the claim, wait until bound; the PV's directory on this machine (local-path in
    shared-filesystem mode: a directory under /var/lib/mmif-cluster/volumes)."""
    await kube.call(
        "POST",
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        body={
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    deadline = time.monotonic() + timeout
    while True:
        pvc = await kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{CLAIM}") or {}
        volume = (pvc.get("spec") or {}).get("volumeName")
        if (pvc.get("status") or {}).get("phase") == "Bound" and volume:
            pv = await kube.get(f"/api/v1/persistentvolumes/{volume}") or {}
            spec = pv.get("spec") or {}
            path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
            if not path or not os.path.isdir(path):
                raise RuntimeError(f"PV {volume}: no directory on this machine ({path!r})")
            return path
        if time.monotonic() > deadline:
            raise RuntimeError(f"claim {CLAIM} not bound after {timeout:.0f}s")
        await asyncio.sleep(0.5)


def write_batches(root: str, sizes: list[int]) -> None:
    """One tiny media file and, per size, a JSONL batch of items naming it."""
    media = os.path.join(root, MEDIA)
    os.makedirs(os.path.dirname(media), exist_ok=True)
    with open(media, "wb") as f:
        f.write(b"\0" * 16)
    for n in sizes:
        with open(os.path.join(root, items_path(n)), "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(
                    json.dumps(
                        {"name": f"item-{i:05d}", "documents": [{"location": MEDIA, "mimeType": "video/mp4"}]}
                    )
                    + "\n"
                )
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "bench")):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


async def create_pipeline(kube: Kube, namespace: str, steps: int, step_mode: str = "Service") -> None:
    created = await kube.call(
        "POST",
        f"/apis/mmif.dev/v1alpha1/namespaces/{namespace}/pipelines",
        body={
            "apiVersion": "mmif.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": PIPELINE, "labels": dict(BENCH_LABEL)},
            "spec": pipeline_spec(steps, step_mode),
        },
    )
    if not all(s.get("tolerations") for s in created["spec"]["steps"]):
        # The API server pruned the field: the CRDs installed are older than this checkout's, and
        # step pods would run on the real node. `make bench` deploys this checkout first.
        raise RuntimeError(
            "the installed Pipeline CRD has no steps[].tolerations: deploy this checkout "
            "(make deploy, or run make bench)"
        )


async def leftover_bench_namespaces(kube: Kube) -> list[str]:
    data = await kube.call("GET", "/api/v1/namespaces", params={"labelSelector": "mmif.dev/bench=true"})
    return [ns["metadata"]["name"] for ns in data.get("items") or []]


__all__ = ["ApiError"]
