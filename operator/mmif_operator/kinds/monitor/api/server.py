"""The monitors' HTTP API: an aiohttp server the operator starts (core/runtime/startup.py) on
$MMIF_MONITORS_API_PORT (8090), behind the Service `mmif-monitors`.

Every request but `/` and `/healthz` is authenticated by a TokenReview of its bearer token and
authorised by a SubjectAccessReview (access.py) *before* anything is read, then read with the
operator's own client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from mmif_operator.core import labels as L
from mmif_operator.core.kube import Kube
from mmif_operator.core.kube.ops import KubeError, controller_uid
from mmif_operator.kinds.monitor.api import access, documents, feed, links, paging
from mmif_operator.kinds.monitor.model import PLURAL, REPORT_PLURAL

log = logging.getLogger(__name__)
KUBE = web.AppKey("kube", Kube)
BASE_URL = web.AppKey("base_url", str)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "message": message}, status=status)


def _base(request: web.Request) -> str:
    return request.app[BASE_URL] or f"{request.scheme}://{request.host}"


async def _authorise(
    request: web.Request, verb: str, namespace: str | None, name: str | None
) -> web.Response | None:
    """None when the caller may `verb monitors` there; else the 401/403 response."""
    kube = request.app[KUBE]
    token = access.bearer_token(request.headers.get("Authorization"))
    if token is None:
        return _error(401, "send a Kubernetes token: Authorization: Bearer <token>")
    try:
        user = access.user_of(await kube.token_review(access.token_review(token)))
        review = None
        if user is not None:
            review = await kube.subject_access_review(access.access_review(user, verb, namespace, name))
    except KubeError as e:
        log.warning("monitors API: review failed: %s", e)
        return _error(503, "the API server could not check the token; try again")
    decision = access.decide(user, review)
    if decision is access.Decision.UNAUTHENTICATED:
        return _error(401, "the token is not valid (expired, revoked or not a Kubernetes token)")
    if decision is access.Decision.FORBIDDEN:
        where = f"in namespace {namespace}" if namespace else "in all namespaces"
        return _error(403, f"{user['username'] if user else 'you'} may not {verb} monitors.mmif.dev {where}")
    return None


async def _monitor(request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    refused = await _authorise(request, "get", namespace, name)
    if refused is not None:
        return None, refused
    mon = await request.app[KUBE].get_custom(PLURAL, namespace, name)
    if mon is None:
        return None, _error(404, f"no monitor {name} in namespace {namespace}")
    return mon, None


async def _reports_of(kube: Kube, mon: Mapping[str, Any]) -> list[dict[str, Any]]:
    meta = mon["metadata"]
    items = await kube.list_custom(REPORT_PLURAL, meta["namespace"], {L.MONITOR: L.label_value(meta["name"])})
    return [
        r for r in items if controller_uid(r) == meta["uid"] and not r["metadata"].get("deletionTimestamp")
    ]


async def root(request: web.Request) -> web.Response:
    return web.json_response(links.capabilities(_base(request)))


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def get_monitor(request: web.Request) -> web.Response:
    mon, refused = await _monitor(request)
    if mon is None:
        return refused  # type: ignore[return-value]
    return web.json_response(documents.monitor(_base(request), mon))


async def get_status(request: web.Request) -> web.Response:
    mon, refused = await _monitor(request)
    if mon is None:
        return refused  # type: ignore[return-value]
    return web.json_response(documents.status(_base(request), mon))


async def _page(request: web.Request, atom: bool) -> web.Response:
    try:
        query = paging.parse_query(request.query)
    except paging.BadQuery as e:
        return _error(400, str(e))
    mon, refused = await _monitor(request)
    if mon is None:
        return refused  # type: ignore[return-value]
    got = paging.page(await _reports_of(request.app[KUBE], mon), query)
    if atom:
        return web.Response(
            body=feed.build(_base(request), mon, query, got),
            content_type=links.ATOM,
            charset="utf-8",
        )
    return web.json_response(documents.reports(_base(request), mon, query, got))


async def get_reports(request: web.Request) -> web.Response:
    return await _page(request, links.wants_atom(request.headers.get("Accept", "")))


async def get_feed(request: web.Request) -> web.Response:
    return await _page(request, True)


async def get_report(request: web.Request) -> web.Response:
    report_id = request.match_info["id"]
    mon, refused = await _monitor(request)
    if mon is None:
        return refused  # type: ignore[return-value]
    if not paging.valid_id(report_id):
        return _error(404, f"{report_id!r} is not a report id (YYYYMMDDTHHMMSSZ)")
    meta = mon["metadata"]
    rep = await request.app[KUBE].get_custom(
        REPORT_PLURAL, meta["namespace"], f"{meta['name']}-{report_id.lower()}"
    )
    if rep is None or controller_uid(rep) != meta["uid"] or rep["metadata"].get("deletionTimestamp"):
        return _error(404, f"monitor {meta['name']} has no report {report_id}")
    return web.json_response(documents.report(_base(request), rep))


async def get_activities(request: web.Request) -> web.Response:
    refused = await _authorise(request, "list", None, None)
    if refused is not None:
        return refused
    return web.json_response(
        documents.activities(_base(request), await request.app[KUBE].list_custom_all(PLURAL))
    )


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except KubeError as e:
        log.warning("monitors API: %s %s: %s", request.method, request.path, e)
        return _error(502, "the API server refused the operator's read; see the operator's log")


def make_app(kube: Kube, base_url: str = "") -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[KUBE] = kube
    app[BASE_URL] = base_url.rstrip("/")
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/activities", get_activities)
    app.router.add_get("/monitors/{namespace}/{name}", get_monitor)
    app.router.add_get("/monitors/{namespace}/{name}/status", get_status)
    app.router.add_get("/monitors/{namespace}/{name}/reports", get_reports)
    app.router.add_get("/monitors/{namespace}/{name}/reports.atom", get_feed)
    app.router.add_get("/monitors/{namespace}/{name}/report/{id}", get_report)
    return app


_runner: web.AppRunner | None = None


async def start(kube: Kube, port: int, base_url: str = "") -> None:
    """Serve the API on 0.0.0.0:`port` (0: not at all)."""
    global _runner
    if port <= 0 or _runner is not None:
        return
    runner = web.AppRunner(make_app(kube, base_url), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    _runner = runner
    log.info("monitors API on :%d", port)


async def stop() -> None:
    global _runner
    if _runner is not None:
        await _runner.cleanup()
        _runner = None
