"""A small asyncio client of the Kubernetes API for the benchmark: raw JSON over aiohttp.

It reads a kubeconfig with a client certificate (what the local cluster writes), sends JSON and
returns dicts, and streams watch events with the local time each line was received. Kept apart
from the operator's client (mmif_operator/k8s/ops.py) so the bench measures the operator, not
its own use of kubernetes_asyncio.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import yaml


class ApiError(Exception):
    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{status}: {message}")


def _material(entry: Mapping[str, Any], key: str, tmpdir: str) -> str | None:
    """A certificate or key of the kubeconfig as a file path (`<key>-data` is written out)."""
    if entry.get(f"{key}-data"):
        path = os.path.join(tmpdir, key)
        with open(path, "wb") as f:
            f.write(base64.b64decode(entry[f"{key}-data"]))
        return path
    return entry.get(key)


def ssl_context(kubeconfig: str) -> tuple[str, ssl.SSLContext]:
    """(server URL, SSL context) of the kubeconfig's current context."""
    with open(kubeconfig, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    ctx_name = cfg.get("current-context")
    context = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == context["user"])
    with tempfile.TemporaryDirectory() as tmp:
        ca = _material(cluster, "certificate-authority", tmp)
        ctx = ssl.create_default_context(cafile=ca)
        cert, key = _material(user, "client-certificate", tmp), _material(user, "client-key", tmp)
        if cert:
            ctx.load_cert_chain(cert, key)
    return cluster["server"].rstrip("/"), ctx


class Kube:
    def __init__(self, kubeconfig: str, *, connections: int = 64):
        self.server, self._ssl = ssl_context(kubeconfig)
        self._connections = connections
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Kube:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            headers={"User-Agent": "mmif-bench"},
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.session is not None:
            await self.session.close()

    async def raw(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        timeout: float = 60,
    ) -> tuple[int, bytes]:
        assert self.session is not None
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method,
            self.server + path,
            data=data,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            return resp.status, await resp.read()

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        allow: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        """The JSON answer; ApiError for an HTTP error whose status is not in `allow`."""
        status, raw = await self.raw(method, path, body=body, params=params, content_type=content_type)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"message": raw[:300].decode("utf-8", "replace")}
        if status >= 400 and status not in allow:
            raise ApiError(status, data)
        return data

    async def get(self, path: str) -> dict[str, Any] | None:
        status, raw = await self.raw("GET", path)
        if status == 404:
            return None
        if status >= 400:
            raise ApiError(status, raw[:300].decode("utf-8", "replace"))
        return json.loads(raw)

    async def watch(
        self, path: str, params: Mapping[str, Any]
    ) -> AsyncIterator[tuple[float, dict[str, Any]]]:
        """Watch events of a collection as (time.monotonic() when the line arrived, event). Ends
        when the server closes the stream (`timeoutSeconds`)."""
        assert self.session is not None
        query = {**params, "watch": "1"}
        async with self.session.get(self.server + path, params=query) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, (await resp.read())[:300].decode("utf-8", "replace"))
            buf = b""
            async for chunk in resp.content.iter_any():
                now = time.monotonic()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield now, json.loads(line)
