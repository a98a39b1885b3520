"""The console's logs panel: an item's logs, the same sections `kubectl mmif logs` prints
(results/logs.py: the step pods' containers while they exist; then the runner's log from the
volume through a reader pod, and the app's log the operator kept for a failed item-step, or why
there is none), every read made **with the person's own token**: list pods and get pods/log,
get configmaps, and the reader pod's verbs (the shipped `mmif-user` ClusterRole)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from mmif_operator.console import auth, viewer
from mmif_operator.console.identity import as_person
from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUNS
from mmif_operator.results import logs as shared
from mmif_operator.results import readerpod


class _Source:
    """results/logs.py's reads with the person's client (core/kube/ops.py over their token)."""

    def __init__(self, kube: Kube, ns: str, run: dict) -> None:
        self.kube, self.ns, self.run = kube, ns, run

    async def step_pods(self, selector: str) -> list[shared.Pod]:
        try:
            pods = await self.kube.list("Pod", self.ns, selector)
        except KubeError as e:
            raise shared.Unavailable(e.message or str(e)) from None
        return [
            shared.Pod(
                p["metadata"]["name"],
                tuple(
                    c.get("name")
                    for c in [
                        *(p.get("spec") or {}).get("containers", []),
                        *((p.get("spec") or {}).get("initContainers") or []),
                    ]
                ),
                p["metadata"].get("creationTimestamp") or "",
            )
            for p in pods
        ]

    async def pod_log(self, pod: str, container: str) -> str:
        try:
            text = await self.kube.pod_log(self.ns, pod, container)
        except KubeError as e:
            raise shared.Unavailable(e.message or str(e)) from None
        return text[-shared.MAX_LOG_BYTES :]

    async def config_map(self, name: str) -> dict | None:
        try:
            return await self.kube.get("ConfigMap", self.ns, name)
        except KubeError as e:
            raise shared.Unavailable(e.message or str(e)) from None

    async def read_volume(self, args: list[str]) -> dict:
        try:
            return await viewer._read(self.kube, self.ns, readerpod.reader_pod(self.run, args))
        except viewer.ViewerError as e:
            raise shared.Unavailable(e.message) from None


async def item_logs(request: web.Request) -> web.Response:
    """GET .../items/{index}/logs: `{"sections": [{step, title, text, source, container}]}`."""
    from mmif_operator.console import routes  # routes imports this module

    ns, run = routes._name(request, "ns"), routes._name(request, "name")
    index = request.match_info["index"]
    if not index.isdigit():
        return routes._error(400, f"not an item index: {index!r}")
    step = request.query.get("step") or None
    async with as_person(request.app[routes.CLUSTER], routes._token(request)) as kube:
        try:
            obj = await kube.get_custom(RUNS, ns, run)
        except KubeError as exc:
            return routes._kube_error(exc, ns)
        if obj is None:
            return routes._error(404, f"No PipelineRun {run} in namespace {ns}.")
        try:
            sections = await shared.gather(obj, index, step, _Source(kube, ns, obj))
        except shared.LogsError as e:
            return routes._error(400 if e.usage else 404, str(e))
        except KubeError as exc:
            return routes._error(exc.status, exc.message or str(exc), access=auth.decide(exc.status).value)
        except (TimeoutError, aiohttp.ClientError) as e:
            return routes._error(504, f"The Kubernetes API server did not answer: {e or type(e).__name__}")
    return web.json_response(
        {
            "namespace": ns,
            "run": run,
            "index": int(index),
            "sections": [
                {
                    "step": s.step,
                    "title": s.title,
                    "text": s.text,
                    "source": s.source,
                    "container": s.container,
                }
                for s in sections
            ],
        }
    )
