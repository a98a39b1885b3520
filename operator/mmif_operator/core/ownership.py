"""Whose is an object found by name? The one rule for every child the operator makes.

Children have deterministic names, so a create may answer 409 AlreadyExists. That is success
only when the object of that name is ours: its controller ownerReference carries the uid of the
owner we meant (the run, the AnalysisJob, the Pipeline). Anything else is not ours and is never
counted, patched or deleted:

* `OURS`: controlled by the expected owner uid (a retried create, a restart): success.
* `RELEASING`: being deleted, or controlled by an object of the same kind and name as our owner
  but another uid: an earlier incarnation of the owner (a run deleted and created again under
  the same name) whose children the garbage collector is removing. A forged reference of that
  form is dangling too, so the collector removes it as well. Wait and try again.
* `FOREIGN`: anything else (no controller, or another owner): a name conflict. The child cannot
  be made; the item, run, analysis or step says `NameConflict` and names the object's owner.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

R_NAME_CONFLICT = "NameConflict"


class Ownership(enum.StrEnum):
    OURS = "ours"
    RELEASING = "releasing"
    FOREIGN = "foreign"


def controller_ref(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ownerReference with `controller: true`, or None."""
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def classify(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> Ownership:
    """Whether `existing` (the object the API server holds under the name) is the one `wanted`
    (the body we meant to create, whose controller ownerReference names the owner)."""
    ours = controller_ref(wanted)
    theirs = controller_ref(existing)
    if ours is None:
        raise ValueError("the wanted object has no controller ownerReference")
    if theirs is not None and theirs.get("uid") == ours.get("uid"):
        return Ownership.OURS
    if (existing.get("metadata") or {}).get("deletionTimestamp"):
        return Ownership.RELEASING
    if theirs is not None and (theirs.get("kind"), theirs.get("name")) == (
        ours.get("kind"),
        ours.get("name"),
    ):
        return Ownership.RELEASING
    return Ownership.FOREIGN


def describe(existing: Mapping[str, Any]) -> str:
    """Who controls `existing`, for a message: "is controlled by PipelineRun bob-run (uid ...)"."""
    ref = controller_ref(existing)
    if ref is None:
        return "has no controlling owner"
    return f"is controlled by {ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"


def conflict_message(kind: str, name: str, existing: Mapping[str, Any]) -> str:
    return f"{kind} {name} already exists and is not ours: it {describe(existing)}"
