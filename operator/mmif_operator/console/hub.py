"""The console's one watch of PipelineRuns and its fan-out to the open event streams.

The console's ServiceAccount may list and watch PipelineRuns cluster-wide and nothing else
(manifests/console.yaml). One list + watch serves every browser: the API server holds one watch
however many pages are open, instead of a poll per page. Events go to the subscribers of the
run's namespace only; who may subscribe is decided with the person's token (routes.py, auth.py).

A watch that ends (timeout, API server restart, network) is resumed from the last
resourceVersion; one that expired (410 Gone) starts over with a list, and the list is compared
with what was known so that changes missed in between are sent as events (and runs gone as
DELETED). A subscriber that cannot keep up is dropped: its browser reconnects and gets a fresh
snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.core.model import GROUP, VERSION
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUNS

log = logging.getLogger(__name__)

WATCH_SECONDS = 300  # the server-side timeout of one watch request; it is then resumed
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    object: dict[str, Any]

    @property
    def namespace(self) -> str:
        return (self.object.get("metadata") or {}).get("namespace", "")

    @property
    def name(self) -> str:
        return (self.object.get("metadata") or {}).get("name", "")


@dataclass(eq=False)
class Subscriber:
    namespace: str
    queue: asyncio.Queue[Event]
    overflowed: bool = field(default=False)


class Gone(Exception):
    """The watch's resourceVersion expired (410): list again."""


class Hub:
    def __init__(self, queue_size: int = 256):
        self.queue_size = queue_size
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._known: dict[tuple[str, str], str] = {}  # (namespace, name) -> resourceVersion
        self.ready = asyncio.Event()  # set after the first complete list

    # -- fan-out (no Kubernetes calls) -----------------------------------------------------------
    @contextmanager
    def subscribe(self, namespace: str) -> Iterator[Subscriber]:
        sub = Subscriber(namespace, asyncio.Queue(self.queue_size))
        self._subscribers.setdefault(namespace, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subscribers.get(namespace, set())
            subs.discard(sub)
            if not subs:
                self._subscribers.pop(namespace, None)

    def subscriber_count(self) -> int:
        return sum(map(len, self._subscribers.values()))

    def publish(self, event: Event) -> None:
        key = (event.namespace, event.name)
        if event.type == "DELETED":
            self._known.pop(key, None)
        else:
            self._known[key] = (event.object.get("metadata") or {}).get("resourceVersion", "")
        for sub in list(self._subscribers.get(event.namespace, ())):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True

    def resync(self, items: list[dict[str, Any]]) -> None:
        """After a (re)list: events for what changed or vanished since the last known state."""
        seen = set()
        for obj in items:
            meta = obj.get("metadata") or {}
            key = (meta.get("namespace", ""), meta.get("name", ""))
            seen.add(key)
            if key not in self._known:
                self.publish(Event("ADDED", obj))
            elif self._known[key] != meta.get("resourceVersion"):
                self.publish(Event("MODIFIED", obj))
        for ns, name in [k for k in self._known if k not in seen]:
            self.publish(Event("DELETED", {"metadata": {"namespace": ns, "name": name}}))

    # -- the watch (the console's ServiceAccount) ------------------------------------------------
    async def run(self, connect: Callable[[], Awaitable[Kube]]) -> None:
        """List and watch forever; reconnect with a bounded backoff."""
        backoff = 1.0
        kube: Kube | None = None
        while True:
            try:
                if kube is None:
                    kube = await connect()
                version = await self._list(kube)
                self.ready.set()
                backoff = 1.0
                while True:
                    version = await self._watch(kube, version)
            except Gone:
                log.info("the watch of pipelineruns expired; listing again")
                continue
            except asyncio.CancelledError:
                if kube is not None:
                    await kube.close()
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: retry, bounded
                log.warning("the watch of pipelineruns failed (%s); retrying in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _list(self, kube: Kube) -> str:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": 500, "_preload_content": False, "_request_timeout": 60}
            if token:
                kw["_continue"] = token
            resp = await kube.custom.list_cluster_custom_object(GROUP, VERSION, RUNS, **kw)
            data = await _json(resp)
            items.extend(data.get("items") or [])
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                break
        self.resync(items)
        return (data.get("metadata") or {}).get("resourceVersion", "")

    async def _watch(self, kube: Kube, version: str) -> str:
        resp = await kube.custom.list_cluster_custom_object(
            GROUP,
            VERSION,
            RUNS,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=WATCH_SECONDS + 30,
        )
        try:
            if resp.status >= 400:
                data = json.loads(await resp.read() or b"{}")
                raise (
                    Gone()
                    if resp.status == 410
                    else KubeError(resp.status, data.get("reason", ""), data.get("message", ""))
                )
            async for line in _lines(resp.content):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise KubeError(
                        int(obj.get("code") or 500), obj.get("reason", ""), obj.get("message", "")
                    )
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.publish(Event(kind, obj))
        finally:
            resp.release()
        return version


async def _json(resp: Any) -> dict[str, Any]:
    try:
        raw = await resp.read()
    finally:
        resp.release()
    data = json.loads(raw) if raw else {}
    if resp.status >= 400:
        raise KubeError(resp.status, data.get("reason", ""), data.get("message", ""))
    return data


async def _lines(content: Any) -> AsyncIterator[bytes]:
    """The lines of a watch response, however long (aiohttp's readline refuses lines over
    128 KiB; a run with a thousand inline items is longer)."""
    buffer = b""
    async for chunk in content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
