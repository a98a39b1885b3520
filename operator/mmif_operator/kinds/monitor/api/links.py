"""The API's URLs, computed from the base URL and the object's names (never from user input in a
spec: a Monitor has no field that changes its links)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

ATOM = "application/atom+xml"
JSON = "application/json"


def monitor(base: str, namespace: str, name: str) -> str:
    return f"{base}/monitors/{quote(namespace)}/{quote(name)}"


def reports(base: str, namespace: str, name: str, **query: str | int | None) -> str:
    url = f"{monitor(base, namespace, name)}/reports"
    params = {k: v for k, v in query.items() if v is not None}
    return f"{url}?{urlencode(params)}" if params else url


def feed(base: str, namespace: str, name: str, **query: str | int | None) -> str:
    url = f"{monitor(base, namespace, name)}/reports.atom"
    params = {k: v for k, v in query.items() if v is not None}
    return f"{url}?{urlencode(params)}" if params else url


def report(base: str, namespace: str, name: str, report_id: str) -> str:
    return f"{monitor(base, namespace, name)}/report/{quote(report_id)}"


def status(base: str, namespace: str, name: str) -> str:
    return f"{monitor(base, namespace, name)}/status"


def monitor_links(base: str, namespace: str, name: str) -> list[dict[str, str]]:
    """The links every monitor document carries (`self`, `status`, `reports`, and the feed as
    `alternate`)."""
    return [
        {"rel": "self", "href": monitor(base, namespace, name), "type": JSON},
        {"rel": "status", "href": status(base, namespace, name), "type": JSON},
        {"rel": "reports", "href": reports(base, namespace, name), "type": JSON},
        {"rel": "alternate", "href": feed(base, namespace, name), "type": ATOM},
    ]


def capabilities(base: str) -> dict:
    """The root document: what the API offers, as URI templates (RFC 6570 level 1)."""
    return {
        "service": "mmif-operator monitors API",
        "version": "v1alpha1",
        "links": [
            {"rel": "self", "href": f"{base}/", "type": JSON},
            {"rel": "monitor", "href": f"{base}/monitors/{{namespace}}/{{name}}", "templated": True},
            {"rel": "status", "href": f"{base}/monitors/{{namespace}}/{{name}}/status", "templated": True},
            {
                "rel": "reports",
                "href": f"{base}/monitors/{{namespace}}/{{name}}/reports{{?limit,since,before}}",
                "templated": True,
            },
            {
                "rel": "report",
                "href": f"{base}/monitors/{{namespace}}/{{name}}/report/{{id}}",
                "templated": True,
            },
            {
                "rel": "feed",
                "href": f"{base}/monitors/{{namespace}}/{{name}}/reports.atom{{?limit,since,before}}",
                "type": ATOM,
                "templated": True,
            },
            {"rel": "activities", "href": f"{base}/activities", "type": JSON},
        ],
        "authentication": "Authorization: Bearer <a Kubernetes token> (checked by TokenReview)",
    }


def wants_atom(accept: str) -> bool:
    """Content negotiation on `/reports`: Atom when the client prefers application/atom+xml over
    JSON (by q-value; ties go to JSON, the default)."""
    atom_q = json_q = -1.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            key, _, value = p.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == ATOM:
            atom_q = max(atom_q, q)
        elif media in (JSON, "application/*", "*/*"):
            json_q = max(json_q, q)
    return atom_q > 0 and atom_q > json_q
