"""The review (QA) gate: a Pipeline asks for it, a person decides on each run.

`Pipeline.spec.review` turns the gate on for the pipeline's runs (template `run-with-review`);
`PipelineRun.spec.review` holds the decision. The decision is set by a reviewer with
`kubectl patch`; the admission webhook records who decided and when, and allows it only to a
user who may `review` `pipelineruns` in the namespace.
"""

from __future__ import annotations

import enum

from pydantic import Field

from .common import SpecModel, Timestamp

MAX_REVIEW_COMMENT = 4096


class ReviewPolicy(SpecModel):
    """Whether a pipeline's runs wait for a person's review before their outputs are published."""

    required: bool = Field(
        False,
        description="When true, a run whose items are all done and whose manifest is written "
        "waits in phase `AwaitingReview` until a reviewer passes or fails it "
        "(`spec.review.decision` on the run).",
    )


class ReviewDecision(enum.StrEnum):
    PASS = "Pass"
    FAIL = "Fail"


class RunReview(SpecModel):
    """A reviewer's decision on the whole run. `decision` and `comment` are set by the reviewer;
    `reviewer` and `decidedAt` by the admission webhook. Once made, a decision cannot change."""

    decision: ReviewDecision = Field(description="`Pass` publishes the outputs; `Fail` fails the run.")
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
