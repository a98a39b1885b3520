"""Who asked, recorded at admission: the decision for one admission request, pure.

At CREATE of a PipelineRun or AnalysisJob the webhook writes `spec.requester` from the admission
request's userInfo (the authenticated user as the API server saw it, impersonation included).
A requester written by hand is rejected, except from the operator itself, which copies a run's
requester into the AnalysisJobs the run triggers (after a SubjectAccessReview for that user).
At UPDATE, a changed or removed requester is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmif_operator.core.requester import TooManyGroups, split_groups


class Denied(Exception):
    """The request must be rejected; the message is what the user reads."""


def user_info(userinfo: Mapping[str, Any] | None) -> dict[str, Any]:
    """The admission request's userInfo as a `spec.requester` (empty fields left out); groups
    beyond the first 64 go compressed into `moreGroups` (core/requester.py)."""
    info = dict(userinfo or {})
    out: dict[str, Any] = {"username": str(info.get("username") or "")}
    if info.get("uid"):
        out["uid"] = str(info["uid"])
    if info.get("groups"):
        out.update(split_groups([str(g) for g in info["groups"]]))
    if info.get("extra"):
        out["extra"] = {str(k): [str(x) for x in (v or [])] for k, v in dict(info["extra"]).items()}
    return out


def decide(
    operation: str,
    kind: str,
    userinfo: Mapping[str, Any] | None,
    spec: Mapping[str, Any] | None,
    old_spec: Mapping[str, Any] | None,
    operator_username: str | None,
) -> dict[str, Any] | None:
    """The requester to write (CREATE), None when nothing is to change; `Denied` to reject."""
    new = (spec or {}).get("requester")
    try:
        user = user_info(userinfo)
    except TooManyGroups as e:
        raise Denied(f"{kind}: spec.requester cannot record who creates the object: {e}") from None
    if operation == "CREATE":
        if new is None:
            if not user["username"]:
                raise Denied(f"{kind}: the request has no authenticated user to record as spec.requester")
            return user
        if operator_username and user["username"] == operator_username:
            return None  # a triggered AnalysisJob: the operator copies the run's requester
        raise Denied(
            f"{kind}: spec.requester is set by the API server from the user who creates the "
            f"object (here {user['username']!r}); remove spec.requester from the request"
        )
    if operation == "UPDATE":
        old = (old_spec or {}).get("requester")
        if new != old:
            what = "removed" if new is None else "changed"
            raise Denied(f"{kind}: spec.requester cannot be {what}: it records who created the object")
    return None
