"""Who a request is and what it may see: pure decisions (the calls are in routes.py and kube.py).

A request's identity is the person's own Kubernetes bearer token: the `Authorization: Bearer`
header (scripts, `kubectl mmif console`) or the console's session cookie (set by the login page,
HttpOnly, gone when the browser closes). The console never falls back to its ServiceAccount.

Access to a namespace's live stream follows from a `list pipelineruns` made with the person's
token: the stream opens only when it succeeded, and is re-checked every `recheck_seconds`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

COOKIE = "mmif_console_token"
MAX_TOKEN = 8192
# A bearer token is one printable-ASCII word (RFC 6750's b64token, and every Kubernetes token).
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


def valid_token(token: str | None) -> bool:
    return bool(token) and len(token or "") <= MAX_TOKEN and bool(_TOKEN.match(token or ""))


def token_from(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The request's token: the Authorization header first, then the session cookie; None when
    neither holds a well-formed one."""
    header = headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() if valid_token(value.strip()) else None
    cookie = cookies.get(COOKIE)
    return cookie if valid_token(cookie) else None


class Access(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"  # 403: the token is valid, RBAC refuses
    UNAUTHENTICATED = "unauthenticated"  # 401: the token is not (or no longer) valid
    UNKNOWN = "unknown"  # anything else (API server unreachable, 5xx): not granted, try again


def decide(status: int) -> Access:
    """What the HTTP status of a `list pipelineruns` made with the person's token means."""
    if 200 <= status < 300:
        return Access.ALLOWED
    if status == 401:
        return Access.UNAUTHENTICATED
    if status == 403:
        return Access.DENIED
    return Access.UNKNOWN


def message(access: Access, namespace: str, detail: str = "") -> str:
    """What the page says when the access is not granted."""
    if access is Access.ALLOWED:
        return ""
    if access is Access.DENIED:
        text = f"Not allowed: your Kubernetes identity may not list PipelineRuns in namespace {namespace}."
    elif access is Access.UNAUTHENTICATED:
        text = "Your token is not accepted by the Kubernetes API server (expired or revoked): log in again."
    else:
        text = f"Could not check your access to namespace {namespace}; retrying."
    return f"{text} ({detail})" if detail else text


@dataclass
class Grant:
    """A stream's standing permission: when it was last confirmed."""

    namespace: str
    checked_at: float

    def due(self, now: float, interval: float) -> bool:
        return now - self.checked_at >= interval

    def next_check_in(self, now: float, interval: float) -> float:
        return max(0.0, self.checked_at + interval - now)
