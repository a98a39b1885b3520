"""The console's MMIF viewer: an item's documents, views (app, version, parameters), annotation
counts per type and a timeline of its TimeFrames, and its MMIF to download.

The run's outputs are on its workspace volume, which only pods reach. The console reads them the
way `kubectl mmif results` does: a reader pod (results/readerpod.py: the same body, the same
`mmif-runner show` answers) created, read and deleted **with the person's own token**. So the
person needs, in the run's namespace, get on pipelineruns and create/get/delete on pods and get
on pods/log (the shipped `mmif-user` ClusterRole); the console's ServiceAccount reads no outputs.
A refusal is the API server's message, as it is.

`viewer_json` is pure (the page's JSON from the reader's answer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
from aiohttp import web

from mmif_operator.console import auth
from mmif_operator.console.identity import as_person
from mmif_operator.core.kube.ops import Kube, KubeError, _call
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUNS
from mmif_operator.results import readerpod
from mmif_operator.results.timeline import timeline

POLL_SECONDS = 0.5  # how often the reader pod's phase is read while it runs (bounded by its deadline)


class ViewerError(Exception):
    def __init__(self, status: int, message: str, access: str | None = None):
        super().__init__(message)
        self.status, self.message, self.access = status, message, access


def viewer_json(ns: str, run: str, answer: dict[str, Any]) -> dict[str, Any]:
    """What the run page draws, from `mmif-runner show summary --item N`'s answer."""
    item = (answer.get("items") or [{}])[0]
    summary = item.get("summary")
    out: dict[str, Any] = {
        "namespace": ns,
        "run": run,
        "index": item.get("index"),
        "name": item.get("name"),
        "state": item.get("state"),
        "failedStep": item.get("failedStep"),
        "reason": item.get("reason"),
        "message": item.get("message"),
        "path": item.get("mmif"),
        "runDir": answer.get("runDir"),
        "summaryError": item.get("summaryError"),
        "download": (
            f"/api/namespaces/{ns}/runs/{run}/items/{item.get('index')}/mmif?download=1"
            if item.get("mmif")
            else None
        ),
        "mmifVersion": None,
        "documents": [],
        "views": [],
        "annotationTotals": {},
        "timeline": None,
    }
    if summary:
        totals: dict[str, int] = {}
        for v in summary["views"]:
            for kind, n in v["annotations"].items():
                totals[kind] = totals.get(kind, 0) + n
        out.update(
            mmifVersion=summary.get("mmifVersion"),
            documents=summary["documents"],
            views=summary["views"],
            annotationTotals=dict(sorted(totals.items())),
            timeline=timeline(summary),
        )
    return out


def download_name(run: str, index: Any) -> str:
    return f"{run}-item-{index}.mmif"


async def _read(kube: Kube, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create the reader pod in `ns` with the person's client, wait (bounded) for it to end, parse
    its answer, delete it whatever happened."""
    try:
        request = kube.core.create_namespaced_pod(ns, body, **kube._kw())  # type: ignore[arg-type]
        created = await _call(request)
    except KubeError as exc:
        raise ViewerError(
            exc.status,
            f"Cannot read the run's outputs: the reader pod was refused: {exc.message or exc.reason}",
            auth.decide(exc.status).value,
        ) from None
    name = created["metadata"]["name"]
    try:
        deadline = time.monotonic() + readerpod.DEADLINE_SECONDS + 10
        phase = None
        while time.monotonic() < deadline:
            pod = await _call(kube.core.read_namespaced_pod(name, ns, **kube._kw()))
            status = pod.get("status") or {}
            phase = status.get("phase")
            if phase in ("Succeeded", "Failed"):
                break
            waiting = [
                ((cs.get("state") or {}).get("waiting") or {}) for cs in status.get("containerStatuses") or []
            ]
            why = readerpod.stuck([(w.get("reason"), w.get("message")) for w in waiting if w])
            if why:
                raise ViewerError(502, f"The reader pod {name} cannot start: {why}")
            await asyncio.sleep(POLL_SECONDS)
        if phase not in ("Succeeded", "Failed"):
            raise ViewerError(
                504,
                f"The reader pod {name} did not finish within {readerpod.DEADLINE_SECONDS} s (phase {phase}).",
            )
        # not JSON: read as it is (`_preload_content=False` gives the response)
        resp: Any = await kube.core.read_namespaced_pod_log(name, ns, container="reader", **kube._kw())
        try:
            text = (await resp.read()).decode("utf-8", "replace")
            if resp.status >= 400:
                raise ViewerError(resp.status, f"Cannot read the reader pod's log: {text[:500]}")
        finally:
            resp.release()
        try:
            return readerpod.parse_answer(text)
        except readerpod.ReaderError as e:
            raise ViewerError(404, str(e)) from None
    except KubeError as exc:
        raise ViewerError(exc.status, exc.message or str(exc), auth.decide(exc.status).value) from None
    finally:
        # else bounded by its activeDeadlineSeconds, and labelled for `kubectl delete pod -l`
        with contextlib.suppress(KubeError, aiohttp.ClientError, TimeoutError):
            await _call(kube.core.delete_namespaced_pod(name, ns, grace_period_seconds=0, **kube._kw()))


async def item_mmif(request: web.Request) -> web.Response:
    """GET .../items/{index}/mmif: the viewer's JSON; `?download=1`: the item's MMIF itself."""
    from mmif_operator.console import routes  # routes imports this module

    ns, run = routes._name(request, "ns"), routes._name(request, "name")
    index = request.match_info["index"]
    if not index.isdigit():
        return routes._error(400, f"not an item index: {index!r}")
    download = request.query.get("download") == "1"
    async with as_person(request.app[routes.CLUSTER], routes._token(request)) as kube:
        try:
            obj = await kube.get_custom(RUNS, ns, run)
        except KubeError as exc:
            return routes._kube_error(exc, ns)
        if obj is None:
            return routes._error(404, f"No PipelineRun {run} in namespace {ns}.")
        what = "mmif" if download else "summary"
        try:
            answer = await _read(kube, ns, readerpod.reader_pod(obj, readerpod.show_args(obj, what, index)))
        except ViewerError as e:
            return routes._error(e.status, e.message, **({"access": e.access} if e.access else {}))
        except (TimeoutError, aiohttp.ClientError) as e:
            return routes._error(504, f"The Kubernetes API server did not answer: {e or type(e).__name__}")
    if download:
        return web.Response(
            text=answer["mmif"],
            content_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{download_name(run, index)}"'},
        )
    return web.json_response(viewer_json(ns, run, answer), dumps=lambda o: json.dumps(o, default=str))
