"""May this `url` be called from this namespace? The validating webhook's decision, pure.

A Service-mode app the operator runs mounts its namespace's workspace, so it must not be called
from another namespace's runs (issue: one namespace reads another's volume). The NetworkPolicy
shipped with each app enforces that where a NetworkPolicy controller runs; this check holds on
every cluster: the `url` of a Pipeline step, of a Pipeline's analysis template, or of an
AnalysisJob's app may not name one of the operator's app Services of *another* namespace,

* by DNS name: `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<cluster domain>` (any case, a trailing dot,
  any port or user info), the forms a pod's resolver turns into that Service;
* by address: its ClusterIP, however written (`10.96.0.12`, `10.96.12`, `0x0a600c0c`,
  `167772172`, `[fd00::c]`), or the pod DNS form that resolves to it (`10-96-0-12.ns.pod`).

A bare `svc` resolves in the caller's own namespace, which is allowed. What this cannot see: an
address that reaches the app another way (an app pod's IP, an ExternalName Service of one's own
pointing at it, a proxy): the NetworkPolicy is what stops those (docs/howto.md).

`targets` parses; the handler looks the named Services up; `refusal` decides.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core.names import is_dns1123_label


@dataclass(frozen=True)
class Target:
    """What a url's host designates, as far as Services go."""

    url: str
    field: str  # e.g. "spec.steps[1].url"
    service: tuple[str, str] | None = None  # (namespace, name) named by DNS
    ip: str | None = None  # a literal address (normalised)


@dataclass(frozen=True)
class AppService:
    """One of the operator's app Services, as the webhook found it."""

    namespace: str
    name: str
    cluster_ips: tuple[str, ...] = ()

    @classmethod
    def from_service(cls, svc: Mapping[str, Any]) -> AppService:
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        ips = [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])]
        return cls(
            meta.get("namespace", ""),
            meta.get("name", ""),
            tuple(dict.fromkeys(_norm_ip(ip) for ip in ips if ip and ip != "None")),
        )


def is_app_service(svc: Mapping[str, Any] | None) -> bool:
    """A Service the operator keeps for a Service-mode step, or for a run's pool of a warm
    Job-mode step (by its labels)."""
    labels = ((svc or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(L.MANAGED_BY) == L.MANAGER and labels.get(L.COMPONENT) in (
        L.COMPONENT_APP_SERVICE,
        L.COMPONENT_APP_POOL,
    )


def url_fields(kind: str, spec: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(field path, url) of every app url in a Pipeline's, AnalysisJob's or Monitor's spec, and
    of every notification webhook of a Pipeline, Monitor or Project (the operator POSTs there for
    the namespace; a Project's: the project's namespace)."""
    spec = spec or {}
    out: list[tuple[str, str]] = []
    if kind == "Pipeline":
        for i, step in enumerate(spec.get("steps") or []):
            if isinstance(step, Mapping) and step.get("url"):
                out.append((f"spec.steps[{i}].url", str(step["url"])))
            for j, alt in enumerate((step.get("alternatives") or []) if isinstance(step, Mapping) else []):
                if isinstance(alt, Mapping) and alt.get("url"):
                    out.append((f"spec.steps[{i}].alternatives[{j}].url", str(alt["url"])))
        for i, analysis in enumerate(spec.get("analyses") or []):
            app = (analysis or {}).get("app") if isinstance(analysis, Mapping) else None
            if isinstance(app, Mapping) and app.get("url"):
                out.append((f"spec.analyses[{i}].app.url", str(app["url"])))
        for i, target in enumerate(spec.get("notifications") or []):
            hook = (target or {}).get("webhook") if isinstance(target, Mapping) else None
            if isinstance(hook, Mapping) and hook.get("url"):
                out.append((f"spec.notifications[{i}].webhook.url", str(hook["url"])))
    elif kind == "AnalysisJob":
        app = spec.get("app")
        if isinstance(app, Mapping) and app.get("url"):
            out.append(("spec.app.url", str(app["url"])))
    elif kind in ("Monitor", "Project"):
        target = spec.get("target")
        app = (target or {}).get("app") if kind == "Monitor" and isinstance(target, Mapping) else None
        if isinstance(app, Mapping) and app.get("url"):
            out.append(("spec.target.app.url", str(app["url"])))
        for i, target in enumerate(spec.get("notifications") or []):
            hook = (target or {}).get("webhook") if isinstance(target, Mapping) else None
            if isinstance(hook, Mapping) and hook.get("url"):
                out.append((f"spec.notifications[{i}].webhook.url", str(hook["url"])))
    return out


def _norm_ip(text: str) -> str:
    """An address in canonical form; an IPv4-mapped IPv6 address as the IPv4 one it reaches."""
    ip = ipaddress.ip_address(text)
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def literal_ip(host: str) -> str | None:
    """`host` as an address when the resolver would read it as one (glibc's inet_aton forms:
    dotted, shortened, octal, hex, one number; or IPv6), normalised; else None."""
    host = host.strip("[]")
    try:
        return _norm_ip(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _pod_form_ip(labels: list[str]) -> str | None:
    """`a-b-c-d.<ns>.pod[.<domain>]`: CoreDNS answers the address in the name."""
    if len(labels) >= 3 and labels[2] == "pod":
        dashed = labels[0]
        return literal_ip(dashed.replace("-", ".")) or literal_ip(dashed.replace("-", ":"))
    return None


def targets(kind: str, spec: Mapping[str, Any] | None, namespace: str) -> list[Target]:
    """What every app url of `spec` designates that could be another namespace's app Service:
    a Service named in another namespace than `namespace`, or a literal address."""
    out: list[Target] = []
    for field, url in url_fields(kind, spec):
        try:
            host = urllib.parse.urlsplit(url).hostname or ""
        except ValueError:
            continue  # the CRD's pattern admits only http(s)://...; nothing to reach
        host = host.lower().rstrip(".")
        ip = literal_ip(host)
        if ip is None:
            ip = _pod_form_ip(host.split("."))
        if ip is not None:
            out.append(Target(url, field, ip=ip))
            continue
        labels = host.split(".")
        if len(labels) >= 2 and (len(labels) == 2 or labels[2] == "svc"):
            name, ns = labels[0], labels[1]
            if ns != namespace and is_dns1123_label(name) and is_dns1123_label(ns):
                out.append(Target(url, field, service=(ns, name)))
    return out


def refusal(target: Target, namespace: str, apps: Iterable[AppService]) -> str | None:
    """Why `target` is refused for a caller in `namespace` (None: allowed), given the operator's
    app Services found (for a DNS target: the Service it names, if it is one; for an address:
    every app Service)."""
    for app in apps:
        if app.namespace == namespace:
            continue
        if target.service == (app.namespace, app.name) or (target.ip and target.ip in app.cluster_ips):
            how = "names" if target.service else f"is the address ({target.ip}) of"
            return (
                f"{target.field}: {target.url!r} {how} the app Service {app.name} that the "
                f"operator runs for namespace {app.namespace}: its pods mount that namespace's "
                f"workspace, so only its own namespace's runs may call it"
            )
    return None
