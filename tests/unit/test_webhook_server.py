"""The operator's webhook server (admission/handler.py) reads admission reviews far larger than
aiohttp's default 1 MiB: the review of a CREATE of the largest object the API accepts (3 MiB)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import kopf

from mmif_operator.admission import handler as admission


def serve_and_post(server_class, size: int) -> tuple[int, int | None]:
    """POST a `size`-byte admission review to a server of `server_class`; (status, bytes seen)."""
    seen: list[int] = []

    async def fn(data, **_):
        seen.append(len(json.dumps(data)))
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": data["request"]["uid"], "allowed": True},
        }

    async def main():
        server = server_class(addr="127.0.0.1", port=_free_port(), insecure=True)
        configs = server(fn).__aiter__()
        config = await configs.__anext__()
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u1", "object": {"spec": {"items": ["x" * 1000] * (size // 1006)}}},
        }
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    config["url"].rstrip("/") + "/requester-pipelineruns", data=json.dumps(review)
                ) as resp,
            ):
                await resp.read()
                return resp.status
        finally:
            await configs.aclose()

    status = asyncio.run(main())
    return status, (seen[0] if seen else None)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kopfs_own_server_refuses_a_review_over_one_mib():
    status, seen = serve_and_post(kopf.WebhookServer, 2 * 1024 * 1024)
    assert status == 413 and seen is None, "the limit this server exists to lift"


def test_the_webhook_reads_a_review_of_the_largest_object_twice_over():
    status, seen = serve_and_post(admission.WebhookServer, 6 * 1024 * 1024)
    assert status == 200 and seen > 6_000_000
    assert admission.MAX_REVIEW_BYTES >= 2 * 3 * 1024 * 1024, "an UPDATE review: old and new, 3 MiB each"
