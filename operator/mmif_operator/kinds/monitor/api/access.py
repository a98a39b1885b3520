"""Who may read what (pure): the SubjectAccessReviews the API asks for, and what their answers
mean.

One rule: every document of a monitor (the monitor, its status, its reports, one report, the
feed) needs `get monitors.mmif.dev` on that monitor (by name, so a Role with `resourceNames`
works) in its namespace. Reports need no separate `get healthreports`: the status already lists
the latest reports, so a second verb would only hide from the feed what the status shows.
`/activities` (every app of every monitor, cluster-wide) needs `list monitors.mmif.dev` in all
namespaces. A refusal is 403 whether the monitor exists or not (asked before it is read), so
another namespace's monitor names do not leak.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

from mmif_operator.core.specs import API_GROUP
from mmif_operator.kinds.monitor.model import PLURAL

MAX_TOKEN = 8192
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


class Decision(enum.Enum):
    ALLOWED = 200
    UNAUTHENTICATED = 401
    FORBIDDEN = 403


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent or malformed."""
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN or not _TOKEN.match(value):
        return None
    return value


def token_review(token: str) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}


def user_of(review: Mapping[str, Any]) -> dict[str, Any] | None:
    """The user a TokenReview's answer names, or None when the token is not authenticated."""
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    return dict(user) if user.get("username") else None


def access_review(
    user: Mapping[str, Any], verb: str, namespace: str | None, name: str | None = None
) -> dict[str, Any]:
    """The SubjectAccessReview for `verb monitors` by `user` (namespace None: all namespaces)."""
    attributes: dict[str, Any] = {"group": API_GROUP, "resource": PLURAL, "verb": verb}
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    spec: dict[str, Any] = {
        "user": user.get("username"),
        "groups": list(user.get("groups") or []),
        "resourceAttributes": attributes,
    }
    if user.get("uid"):
        spec["uid"] = user["uid"]
    if user.get("extra"):
        spec["extra"] = {k: list(v) for k, v in user["extra"].items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def decide(user: Mapping[str, Any] | None, review: Mapping[str, Any] | None) -> Decision:
    """401 without an authenticated user; 403 unless the access review allowed it."""
    if user is None:
        return Decision.UNAUTHENTICATED
    if review is None or not (review.get("status") or {}).get("allowed"):
        return Decision.FORBIDDEN
    return Decision.ALLOWED
