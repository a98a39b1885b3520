"""A monitor's reports as an Atom 1.0 feed (RFC 4287), written with lxml (pure).

Ids are `urn:uuid:` URIs of the objects' uids (the Monitor's for the feed, each HealthReport's for
its entry): permanent, and never reused by a later monitor of the same name. An entry's title is
"Passed monitoring at <time>" / "Failed monitoring at <time>", its summary the report's (e.g.
"1 activity failed"), `published` the test's scheduled time and `updated` when the report was
written. Paging links follow RFC 5005 (`next`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from mmif_operator.kinds.monitor.api import links
from mmif_operator.kinds.monitor.api.paging import Page, Query, id_time, rfc3339

ATOM_NS = "http://www.w3.org/2005/Atom"
GENERATOR = "mmif-operator"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = text
    return el


def entry_title(rep: Mapping[str, Any]) -> str:
    spec = rep.get("spec") or {}
    return f"{spec.get('result', 'Unknown')} monitoring at {rfc3339(id_time(spec['id']))}"


def _detail(spec: Mapping[str, Any]) -> str:
    lines = [spec.get("summary") or ""]
    for act in spec.get("failedActivities") or []:
        who = " ".join(
            p for p in (f"step {act['step']}" if act.get("step") else "", act.get("app") or "") if p
        )
        lines.append(f"{who or 'the run'}: {act.get('reason', '')}: {act.get('message', '')}".rstrip(": "))
    return "\n".join(lines)


def build(base: str, mon: Mapping[str, Any], query: Query, got: Page) -> bytes:
    meta = mon.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    title = (mon.get("spec") or {}).get("title") or name
    q = {"limit": query.limit, "since": rfc3339(query.since) if query.since else None}
    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    _el(root, "id", f"urn:uuid:{meta.get('uid')}")
    _el(root, "title", f"{title}: health reports")
    _el(root, "subtitle", f"Tests of monitor {namespace}/{name}")
    latest = [r.get("metadata", {}).get("creationTimestamp") for r in got.reports]
    updated = max([t for t in latest if t] or [meta.get("creationTimestamp") or "1970-01-01T00:00:00Z"])
    _el(root, "updated", updated)
    author = _el(root, "author")
    _el(author, "name", GENERATOR)
    _el(root, "generator", GENERATOR)
    _el(
        root,
        "link",
        rel="self",
        type=links.ATOM,
        href=links.feed(base, namespace, name, **q, before=query.before),
    )
    _el(root, "link", rel="alternate", type=links.JSON, href=links.monitor(base, namespace, name))
    if got.next_before:
        _el(
            root,
            "link",
            rel="next",
            type=links.ATOM,
            href=links.feed(base, namespace, name, **q, before=got.next_before),
        )
    for rep in got.reports:
        spec = rep.get("spec") or {}
        rmeta = rep.get("metadata") or {}
        entry = _el(root, "entry")
        _el(entry, "id", f"urn:uuid:{rmeta.get('uid')}")
        _el(entry, "title", entry_title(rep))
        _el(entry, "published", rfc3339(id_time(spec["id"])))
        _el(entry, "updated", rmeta.get("creationTimestamp") or rfc3339(id_time(spec["id"])))
        _el(
            entry,
            "link",
            rel="alternate",
            type=links.JSON,
            href=links.report(base, namespace, name, spec["id"]),
        )
        _el(entry, "category", term=str(spec.get("result", "")))
        _el(entry, "summary", spec.get("summary") or "", type="text")
        _el(entry, "content", _detail(spec), type="text")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
