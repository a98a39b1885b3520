"""The MMIF viewer's route against a stand-in API server (aiohttp, in process): the run is read,
the reader pod created, polled, its log read and the pod deleted, every call with the person's
token; a refused pod creation is the API server's message; the download is the MMIF itself."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mmif_operator.console import auth
from mmif_operator.console.config import Config
from mmif_operator.console.identity import Cluster
from mmif_operator.console.server import make_app
from mmif_operator.results import summary
from mmif_operator.results.show import MARKER
from tests.unit.test_console_viewer import MMIF

RUN = {
    "apiVersion": "mmif.dev/v1alpha1",
    "kind": "PipelineRun",
    "metadata": {"namespace": "a1", "name": "batch-1"},
    "spec": {"workspace": {"claimName": "media"}},
    "status": {"outputPath": "/data/mmif-runs/batch-1", "pipelineSpec": {"steps": [{"name": "s"}]}},
}
FORBIDDEN = (
    'pods is forbidden: User "bob" cannot create resource "pods" in API group "" in the namespace "a1"'
)


def fake_api(calls: list[tuple[str, str, str]], pods: dict[str, dict]) -> web.Application:
    """`good` may do everything; `bob` may read the run but not create pods."""

    def who(request: web.Request) -> str:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        calls.append((request.method, request.path, token))
        return token

    async def get_run(request: web.Request) -> web.Response:
        who(request)
        return web.json_response(RUN)

    async def create_pod(request: web.Request) -> web.Response:
        if who(request) != "good":
            return web.json_response({"kind": "Status", "code": 403, "message": FORBIDDEN}, status=403)
        body = await request.json()
        body["metadata"]["name"] = body["metadata"]["generateName"] + "x1"
        pods[body["metadata"]["name"]] = body
        return web.json_response(body, status=201)

    async def get_pod(request: web.Request) -> web.Response:
        who(request)
        pod = pods[request.match_info["name"]]
        return web.json_response({**pod, "status": {"phase": "Succeeded"}})

    async def log(request: web.Request) -> web.Response:
        who(request)
        args = pods[request.match_info["name"]]["spec"]["containers"][0]["command"][2:]
        if args[0] == "summary":
            item = {"index": 0, "name": "clip-0", "state": "Succeeded", "mmif": "items/00000/final.mmif"}
            result = {
                "runDir": "/data/mmif-runs/batch-1",
                "items": [{**item, "summary": summary.summarize(MMIF)}],
            }
        else:
            result = {"index": 0, "name": "clip-0", "path": "items/00000/final.mmif", "mmif": MMIF}
        return web.Response(text="noise\n" + MARKER + json.dumps({"ok": True, "result": result}) + "\n")

    async def delete_pod(request: web.Request) -> web.Response:
        who(request)
        pods.pop(request.match_info["name"])
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/apis/mmif.dev/v1alpha1/namespaces/{ns}/pipelineruns/{name}", get_run)
    app.router.add_post("/api/v1/namespaces/{ns}/pods", create_pod)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}", get_pod)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", log)
    app.router.add_delete("/api/v1/namespaces/{ns}/pods/{name}", delete_pod)
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


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{auth.COOKIE}={token}"}


URL = "/api/namespaces/a1/runs/batch-1/items/0/mmif"


def test_the_viewer_reads_through_a_reader_pod_made_with_the_persons_token_and_deletes_it():
    async def scenario(console, calls, pods):
        r = await console.get(URL, headers=cookie("good"))
        assert r.status == 200, await r.text()
        body = await r.json()
        assert [v["app"] for v in body["views"]] == [
            "http://apps.mmif.dev/textgen",
            "http://apps.mmif.dev/timeframes",
        ]
        assert body["annotationTotals"] == {"TextDocument": 1, "TimeFrame": 2}
        assert len(body["timeline"]["lanes"][0]["bars"]) == 2 and body["download"] == URL + "?download=1"
        assert {token for _, _, token in calls} == {"good"}  # every call as the person, nothing else
        methods = [m for m, _, _ in calls]
        assert methods[:2] == ["GET", "POST"] and methods[-2:] == ["GET", "DELETE"] and pods == {}

        calls.clear()
        r = await console.get(URL + "?download=1", headers=cookie("good"))
        assert (
            r.status == 200
            and r.headers["Content-Disposition"] == 'attachment; filename="batch-1-item-0.mmif"'
        )
        assert await r.text() == MMIF and pods == {}

    asyncio.run(with_console(scenario))


def test_a_person_who_may_not_create_pods_sees_the_api_servers_refusal():
    async def scenario(console, calls, pods):
        r = await console.get(URL, headers=cookie("bob"))
        body = await r.json()
        assert r.status == 403 and FORBIDDEN in body["error"] and body["access"] == "denied"
        assert [m for m, _, _ in calls] == ["GET", "POST"] and pods == {}
        r = await console.get("/api/namespaces/a1/runs/batch-1/items/x/mmif", headers=cookie("good"))
        assert r.status == 400
        r = await console.get(URL)
        assert r.status == 401

    asyncio.run(with_console(scenario))
