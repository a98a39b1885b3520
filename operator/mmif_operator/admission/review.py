"""A review decision, at admission: the webhook's decision for `spec.review` of a PipelineRun, pure.

A reviewer passes or fails a run awaiting review by setting `spec.review.decision` (and a
`comment`), e.g. with `kubectl patch`. When a request sets `spec.review` (a CREATE that carries
it, an UPDATE that sets, changes or removes it) the webhook, in this order:

1. asks the API server (a SubjectAccessReview with the requesting user's name, uid, every group
   and extra, as the requester check does) whether the user may `review` (a custom verb)
   `pipelineruns.mmif.dev` in the run's namespace, and refuses when not: Roles grant reviewing
   like any verb (manifests/review-rbac.yaml ships the ClusterRole `mmif-reviewer`);
2. refuses a change or removal of a decision already made (the CRD's CEL rule refuses that too;
   the webhook names the field);
3. refuses `reviewer` or `decidedAt` in the request: only the webhook writes them;
4. refuses a decision on a run that is not in phase `AwaitingReview` (a new run has no phase);
5. refuses `onConflict: Ignore` unless the run's project allows it (`spec.conflicts.allowIgnore`);
6. records who decided and when: `reviewer` = the user's name, `decidedAt` = now (RFC 3339, UTC).

The one change of a decision made that is admitted: a `Pass` whose publishing conflicts blocked
(the run `AwaitingReview` with condition `Conflict` reason `ConflictsFound`) may be given
`onConflict: Supersede` or `Ignore`, with a new comment or not; the webhook records the new
reviewer and time (who chose to override the conflicts, and when).

Every other request never reaches the webhook (the matchConditions of manifests/webhook.yaml
send only requests that touch `spec.review`); `touches_review` is the same test, for a request
that arrives anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mmif_operator.admission.requester import Denied
from mmif_operator.core.specs import API_GROUP
from mmif_operator.core.status import cut, rfc3339
from mmif_operator.kinds.analysisjob.triggers import access_review as _access_review
from mmif_operator.kinds.pipelinerun.model import PLURAL as RUN_PLURAL
from mmif_operator.kinds.pipelinerun.model import RunPhase

VERB = "review"
#: The run phase in which a decision is taken (of the run-with-review template).
AWAITING_REVIEW = RunPhase.AWAITING_REVIEW.value
#: The fields of `spec.review` the webhook writes; a request that sets them is refused.
RECORDED = ("reviewer", "decidedAt")
HOWTO = "docs/howto.md"
#: What a reviewer may set again on a Pass that conflicts blocked.
REDECIDABLE = ("onConflict", "comment")
BLOCK, IGNORE = "Block", "Ignore"


def touches_review(
    operation: str, spec: Mapping[str, Any] | None, old_spec: Mapping[str, Any] | None
) -> bool:
    """Does the request set, change or remove `spec.review`? (The webhook's matchCondition.)"""
    new = (spec or {}).get("review")
    if operation == "CREATE":
        return new is not None
    if operation == "UPDATE":
        return new != (old_spec or {}).get("review")
    return False


def _user(userinfo: Mapping[str, Any] | None) -> dict[str, Any]:
    """The admission request's userInfo, every group kept (nothing is stored, so nothing split)."""
    info = dict(userinfo or {})
    user: dict[str, Any] = {
        "username": str(info.get("username") or ""),
        "groups": [str(g) for g in info.get("groups") or ()],
    }
    if info.get("uid"):
        user["uid"] = str(info["uid"])
    if info.get("extra"):
        user["extra"] = {str(k): [str(x) for x in (v or ())] for k, v in dict(info["extra"]).items()}
    return user


def access_review(userinfo: Mapping[str, Any] | None, namespace: str) -> dict[str, Any]:
    """May the requesting user `review` `pipelineruns.mmif.dev` in `namespace`? The
    SubjectAccessReview the operator makes for triggered analyses, with this verb and resource."""
    return _access_review(_user(userinfo), namespace, verb=VERB, resource=RUN_PLURAL)


def _refused_access(user: str, namespace: str, answer: Mapping[str, Any]) -> str | None:
    status = answer.get("status") or {}
    if status.get("allowed") and not status.get("denied"):
        return None
    why = status.get("evaluationError") or ""
    return (
        f"{user} may not review pipelineruns in namespace {namespace}: a reviewer needs the verb "
        f'"{VERB}" on {RUN_PLURAL}.{API_GROUP} (see {HOWTO})' + (f" ({cut(why, 300)})" if why else "")
    )


def _phase(old: Mapping[str, Any] | None) -> str | None:
    return ((old or {}).get("status") or {}).get("phase") or None


def blocked_by_conflicts(old: Mapping[str, Any] | None) -> bool:
    """The run awaits review with its publishing blocked by conflicts (a Pass with Block)."""
    status = (old or {}).get("status") or {}
    if status.get("phase") != AWAITING_REVIEW:
        return False
    cond = next((c for c in status.get("conditions") or () if c.get("type") == "Conflict"), None)
    return cond is not None and cond.get("status") == "True" and cond.get("reason") == "ConflictsFound"


def _redecision(before: Mapping[str, Any], new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Is this change of a decision made the one admitted: Supersede or Ignore chosen on a Pass
    that conflicts blocked, changing nothing but `onConflict` and `comment` (and leaving or
    dropping the recorded reviewer and time, which the webhook writes again)?"""
    if not blocked_by_conflicts(old) or before.get("decision") != "Pass" or new.get("decision") != "Pass":
        return False
    if (before.get("onConflict") or BLOCK) != BLOCK or (new.get("onConflict") or BLOCK) == BLOCK:
        return False
    for key in set(before) | set(new):
        if key in REDECIDABLE:
            continue
        if key in RECORDED and new.get(key) in (None, before.get(key)):
            continue
        if before.get(key) != new.get(key):
            return False
    return True


def ignore_refusal(project: str | None, allowed: bool) -> str:
    where = f"project {project}" if project else "this namespace (not a project's)"
    return (
        f"spec.review.onConflict: Ignore is allowed only in a project whose spec.conflicts.allowIgnore "
        f"is true, and {where} does not allow it: choose Block or Supersede"
    )


def decide(
    operation: str,
    userinfo: Mapping[str, Any] | None,
    namespace: str,
    spec: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    answer: Mapping[str, Any],
    now: datetime,
    *,
    project: str | None = None,
    allow_ignore: bool = False,
) -> dict[str, Any] | None:
    """The `spec.review` fields to write (`reviewer`, `decidedAt`), None when nothing is to
    change; `Denied` to reject. `old` is the whole old object (its status holds the phase);
    `answer` the answered SubjectAccessReview of `access_review`; `project` the run's project
    (None: the namespace is none's) and `allow_ignore` its `spec.conflicts.allowIgnore`."""
    old_spec = (old or {}).get("spec") or {}
    if not touches_review(operation, spec, old_spec):
        return None
    user = _user(userinfo)["username"]
    refused = _refused_access(user or "the request's user", namespace, answer)
    if refused:
        raise Denied(refused)
    new = dict((spec or {}).get("review") or {})
    before = old_spec.get("review")
    if new.get("onConflict") == IGNORE and not allow_ignore:
        raise Denied(ignore_refusal(project, allow_ignore))
    if before is not None and _redecision(before, new, old):
        return {"reviewer": user, "decidedAt": rfc3339(now)}
    if before is not None:
        made = f"the decision was made by {before.get('reviewer') or 'someone'}"
        if before.get("decidedAt"):
            made += f" at {before['decidedAt']}"
        if not new:
            raise Denied(f"spec.review cannot be removed: {made}")
        changed = [k for k in sorted(set(before) | set(new)) if before.get(k) != new.get(k)]
        fields = ", ".join(f"spec.review.{k}" for k in changed)
        raise Denied(
            f"{fields} cannot be changed: a review decision is final once made ({made}); only a "
            "Pass whose publishing conflicts blocked (condition Conflict, reason ConflictsFound) "
            "may be given onConflict Supersede or Ignore"
        )
    forged = [k for k in RECORDED if new.get(k) is not None]
    if forged:
        fields = " and ".join(f"spec.review.{k}" for k in forged)
        raise Denied(
            f"{fields}: set by the API server from the user who decides (here {user!r}) and the "
            f"time of the decision; remove {'them' if len(forged) > 1 else 'it'} from the request"
        )
    phase = _phase(old) if operation == "UPDATE" else None
    if phase != AWAITING_REVIEW:
        where = f"it is in phase {phase}" if phase else "it has no phase yet"
        if operation == "CREATE":
            where = "a new run has no phase yet"
        raise Denied(
            f"spec.review: the run is not awaiting review ({where}): a decision is taken only "
            f"in phase {AWAITING_REVIEW}"
        )
    return {"reviewer": user, "decidedAt": rfc3339(now)}
