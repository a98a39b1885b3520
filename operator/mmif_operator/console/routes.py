"""The console's HTTP API and pages. Each handler takes the person's token from the request
(identity.py) and makes its Kubernetes calls with it; the event stream adds the shared watch's
events (hub.py) for a namespace the person may list."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from mmif_operator.console import auth, bars, logs, sse, viewer
from mmif_operator.console.config import Config
from mmif_operator.console.hub import Event, Hub
from mmif_operator.console.identity import Cluster, as_person, token_of
from mmif_operator.core.kube.ops import MERGE_PATCH, Kube, KubeError, _call
from mmif_operator.core.model import GROUP, VERSION
from mmif_operator.kinds.pipeline.model import PLURAL as PIPELINES
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUNS
from mmif_operator.kinds.pipelinerun.review import MAX_REVIEW_COMMENT, ReviewDecision

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
PAGES = ("login", "runs", "run", "pipelines")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster", Cluster)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
CONFIG: web.AppKey[Config] = web.AppKey("config", Config)


# --- helpers ------------------------------------------------------------------------------------


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _token(request: web.Request) -> str:
    token = token_of(request)
    if token is None:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "Log in with your Kubernetes token."}), content_type="application/json"
        )
    return token


def _name(request: web.Request, key: str) -> str:
    value = request.match_info[key]
    if not NAME.match(value):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"not a valid name: {value!r}"}), content_type="application/json"
        )
    return value


def _kube_error(exc: KubeError, namespace: str | None = None) -> web.Response:
    access = auth.decide(exc.status)
    if namespace is not None and access in (auth.Access.DENIED, auth.Access.UNAUTHENTICATED):
        return _error(exc.status, auth.message(access, namespace), access=access.value, detail=exc.message)
    return _error(exc.status, exc.message or str(exc), access=access.value)


async def check_access(kube: Kube, namespace: str) -> tuple[auth.Access, str]:
    """May the person list PipelineRuns in `namespace`? (A list of one, with their token.)"""
    try:
        await _call(
            kube.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, RUNS, limit=1, **kube._kw())
        )
    except KubeError as exc:
        return auth.decide(exc.status), exc.message
    except (TimeoutError, aiohttp.ClientError) as exc:
        return auth.Access.UNKNOWN, str(exc) or type(exc).__name__
    return auth.Access.ALLOWED, ""


# --- pages --------------------------------------------------------------------------------------


def page(name: str):
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / f"{name}.html")

    return handler


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/runs")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    if not hub.ready.is_set():
        return web.Response(status=503, text="the watch of pipelineruns has not listed yet")
    return web.Response(text=f"ok, {hub.subscriber_count()} streams")


# --- identity -----------------------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _error(400, 'expected JSON {"token": ...}')
    token = str((body or {}).get("token") or "").strip()
    if not auth.valid_token(token):
        return _error(
            400, "That is not a bearer token (one word, e.g. the output of `kubectl create token`)."
        )
    try:
        async with as_person(request.app[CLUSTER], token) as kube:
            user = await kube.whoami()
    except KubeError as exc:
        if exc.status == 401:
            return _error(401, "The Kubernetes API server does not accept this token.")
        return _kube_error(exc)
    resp = web.json_response({"user": user.get("username"), "groups": user.get("groups") or []})
    # A session cookie (no expiry: gone with the browser session), unreadable by scripts, never sent
    # by another site's page. Secure when the console is reached over TLS.
    resp.set_cookie(auth.COOKIE, token, httponly=True, samesite="Strict", secure=request.secure, path="/")
    return resp


async def logout(request: web.Request) -> web.Response:
    resp = web.json_response({"user": None})
    resp.del_cookie(auth.COOKIE, path="/")
    return resp


async def whoami(request: web.Request) -> web.Response:
    token = _token(request)
    try:
        async with as_person(request.app[CLUSTER], token) as kube:
            user = await kube.whoami()
    except KubeError as exc:
        return _kube_error(exc)
    return web.json_response({"user": user.get("username"), "groups": user.get("groups") or []})


async def namespaces(request: web.Request) -> web.Response:
    """The namespaces the person may list, or null (many people may not list namespaces: they
    type theirs)."""
    token = _token(request)
    async with as_person(request.app[CLUSTER], token) as kube:
        try:
            data = await _call(kube.core.list_namespace(**kube._kw()))
        except KubeError as exc:
            return web.json_response({"namespaces": None, "message": exc.message})
    return web.json_response({"namespaces": sorted(n["metadata"]["name"] for n in data.get("items") or [])})


# --- runs and pipelines -------------------------------------------------------------------------


async def list_runs(request: web.Request) -> web.Response:
    ns = _name(request, "ns")
    async with as_person(request.app[CLUSTER], _token(request)) as kube:
        try:
            items = await kube.list_custom(RUNS, ns, {})
        except KubeError as exc:
            return _kube_error(exc, ns)
    return web.json_response({"namespace": ns, "runs": [bars.run_summary(r) for r in items]})


async def get_run(request: web.Request) -> web.Response:
    ns, name = _name(request, "ns"), _name(request, "name")
    async with as_person(request.app[CLUSTER], _token(request)) as kube:
        try:
            obj = await kube.get_custom(RUNS, ns, name)
        except KubeError as exc:
            return _kube_error(exc, ns)
    if obj is None:
        return _error(404, f"No PipelineRun {name} in namespace {ns}.")
    return web.json_response(bars.run_detail(obj, request.app[CONFIG].max_item_rows))


async def review_run(request: web.Request) -> web.Response:
    """Pass or fail a run: a merge patch of spec.review {decision, comment}, with the person's
    token. The admission webhook records the reviewer and refuses a person without `review`; its
    message is returned as it is."""
    ns, name = _name(request, "ns"), _name(request, "name")
    try:
        body = await request.json()
    except ValueError:
        return _error(400, 'expected JSON {"decision": "Pass"|"Fail", "comment": ...}')
    decision = (body or {}).get("decision")
    comment = str((body or {}).get("comment") or "")
    if decision not in {d.value for d in ReviewDecision}:
        return _error(400, "decision: Pass or Fail")
    if len(comment) > MAX_REVIEW_COMMENT:
        return _error(400, f"comment: at most {MAX_REVIEW_COMMENT} characters")
    review: dict[str, Any] = {"decision": decision}
    if comment:
        review["comment"] = comment
    async with as_person(request.app[CLUSTER], _token(request)) as kube:
        try:
            obj = await _call(
                kube.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    ns,
                    RUNS,
                    name,
                    {"spec": {"review": review}},
                    **kube._kw(_content_type=MERGE_PATCH),
                )
            )
        except KubeError as exc:
            return _error(exc.status, exc.message or str(exc), access=auth.decide(exc.status).value)
    return web.json_response(bars.run_detail(obj, request.app[CONFIG].max_item_rows))


async def list_pipelines(request: web.Request) -> web.Response:
    ns = _name(request, "ns")
    async with as_person(request.app[CLUSTER], _token(request)) as kube:
        try:
            items = await kube.list_custom(PIPELINES, ns, {})
        except KubeError as exc:
            return _kube_error(exc, ns)
    return web.json_response({"namespace": ns, "pipelines": [bars.pipeline_summary(p) for p in items]})


# --- the live stream ----------------------------------------------------------------------------


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events for one namespace (`?run=NAME`: one run, with its item table).

    `snapshot` first (read with the person's token), then `run` / `deleted` events from the shared
    watch; `denied` (and the end of the stream) when the person may not, or no longer, list the
    namespace's runs. A comment every heartbeat keeps the connection open."""
    ns = _name(request, "ns")
    run = request.query.get("run")
    if run is not None and not NAME.match(run):
        return _error(400, f"not a valid name: {run!r}")
    token = _token(request)
    config, hub, cluster = request.app[CONFIG], request.app[HUB], request.app[CLUSTER]
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )

    def shape(obj: dict[str, Any]) -> dict[str, Any]:
        return bars.run_detail(obj, config.max_item_rows) if run else bars.run_summary(obj)

    with hub.subscribe(ns) as sub:  # before the snapshot: nothing falls between the two
        async with as_person(cluster, token) as kube:
            access, detail = await check_access(kube, ns)
            snapshot: dict[str, Any] = {"namespace": ns}
            if access is auth.Access.ALLOWED:
                try:
                    if run:
                        obj = await kube.get_custom(RUNS, ns, run)
                        snapshot["run"] = shape(obj) if obj else None
                    else:
                        snapshot["runs"] = [shape(o) for o in await kube.list_custom(RUNS, ns, {})]
                except KubeError as exc:
                    access, detail = auth.decide(exc.status), exc.message
            await resp.prepare(request)
            if access is not auth.Access.ALLOWED:
                await resp.write(
                    sse.frame(
                        "denied",
                        {"access": access.value, "message": auth.message(access, ns, detail)},
                        retry_ms=config.retry_ms,
                    )
                )
                return resp
            await resp.write(sse.frame("snapshot", snapshot, retry_ms=config.retry_ms))
            grant = auth.Grant(ns, time.monotonic())
            try:
                while True:
                    wait = min(
                        config.heartbeat_seconds,
                        grant.next_check_in(time.monotonic(), config.recheck_seconds),
                    )
                    event: Event | None = None
                    with contextlib.suppress(TimeoutError):
                        event = await asyncio.wait_for(sub.queue.get(), timeout=max(wait, 0.05))
                    if sub.overflowed:
                        return resp  # the browser reconnects and gets a fresh snapshot
                    if grant.due(time.monotonic(), config.recheck_seconds):
                        access, detail = await check_access(kube, ns)
                        if access is not auth.Access.ALLOWED:
                            await resp.write(
                                sse.frame(
                                    "denied",
                                    {"access": access.value, "message": auth.message(access, ns, detail)},
                                )
                            )
                            return resp
                        grant.checked_at = time.monotonic()
                    if event is None:
                        await resp.write(sse.comment("keepalive"))
                    elif run is None or event.name == run:
                        if event.type == "DELETED":
                            await resp.write(sse.frame("deleted", {"namespace": ns, "name": event.name}))
                        else:
                            await resp.write(sse.frame("run", shape(event.object)))
            except (ConnectionResetError, asyncio.CancelledError):
                return resp


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index)
    for name in PAGES:
        r.add_get(f"/{name}", page(name))
    r.add_static("/static/", STATIC, show_index=False)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_get("/api/whoami", whoami)
    r.add_get("/api/namespaces", namespaces)
    r.add_get("/api/namespaces/{ns}/runs", list_runs)
    r.add_get("/api/namespaces/{ns}/runs/{name}", get_run)
    r.add_post("/api/namespaces/{ns}/runs/{name}/review", review_run)
    r.add_get("/api/namespaces/{ns}/runs/{name}/items/{index}/mmif", viewer.item_mmif)
    r.add_get("/api/namespaces/{ns}/runs/{name}/items/{index}/logs", logs.item_logs)
    r.add_get("/api/namespaces/{ns}/pipelines", list_pipelines)
    r.add_get("/api/namespaces/{ns}/stream", stream)
