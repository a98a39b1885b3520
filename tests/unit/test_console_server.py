"""The console server against a stand-in API server (aiohttp, in process): every call made for a
person carries that person's token and nothing else, a refused list means "Not allowed" and no
stream, a stream carries only its namespace's events from the shared watch."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mmif_operator.console import auth, sse
from mmif_operator.console.config import Config
from mmif_operator.console.hub import Event, Hub
from mmif_operator.console.identity import Cluster
from mmif_operator.console.server import make_app

RUN = {
    "apiVersion": "mmif.dev/v1alpha1",
    "kind": "PipelineRun",
    "metadata": {"namespace": "a1", "name": "batch-1", "resourceVersion": "5"},
    "spec": {"pipelineRef": {"name": "pipe"}},
    "status": {"phase": "Running", "itemCount": 2, "itemsSucceeded": 1},
}


def fake_api(seen: list[str], allowed: set[str]) -> web.Application:
    """Tokens in `allowed` (`good`) may list runs; `bad` is authenticated but refused; else 401."""

    async def runs(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "")
        seen.append(token)
        if token.removeprefix("Bearer ") not in allowed:
            code = 401 if token in ("", "Bearer unknown") else 403
            return web.json_response(
                {"kind": "Status", "code": code, "message": "pipelineruns.mmif.dev is forbidden"}, status=code
            )
        return web.json_response({"items": [RUN], "metadata": {"resourceVersion": "5"}})

    async def whoami(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"status": {"userInfo": {"username": "alice", "groups": ["g"]}}}, status=201)

    app = web.Application()
    app.router.add_get("/apis/mmif.dev/v1alpha1/namespaces/{ns}/pipelineruns", runs)
    app.router.add_post("/apis/authentication.k8s.io/v1/selfsubjectreviews", whoami)
    return app


async def with_console(scenario, config: Config | None = None):
    seen: list[str] = []
    allowed = {"good"}
    api = TestServer(fake_api(seen, allowed))
    await api.start_server()
    hub = Hub()
    cluster = Cluster(host=str(api.make_url("")).rstrip("/"), ssl_ca_cert=None, verify_ssl=False)
    console = TestClient(TestServer(make_app(config or Config(), cluster, hub, connect=None)))
    await console.start_server()
    try:
        await scenario(console, hub, seen, allowed)
    finally:
        await console.close()
        await api.close()


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{auth.COOKIE}={token}"}


def test_calls_carry_the_persons_token_and_a_refusal_is_not_allowed():
    async def scenario(console, hub, seen, allowed):
        r = await console.get("/api/namespaces/a1/runs", headers=cookie("good"))
        assert r.status == 200
        assert [run["name"] for run in (await r.json())["runs"]] == ["batch-1"]
        r = await console.get("/api/namespaces/a1/runs", headers={"Authorization": "Bearer bad"})
        body = await r.json()
        assert (
            r.status == 403 and body["error"].startswith("Not allowed") and "batch-1" not in json.dumps(body)
        )
        assert seen == ["Bearer good", "Bearer bad"]  # nothing else, no credential of the console's
        r = await console.get("/api/namespaces/a1/runs")
        assert r.status == 401 and seen == ["Bearer good", "Bearer bad"]  # no token: no call at all

    asyncio.run(with_console(scenario))


def test_login_sets_an_httponly_strict_session_cookie_after_the_api_server_accepts_the_token():
    async def scenario(console, hub, seen, allowed):
        r = await console.post("/api/login", json={"token": "good"})
        assert r.status == 200 and (await r.json())["user"] == "alice"
        header = r.headers["Set-Cookie"]
        assert (
            header.startswith(f"{auth.COOKIE}=good;") and "HttpOnly" in header and "SameSite=Strict" in header
        )
        assert "Max-Age" not in header and "expires" not in header.lower()  # a session cookie
        assert seen == ["Bearer good"]
        r = await console.post(
            "/api/login", data="token=good", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert r.status == 415  # a form of another site cannot log anyone in or review anything

    asyncio.run(with_console(scenario))


def test_a_stream_is_refused_without_list_and_carries_only_its_namespace():
    async def scenario(console, hub, seen, allowed):
        r = await console.get("/api/namespaces/a1/stream", headers=cookie("bad"))
        events = sse.parse(await r.text())
        assert [e for e, _ in events] == ["denied"] and "Not allowed" in events[0][1]["message"]
        assert hub.subscriber_count() == 0

        r = await console.get("/api/namespaces/a1/stream", headers=cookie("good"))
        assert r.headers["Content-Type"] == "text/event-stream"
        first = await r.content.readuntil(b"\n\n")
        assert sse.parse(first.decode())[0][0] == "snapshot"
        other = {**RUN, "metadata": {**RUN["metadata"], "namespace": "b2", "name": "theirs"}}
        hub.publish(Event("MODIFIED", other))
        hub.publish(Event("MODIFIED", {**RUN, "status": {**RUN["status"], "itemsSucceeded": 2}}))
        hub.publish(Event("DELETED", RUN))
        got = []
        while len(got) < 2:
            got += sse.parse((await r.content.readuntil(b"\n\n")).decode())
        assert [e for e, _ in got] == ["run", "deleted"]
        assert got[0][1]["name"] == "batch-1" and got[0][1]["overall"]["done"] == 2
        r.close()

    asyncio.run(with_console(scenario))


def test_a_stream_ends_when_the_periodic_check_is_refused():
    async def scenario(console, hub, seen, allowed):
        r = await console.get("/api/namespaces/a1/stream", headers=cookie("good"))
        assert sse.parse((await r.content.readuntil(b"\n\n")).decode())[0][0] == "snapshot"
        allowed.discard("good")  # the person's RoleBinding is gone
        events = []
        async with asyncio.timeout(10):
            while not any(e == "denied" for e, _ in events):
                events += sse.parse((await r.content.readuntil(b"\n\n")).decode())
        assert "Not allowed" in events[-1][1]["message"]
        assert await r.content.read() == b""  # and the stream ended

    asyncio.run(with_console(scenario, Config(recheck_seconds=0.3, heartbeat_seconds=0.1)))
