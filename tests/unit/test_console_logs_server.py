"""The console's logs route against a stand-in API server (aiohttp, in process): the same sections
as `kubectl mmif logs` (results/logs.py), every call with the person's token: the step pods
(none left), the runner's log through a reader pod (deleted after), the kept app log from the
run's ConfigMap; a ConfigMap the person may not read is said, not hidden."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mmif_operator.console import auth
from mmif_operator.console.config import Config
from mmif_operator.console.identity import Cluster
from mmif_operator.console.server import make_app
from mmif_operator.results.show import MARKER

RUN = {
    "apiVersion": "mmif.dev/v1alpha1",
    "kind": "PipelineRun",
    "metadata": {"namespace": "a1", "name": "batch-1", "uid": "abcdef12-0000"},
    "spec": {"workspace": {"claimName": "media"}, "pipelineRef": {"name": "p"}},
    "status": {"outputPath": "/data/mmif-runs/batch-1", "pipelineSpec": {"steps": [{"name": "check"}]}},
}
CM = "batch-1-applogs-abcdef12"


def fake_api(calls: list[tuple[str, str, str]], pods: dict[str, dict]) -> web.Application:
    def who(request: web.Request) -> str:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        calls.append((request.method, request.path, token))
        return token

    async def get_run(request: web.Request) -> web.Response:
        who(request)
        return web.json_response(RUN)

    async def list_pods(request: web.Request) -> web.Response:
        who(request)
        assert "mmif.dev/item-index=1" in request.query["labelSelector"]
        return web.json_response({"items": []})  # the step's pod is gone

    async def create_pod(request: web.Request) -> web.Response:
        who(request)
        body = await request.json()
        body["metadata"]["name"] = body["metadata"]["generateName"] + "x1"
        pods[body["metadata"]["name"]] = body
        return web.json_response(body, status=201)

    async def get_pod(request: web.Request) -> web.Response:
        who(request)
        return web.json_response({**pods[request.match_info["name"]], "status": {"phase": "Succeeded"}})

    async def log(request: web.Request) -> web.Response:
        who(request)
        result = {"index": 1, "name": "bad", "path": "items/00001/00-check.log", "log": "runner: AppError\n"}
        return web.Response(text=MARKER + json.dumps({"ok": True, "result": result}) + "\n")

    async def delete_pod(request: web.Request) -> web.Response:
        who(request)
        pods.pop(request.match_info["name"])
        return web.json_response({})

    async def get_cm(request: web.Request) -> web.Response:
        if who(request) != "good":
            message = 'configmaps "x" is forbidden: User "bob" cannot get resource "configmaps"'
            return web.json_response({"kind": "Status", "code": 403, "message": message}, status=403)
        assert request.match_info["name"] == CM
        return web.json_response({"metadata": {"name": CM}, "data": {"00001-0.log": "app: boom\n"}})

    app = web.Application()
    app.router.add_get("/apis/mmif.dev/v1alpha1/namespaces/{ns}/pipelineruns/{name}", get_run)
    app.router.add_get("/api/v1/namespaces/{ns}/pods", list_pods)
    app.router.add_post("/api/v1/namespaces/{ns}/pods", create_pod)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}", get_pod)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", log)
    app.router.add_delete("/api/v1/namespaces/{ns}/pods/{name}", delete_pod)
    app.router.add_get("/api/v1/namespaces/{ns}/configmaps/{name}", get_cm)
    return app


async def with_console(scenario):
    calls: list[tuple[str, str, str]] = []
    pods: dict[str, dict] = {}
    api = TestServer(fake_api(calls, pods))
    await api.start_server()
    cluster = Cluster(host=str(api.make_url("")).rstrip("/"), ssl_ca_cert=None, verify_ssl=False)
    console = TestClient(TestServer(make_app(Config(), cluster, connect=None)))
    await console.start_server()
    try:
        await scenario(console, calls, pods)
    finally:
        await console.close()
        await api.close()


URL = "/api/namespaces/a1/runs/batch-1/items/1/logs"


def test_a_failed_items_logs_are_the_runners_from_the_volume_and_the_kept_app_log():
    async def scenario(console, calls, pods):
        r = await console.get(URL, headers={"Cookie": f"{auth.COOKIE}=good"})
        assert r.status == 200, await r.text()
        runner, app = (await r.json())["sections"]
        assert runner["source"] == "volume" and runner["text"] == "runner: AppError\n"
        assert (
            "item 1 (bad) step check: the runner, from the volume (items/00001/00-check.log)"
            in runner["title"]
        )
        assert app["source"] == "kept" and app["container"] == "app" and app["text"] == "app: boom\n"
        assert f"(ConfigMap {CM}, key 00001-0.log;" in app["title"]
        assert {token for _, _, token in calls} == {"good"} and pods == {}  # as the person; reader deleted

        calls.clear()
        r = await console.get(URL, headers={"Cookie": f"{auth.COOKIE}=bob"})
        assert r.status == 200
        _, refused = (await r.json())["sections"]
        assert refused["source"] == "none" and 'cannot get resource "configmaps"' in refused["title"]
        r = await console.get(URL + "?step=nope", headers={"Cookie": f"{auth.COOKIE}=good"})
        assert r.status == 400 and "has no step 'nope'" in (await r.json())["error"]

    asyncio.run(with_console(scenario))
