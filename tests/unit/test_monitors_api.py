"""The monitors API's pure parts (paging, links, content negotiation, the access rule, the Atom
feed against RFC 4287's RELAX NG schema and feedparser) and its routes over a stand-in client
(the order of the checks: 401, then 403 before anything is read, then 404)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from mmif_operator.kinds.monitor.api import access, documents, feed, links, paging
from mmif_operator.kinds.monitor.api.server import make_app

SCHEMA = etree.RelaxNG(etree.parse(str(Path(__file__).resolve().parents[1] / "schemas" / "atom.rng")))
ATOM = "{http://www.w3.org/2005/Atom}"
MON = {
    "metadata": {
        "namespace": "ns",
        "name": "web",
        "uid": "m-uid",
        "creationTimestamp": "2026-12-01T00:00:00Z",
    },
    "spec": {"title": "Web app"},
    "status": {
        "health": "Degraded",
        "activities": [{"step": "a", "app": "img:1", "tests": 4, "passed": 3, "reliability": 0.75}],
    },
}


def report(day: int, result: str = "Passed", owner: str = "m-uid") -> dict[str, Any]:
    rid = f"202612{day:02d}T120000Z"
    return {
        "metadata": {
            "namespace": "ns",
            "name": f"web-{rid.lower()}",
            "uid": f"r-{day}",
            "creationTimestamp": f"2026-12-{day:02d}T12:00:07Z",
            "ownerReferences": [{"controller": True, "uid": owner}],
        },
        "spec": {
            "monitor": "web",
            "id": rid,
            "time": f"2026-12-{day:02d}T12:00:00Z",
            "result": result,
            "summary": "1 activity failed" if result == "Failed" else "passed",
            "failedActivities": [{"step": "a", "app": "img:1", "reason": "AppError", "message": "boom"}]
            if result == "Failed"
            else [],
        },
    }


REPORTS = [report(d, "Failed" if d == 3 else "Passed") for d in range(1, 6)]


# -- paging --------------------------------------------------------------------------------------


def ids(page: paging.Page) -> list[str]:
    return [r["spec"]["id"] for r in page.reports]


def test_pages_are_newest_first_and_next_walks_to_the_end():
    q = paging.parse_query({"limit": "2"})
    first = paging.page(REPORTS, q)
    assert ids(first) == ["20261205T120000Z", "20261204T120000Z"]
    assert first.next_before == "20261204T120000Z"
    second = paging.page(REPORTS, paging.Query(limit=2, before=first.next_before))
    third = paging.page(REPORTS, paging.Query(limit=2, before=second.next_before))
    assert ids(second) == ["20261203T120000Z", "20261202T120000Z"]
    assert ids(third) == ["20261201T120000Z"] and third.next_before is None


def test_since_is_inclusive_and_takes_any_offset():
    q = paging.parse_query({"since": "2026-12-04T13:00:00+01:00"})  # = 12:00Z on the 4th
    got = paging.page(REPORTS, q)
    assert ids(got) == ["20261205T120000Z", "20261204T120000Z"] and got.next_before is None
    assert q.since == datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert paging.parse_query({"since": "20261204T120000Z"}).since == q.since  # a report id works too


def test_a_page_exactly_full_has_no_next():
    assert paging.page(REPORTS, paging.Query(limit=5)).next_before is None


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": str(paging.MAX_LIMIT + 1)}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-12-01T00:00:00"}, "since"),  # no zone
        ({"before": "20261301"}, "before"),
    ],
)
def test_bad_queries_name_the_parameter(params, field):
    with pytest.raises(paging.BadQuery, match=f"^{field}:"):
        paging.parse_query(params)


# -- links and negotiation -------------------------------------------------------------------------


def test_links_are_computed_from_the_base_and_names():
    rels = {link["rel"]: link["href"] for link in links.monitor_links("http://api", "ns", "web")}
    assert rels == {
        "self": "http://api/monitors/ns/web",
        "status": "http://api/monitors/ns/web/status",
        "reports": "http://api/monitors/ns/web/reports",
        "alternate": "http://api/monitors/ns/web/reports.atom",
    }
    assert links.reports("http://api", "ns", "web", limit=2, since=None, before="X") == (
        "http://api/monitors/ns/web/reports?limit=2&before=X"
    )
    caps = links.capabilities("http://api")
    assert {link["rel"] for link in caps["links"]} >= {
        "monitor",
        "reports",
        "report",
        "feed",
        "status",
        "activities",
    }


@pytest.mark.parametrize(
    "accept, atom",
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/atom+xml", True),
        ("application/atom+xml, application/json;q=0.5", True),
        ("application/json, application/atom+xml;q=0.9", False),
        ("application/atom+xml;q=0", False),
    ],
)
def test_content_negotiation(accept, atom):
    assert links.wants_atom(accept) is atom


def test_json_reports_page_links_next_and_the_feed():
    q = paging.Query(limit=2)
    doc = documents.reports("http://api", MON, q, paging.page(REPORTS, q))
    assert doc["next"] == "http://api/monitors/ns/web/reports?limit=2&before=20261204T120000Z"
    rels = {link["rel"]: link for link in doc["links"]}
    assert rels["alternate"]["type"] == links.ATOM and rels["next"]["href"] == doc["next"]
    assert doc["items"][0]["links"][0]["href"] == "http://api/monitors/ns/web/report/20261205T120000Z"


def test_activities_group_every_monitor_by_app():
    other = {**MON, "metadata": {**MON["metadata"], "namespace": "b", "name": "x"}}
    doc = documents.activities("http://api", [MON, other])
    (item,) = doc["items"]
    assert item["app"] == "img:1"
    assert [(m["namespace"], m["monitor"], m["reliability"]) for m in item["monitors"]] == [
        ("b", "x", 0.75),
        ("ns", "web", 0.75),
    ]


# -- the access rule ---------------------------------------------------------------------------------


def test_bearer_tokens():
    assert access.bearer_token("Bearer abc.def-_") == "abc.def-_"
    assert access.bearer_token("bearer abc") == "abc"
    assert access.bearer_token(None) is None
    assert access.bearer_token("Basic abc") is None
    assert access.bearer_token("Bearer a b") is None
    assert access.bearer_token("Bearer " + "a" * (access.MAX_TOKEN + 1)) is None


def test_the_access_review_asks_get_monitors_on_that_monitor_for_that_user():
    user = {"username": "system:serviceaccount:ns:reader", "uid": "u", "groups": ["g"], "extra": {"k": ["v"]}}
    body = access.access_review(user, "get", "ns", "web")
    assert body["spec"] == {
        "user": "system:serviceaccount:ns:reader",
        "uid": "u",
        "groups": ["g"],
        "extra": {"k": ["v"]},
        "resourceAttributes": {
            "group": "mmif.dev",
            "resource": "monitors",
            "verb": "get",
            "namespace": "ns",
            "name": "web",
        },
    }
    cluster = access.access_review(user, "list", None)
    assert "namespace" not in cluster["spec"]["resourceAttributes"]


def test_decisions():
    assert access.user_of({"status": {"authenticated": False}}) is None
    user = access.user_of({"status": {"authenticated": True, "user": {"username": "alice"}}})
    assert user == {"username": "alice"}
    assert access.decide(None, None) is access.Decision.UNAUTHENTICATED
    assert access.decide(user, {"status": {"allowed": False}}) is access.Decision.FORBIDDEN
    assert access.decide(user, {"status": {"allowed": True}}) is access.Decision.ALLOWED


# -- the feed ---------------------------------------------------------------------------------------


def test_the_feed_is_valid_atom_and_its_entries_are_the_reports():
    q = paging.Query(limit=3)
    body = feed.build("http://api", MON, q, paging.page(REPORTS, q))
    assert SCHEMA.validate(etree.fromstring(body)), SCHEMA.error_log
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0
    assert parsed.feed.id == "urn:uuid:m-uid"
    assert [e.title for e in parsed.entries] == [
        "Passed monitoring at 2026-12-05T12:00:00Z",
        "Passed monitoring at 2026-12-04T12:00:00Z",
        "Failed monitoring at 2026-12-03T12:00:00Z",
    ]
    assert [e.id for e in parsed.entries] == ["urn:uuid:r-5", "urn:uuid:r-4", "urn:uuid:r-3"]
    assert parsed.entries[2].summary == "1 activity failed"
    assert "AppError: boom" in parsed.entries[2].content[0].value
    (alternate,) = [link for link in parsed.entries[2].links if link.rel == "alternate"]
    assert (alternate.href, alternate.type) == (
        "http://api/monitors/ns/web/report/20261203T120000Z",
        links.JSON,
    )
    nxt = [link.href for link in parsed.feed.links if link.rel == "next"]
    assert nxt == ["http://api/monitors/ns/web/reports.atom?limit=3&before=20261203T120000Z"]
    assert parsed.feed.updated == "2026-12-05T12:00:07Z"


def test_an_empty_feed_is_still_valid():
    body = feed.build("http://api", MON, paging.Query(), paging.Page([], None))
    assert SCHEMA.validate(etree.fromstring(body)), SCHEMA.error_log


def test_the_schema_refuses_a_feed_without_an_id():
    root = etree.fromstring(feed.build("http://api", MON, paging.Query(), paging.Page([], None)))
    root.remove(root.find(f"{ATOM}id"))
    assert not SCHEMA.validate(root)


# -- the routes, over a stand-in client -------------------------------------------------------------


class FakeKube:
    """Tokens: `reader` may get monitors in `ns`; `stranger` is authenticated, allowed nothing;
    `admin` may also list monitors cluster-wide; anything else is not authenticated."""

    def __init__(self):
        self.reads: list[tuple] = []

    async def token_review(self, body):
        token = body["spec"]["token"]
        if token not in ("reader", "stranger", "admin"):
            return {"status": {"authenticated": False}}
        return {"status": {"authenticated": True, "user": {"username": token, "groups": []}}}

    async def subject_access_review(self, body):
        spec = body["spec"]
        attrs = spec["resourceAttributes"]
        allowed = (
            spec["user"] in ("reader", "admin") and attrs["verb"] == "get" and attrs.get("namespace") == "ns"
        ) or (spec["user"] == "admin" and attrs["verb"] == "list" and "namespace" not in attrs)
        return {"status": {"allowed": allowed}}

    async def get_custom(self, plural, namespace, name):
        self.reads.append((plural, namespace, name))
        if plural == "monitors":
            return MON if (namespace, name) == ("ns", "web") else None
        return next((r for r in REPORTS + [report(9, owner="other")] if r["metadata"]["name"] == name), None)

    async def list_custom(self, plural, namespace, labels):
        self.reads.append((plural, namespace, dict(labels)))
        return REPORTS + [report(9, owner="other")]

    async def list_custom_all(self, plural):
        return [MON]


def run_api(scenario):
    async def main():
        kube = FakeKube()
        client = TestClient(TestServer(make_app(kube, "http://api")))  # type: ignore[arg-type]
        await client.start_server()
        try:
            await scenario(client, kube)
        finally:
            await client.close()

    asyncio.run(main())


def test_routes_401_then_403_before_any_read_then_404():
    async def scenario(client, kube):
        assert (await client.get("/monitors/ns/web")).status == 401
        assert (
            await client.get("/monitors/ns/web", headers={"Authorization": "Bearer nobody"})
        ).status == 401
        assert (
            await client.get("/monitors/ns/web", headers={"Authorization": "Bearer stranger"})
        ).status == 403
        assert (
            await client.get("/monitors/other/web", headers={"Authorization": "Bearer reader"})
        ).status == 403
        assert (
            await client.get("/monitors/other/nope/reports.atom", headers={"Authorization": "Bearer reader"})
        ).status == 403
        assert (await client.get("/activities", headers={"Authorization": "Bearer reader"})).status == 403
        assert kube.reads == []  # nothing was read for a refused caller
        assert (
            await client.get("/monitors/ns/nope", headers={"Authorization": "Bearer reader"})
        ).status == 404
        # Another monitor's report (same namespace, another owner) is not this monitor's.
        r = await client.get(
            "/monitors/ns/web/report/20261209T120000Z", headers={"Authorization": "Bearer reader"}
        )
        assert r.status == 404

    run_api(scenario)


def test_routes_serve_json_atom_and_activities():
    async def scenario(client, kube):
        auth = {"Authorization": "Bearer reader"}
        page = await (await client.get("/monitors/ns/web/reports?limit=2", headers=auth)).json()
        assert [i["id"] for i in page["items"]] == ["20261205T120000Z", "20261204T120000Z"]
        assert page["next"].startswith("http://api/monitors/ns/web/reports?limit=2&before=")
        r = await client.get("/monitors/ns/web/reports", headers={**auth, "Accept": "application/atom+xml"})
        assert r.status == 200 and r.content_type == "application/atom+xml"
        parsed = feedparser.parse(await r.read())
        assert parsed.bozo == 0 and len(parsed.entries) == len(REPORTS)  # report 9 is another owner's
        assert (await client.get("/monitors/ns/web/reports?limit=x", headers=auth)).status == 400
        one = await (await client.get("/monitors/ns/web/report/20261203T120000Z", headers=auth)).json()
        assert one["result"] == "Failed"
        status = await (await client.get("/monitors/ns/web/status", headers=auth)).json()
        assert status["health"] == "Degraded"
        acts = await (await client.get("/activities", headers={"Authorization": "Bearer admin"})).json()
        assert acts["items"][0]["app"] == "img:1"
        root = await (await client.get("/")).json()
        assert root["links"][0]["href"] == "http://api/"

    run_api(scenario)
