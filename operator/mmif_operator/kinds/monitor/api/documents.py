"""The JSON documents of the API (pure): a monitor, its status, a report, a page of reports, the
activities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mmif_operator.kinds.monitor.api import links
from mmif_operator.kinds.monitor.api.paging import Page, Query, rfc3339


def _names(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def monitor(base: str, mon: Mapping[str, Any]) -> dict[str, Any]:
    namespace, name = _names(mon)
    return {
        "namespace": namespace,
        "name": name,
        "uid": (mon.get("metadata") or {}).get("uid"),
        "title": (mon.get("spec") or {}).get("title") or name,
        "spec": mon.get("spec") or {},
        "status": mon.get("status") or {},
        "links": links.monitor_links(base, namespace, name),
    }


def status(base: str, mon: Mapping[str, Any]) -> dict[str, Any]:
    namespace, name = _names(mon)
    return {
        "namespace": namespace,
        "name": name,
        **(mon.get("status") or {}),
        "links": [
            {"rel": "self", "href": links.status(base, namespace, name), "type": links.JSON},
            {"rel": "monitor", "href": links.monitor(base, namespace, name), "type": links.JSON},
        ],
    }


def report(base: str, rep: Mapping[str, Any]) -> dict[str, Any]:
    namespace, _ = _names(rep)
    spec = rep.get("spec") or {}
    monitor_name = spec.get("monitor", "")
    return {
        **spec,
        "name": (rep.get("metadata") or {}).get("name"),
        "created": (rep.get("metadata") or {}).get("creationTimestamp"),
        "links": [
            {
                "rel": "self",
                "href": links.report(base, namespace, monitor_name, spec.get("id", "")),
                "type": links.JSON,
            },
            {"rel": "monitor", "href": links.monitor(base, namespace, monitor_name), "type": links.JSON},
        ],
    }


def _query(query: Query, before: str | None) -> dict[str, Any]:
    return {
        "limit": query.limit,
        "since": rfc3339(query.since) if query.since else None,
        "before": before,
    }


def reports(base: str, mon: Mapping[str, Any], query: Query, got: Page) -> dict[str, Any]:
    namespace, name = _names(mon)
    doc_links = [
        {
            "rel": "self",
            "href": links.reports(base, namespace, name, **_query(query, query.before)),
            "type": links.JSON,
        },
        {
            "rel": "alternate",
            "href": links.feed(base, namespace, name, **_query(query, query.before)),
            "type": links.ATOM,
        },
        {"rel": "monitor", "href": links.monitor(base, namespace, name), "type": links.JSON},
    ]
    doc: dict[str, Any] = {
        "namespace": namespace,
        "monitor": name,
        "items": [report(base, r) for r in got.reports],
        "links": doc_links,
        "next": None,
    }
    if got.next_before:
        nxt = links.reports(base, namespace, name, **_query(query, got.next_before))
        doc["next"] = nxt
        doc_links.append({"rel": "next", "href": nxt, "type": links.JSON})
    return doc


def activities(base: str, monitors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Every activity (step + app) of every monitor, grouped by app."""
    apps: dict[str, dict[str, Any]] = {}
    for mon in monitors:
        namespace, name = _names(mon)
        for act in (mon.get("status") or {}).get("activities") or []:
            app = act.get("app") or ""
            entry = apps.setdefault(app, {"app": app or None, "monitors": []})
            entry["monitors"].append(
                {
                    "namespace": namespace,
                    "monitor": name,
                    "step": act.get("step"),
                    "tests": act.get("tests"),
                    "passed": act.get("passed"),
                    "reliability": act.get("reliability"),
                    "href": links.monitor(base, namespace, name),
                }
            )
    items = [apps[k] for k in sorted(apps)]
    for item in items:
        item["monitors"].sort(key=lambda m: (m["namespace"], m["monitor"], m["step"] or ""))
    return {"items": items, "links": [{"rel": "self", "href": f"{base}/activities", "type": links.JSON}]}
