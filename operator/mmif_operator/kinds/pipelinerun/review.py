"""The review (QA) gate: a Pipeline asks for it, a person decides on each run.

`Pipeline.spec.review` turns the gate on for the pipeline's runs (template `run-with-review`);
`PipelineRun.spec.review` holds the decision. The decision is set by a reviewer with
`kubectl patch`; the admission webhook records who decided and when, and allows it only to a
user who may `review` `pipelineruns` in the namespace.
"""

from __future__ import annotations

import enum

from pydantic import Field

from mmif_operator.core.model import SpecModel, StatusModel, Timestamp

MAX_REVIEW_COMMENT = 4096
DEFAULT_REVIEW_TIMEOUT_SECONDS = 604800  # 7 days
MAX_REVIEW_TIMEOUT_SECONDS = 31536000  # 365 days


class ReviewPolicy(SpecModel):
    """Whether a pipeline's runs wait for a person's review before their outputs are published."""

    required: bool = Field(
        False,
        description="When true, a run whose items are all done and whose manifest is written "
        "waits in phase `AwaitingReview` until a reviewer passes or fails it "
        "(`spec.review.decision` on the run).",
    )
    timeout_seconds: int = Field(
        DEFAULT_REVIEW_TIMEOUT_SECONDS,
        description="How long a run may await its review, counted from when it entered "
        "`AwaitingReview`; then it fails with reason `ReviewTimeout`.",
        ge=1,
        le=MAX_REVIEW_TIMEOUT_SECONDS,
    )


class ReviewDecision(enum.StrEnum):
    PASS = "Pass"
    FAIL = "Fail"


class OnConflict(enum.StrEnum):
    """What a passed run does when publishing finds conflicts (kinds/pipelinerun/conflicts.py)."""

    BLOCK = "Block"
    SUPERSEDE = "Supersede"
    IGNORE = "Ignore"


class RunReview(SpecModel):
    """A reviewer's decision on the whole run. `decision`, `comment` and `onConflict` are set by
    the reviewer; `reviewer` and `decidedAt` by the admission webhook. Once made, a decision
    cannot change, but for one thing: a `Pass` whose publishing conflicts blocked (condition
    `Conflict`, reason `ConflictsFound`) may be given `onConflict: Supersede` or `Ignore` (with a
    new comment), which records the new reviewer and time."""

    decision: ReviewDecision = Field(description="`Pass` publishes the outputs; `Fail` fails the run.")
    on_conflict: OnConflict | None = Field(
        None,
        description="What a `Pass` does when publishing finds conflicts (an item's parent record "
        "that another project's run works from, or that got a newer version since this run "
        "started): `Block` (the default) publishes nothing and the run stays `AwaitingReview` "
        "with the `Conflict` condition listing them; `Supersede` publishes, each record's lineage "
        "naming what it supersedes; `Ignore` publishes without naming them, only in a project "
        "whose `spec.conflicts.allowIgnore` is true (refused at admission otherwise).",
    )
    comment: str | None = Field(
        None, description="Why, in the reviewer's words.", max_length=MAX_REVIEW_COMMENT
    )
    reviewer: str | None = Field(
        None,
        description="Who decided: the user name from the admission request. Set by the "
        "operator's admission webhook; setting or changing it by hand is rejected.",
        max_length=512,
    )
    decided_at: Timestamp | None = Field(
        None,
        description="When the decision was made. Set by the operator's admission webhook.",
        json_schema_extra={"maxLength": 64},
    )


class ReviewStatus(StatusModel):
    """The review of a run whose Pipeline requires one: since and until when it waits, then the
    decision as the operator acted on it (copied from `spec.review`)."""

    requested_at: Timestamp | None = Field(None, description="When the run entered `AwaitingReview`.")
    deadline: Timestamp | None = Field(
        None, description="When the wait ends: then the run fails with reason `ReviewTimeout`."
    )
    decision: ReviewDecision | None = Field(
        None, description="The decision the operator acted on (`Pass`: the run went on to `Publishing`)."
    )
    comment: str | None = Field(None, description="The reviewer's comment.", max_length=MAX_REVIEW_COMMENT)
    reviewer: str | None = Field(None, description="Who decided.", max_length=512)
    decided_at: Timestamp | None = Field(
        None, description="When the decision was made.", json_schema_extra={"maxLength": 64}
    )
    on_conflict: OnConflict | None = Field(
        None, description="The conflict policy the operator acted on (`spec.review.onConflict`)."
    )
    record_path: str | None = Field(
        None,
        description="`<outputPath>/review.json`, once the publish Job wrote it.",
        max_length=4096,
    )
