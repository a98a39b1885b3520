"""Triggered analyses, pure: which of the Pipeline's `analyses` a run still has to decide, the
AnalysisJob it creates for each, the access review that authorises it, and how the run records
the outcome (`status.analyses` and the `AnalysesCreated` condition).

The handler (kinds/analysisjob/handler.py) asks the API server, for the run's recorded requester,
"may this user create analysisjobs.mmif.dev in this namespace?" (a SubjectAccessReview with the
user's name, uid, groups and extra), creates the AnalysisJob only when allowed, and patches the
run's status. An AnalysisJob of that name that the run does not control (someone made one
named `<run>-<analysis>` first) is never taken for the run's: the analysis is recorded
`NameConflict` with the object's owner, and the object is left alone. A decision, once
recorded, is final for the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core import names
from mmif_operator.core.requester import all_groups
from mmif_operator.core.specs import API_GROUP, API_VERSION, KIND_RUN, parse_spec, plain
from mmif_operator.core.status import FALSE, TRUE, cut, set_condition
from mmif_operator.kinds.analysisjob.model import AnalysisTemplate

CONDITION = "AnalysesCreated"
R_CREATED = "Created"
R_NOT_AUTHORIZED = "AnalysisNotAuthorized"
R_NAME_CONFLICT = "NameConflict"
R_CREATE_FAILED = "CreateFailed"
CREATED, NOT_AUTHORIZED, NAME_CONFLICT, CREATE_FAILED = (
    "Created",
    "NotAuthorized",
    "NameConflict",
    "CreateFailed",
)
# The condition's reason for each state that is not `Created` (first found in this order wins).
_REFUSED_REASONS = (
    (NAME_CONFLICT, R_NAME_CONFLICT),
    (CREATE_FAILED, R_CREATE_FAILED),
    (NOT_AUTHORIZED, R_NOT_AUTHORIZED),
)
ANALYSIS_PLURAL = "analysisjobs"
ANALYSIS_KIND = "AnalysisJob"


@dataclass(frozen=True)
class Decision:
    name: str  # the analysis's name in the Pipeline
    allowed: bool
    message: str = ""
    analysis_job: str | None = None
    state: str | None = None  # the recorded state; None: Created when allowed, else NotAuthorized

    @property
    def recorded_state(self) -> str:
        return self.state or (CREATED if self.allowed else NOT_AUTHORIZED)

    def not_created(self, state: str, message: str) -> Decision:
        """This decision, with the AnalysisJob not created after all (`NameConflict`, ...)."""
        return Decision(self.name, self.allowed, message, self.analysis_job, state)


def pending_templates(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The analyses of the run's Pipeline snapshot not yet decided for this run."""
    status = plain(run.get("status"))
    templates = (status.get("pipelineSpec") or {}).get("analyses") or []
    decided = {a.get("name") for a in status.get("analyses") or ()}
    return [plain(t) for t in templates if t.get("name") not in decided]


def access_review(
    requester: Mapping[str, Any], namespace: str, *, verb: str = "create", resource: str = ANALYSIS_PLURAL
) -> dict[str, Any]:
    """May `requester` create AnalysisJobs (or `verb` `resource` of mmif.dev) in `namespace`? With
    every group of the requester, `moreGroups` included (core/requester.py). The admission webhook
    asks the same for a reviewer (admission/review.py: verb `review`, resource `pipelineruns`)."""
    try:
        groups = all_groups(requester)
    except ValueError:
        # Unreadable (never written so by the webhook): the verbatim groups alone. RBAC only
        # grants, so fewer groups can never allow more than the user had.
        groups = [str(g) for g in requester.get("groups") or ()]
    spec: dict[str, Any] = {
        "user": requester.get("username", ""),
        "groups": groups,
        "resourceAttributes": {
            "namespace": namespace,
            "verb": verb,
            "group": API_GROUP,
            "resource": resource,
        },
    }
    if requester.get("uid"):
        spec["uid"] = requester["uid"]
    if requester.get("extra"):
        spec["extra"] = {k: list(v) for k, v in requester["extra"].items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def decide(template: Mapping[str, Any], run: Mapping[str, Any], review: Mapping[str, Any] | None) -> Decision:
    """The decision for one template from the answered review (None: the run has no requester)."""
    meta = run.get("metadata") or {}
    name = template["name"]
    requester = (run.get("spec") or {}).get("requester") or {}
    if review is None:
        return Decision(
            name,
            False,
            "the run has no recorded requester (is the operator's admission "
            "webhook installed?), so no analysis can be authorised",
        )
    answer = review.get("status") or {}
    if answer.get("allowed") and not answer.get("denied"):
        return Decision(name, True, analysis_job=names.triggered_analysis_name(meta["name"], name))
    why = answer.get("reason") or answer.get("evaluationError") or "no RBAC rule allows it"
    return Decision(
        name,
        False,
        f"user {requester.get('username')!r} may not create analysisjobs in "
        f"namespace {meta.get('namespace')}: {cut(why, 300)}",
    )


def analysis_job(run: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """The AnalysisJob a run creates for `template` (a snapshot's `analyses` entry, its defaults
    the model's; `InvalidSpec` when it does not parse): owned by the run, for the run's requester."""
    meta = run.get("metadata") or {}
    spec = plain(run.get("spec"))
    pipeline = (spec.get("pipelineRef") or {}).get("name", "")
    name = names.triggered_analysis_name(meta["name"], template["name"])
    labels = L.common_labels("analysis", name="mmif-analysis", instance=name)
    labels.update(
        {
            L.RUN: L.label_value(meta["name"]),
            L.PIPELINE: L.label_value(pipeline),
            L.ANALYSIS: L.label_value(template["name"]),
        }
    )
    parsed = parse_spec(AnalysisTemplate, template, f"status.pipelineSpec.analyses[{template['name']}]")
    body_spec: dict[str, Any] = {
        "runRef": {"name": meta["name"]},
        "app": plain(template.get("app")),  # as stored: the API server defaults the AnalysisJob's
        "trigger": parsed.trigger.value,
        "parallelism": parsed.parallelism,
    }
    if spec.get("requester"):
        body_spec["requester"] = plain(spec["requester"])
    return {
        "apiVersion": API_VERSION,
        "kind": ANALYSIS_KIND,
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND_RUN,
                    "name": meta["name"],
                    "uid": meta.get("uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": body_spec,
    }


def status_patch(run: Mapping[str, Any], decisions: Sequence[Decision], now: datetime) -> dict[str, Any]:
    """`status.analyses` with the new decisions, and the `AnalysesCreated` condition over all."""
    meta = run.get("metadata") or {}
    status = plain(run.get("status"))
    entries = [dict(a) for a in status.get("analyses") or ()]
    for d in decisions:
        entry: dict[str, Any] = {"name": d.name, "state": d.recorded_state}
        if d.analysis_job and d.recorded_state == CREATED:
            entry["analysisJob"] = d.analysis_job
        if d.message:
            entry["message"] = cut(d.message, 1024)
        entries.append(entry)
    refused = [e for e in entries if e["state"] != CREATED]
    if refused:
        states = {e["state"] for e in refused}
        reason = next(r for state, r in _REFUSED_REASONS if state in states)
        cond = (
            FALSE,
            reason,
            cut(
                "; ".join(f"analysis {e['name']} not created: {e.get('message', '')}" for e in refused), 4096
            ),
        )
    else:
        cond = (TRUE, R_CREATED, "created " + ", ".join(e.get("analysisJob") or e["name"] for e in entries))
    conditions = set_condition(status.get("conditions"), CONDITION, *cond, now, meta.get("generation"))
    return {"analyses": entries, "conditions": conditions}
