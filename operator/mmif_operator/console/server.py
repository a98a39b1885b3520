"""`mmif-console`: the web console's aiohttp server.

    mmif-console [--host 0.0.0.0] [--port 8080]

In a pod it talks to the API server in-cluster; elsewhere through $KUBECONFIG (for the address
and CA only: every call for a person is made with that person's token). Its own ServiceAccount
serves only the shared watch of PipelineRuns (hub.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from mmif_operator.console import config as console_config
from mmif_operator.console import routes
from mmif_operator.console.hub import Hub
from mmif_operator.console.identity import Cluster
from mmif_operator.core.kube.client import make_api_client
from mmif_operator.core.kube.ops import Kube

log = logging.getLogger(__name__)

# The pages load only their own scripts and styles; nothing may frame them (clickjacking of the
# review buttons).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    # A state-changing request must be JSON: a form on another site cannot send that without a
    # CORS preflight, which this server never answers (with the SameSite=Strict cookie: no CSRF).
    if request.method == "POST" and request.content_type != "application/json":
        return web.json_response(
            {"error": "POST bodies are JSON (Content-Type: application/json)"}, status=415
        )
    resp = await handler(request)
    for key, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(key, value)
    if request.path.startswith("/api/"):
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


async def _service_account() -> Kube:
    return Kube(await make_api_client(connection_pool=4))


def make_app(
    cfg: console_config.Config,
    cluster: Cluster,
    hub: Hub | None = None,
    connect: Callable[[], Awaitable[Kube]] | None = _service_account,
) -> web.Application:
    """The app; with `connect` (the console's ServiceAccount), the shared watch runs with it."""
    app = web.Application(middlewares=[guard])
    app[routes.CONFIG] = cfg
    app[routes.CLUSTER] = cluster
    app[routes.HUB] = hub or Hub(cfg.queue_size)
    routes.add_routes(app)

    if connect is not None:

        async def watch(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(app[routes.HUB].run(connect), name="pipelinerun-watch")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(watch)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mmif-console", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=None, help="port (default $MMIF_CONSOLE_PORT or 8080)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    cfg = console_config.from_env()
    port = args.port or cfg.port

    async def build() -> web.Application:
        return make_app(cfg, await Cluster.load())

    web.run_app(build(), host=args.host, port=port, print=None, shutdown_timeout=5)


if __name__ == "__main__":
    main()
