"""The AnalysisJob custom resource: one app run over the outputs of a PipelineRun.

An AnalysisJob reads each item's final MMIF of its source run (read-only) and writes the
processed MMIF into a folder of its own under the run's output folder:
`<run output>/analyses/<analysis job>/`. It is created by hand, or by every PipelineRun of a
Pipeline whose `spec.analyses` lists it (then owned by the run).
"""

from __future__ import annotations

import enum

from pydantic import Field

from mmif_operator.core import failurereasons
from mmif_operator.core.cel import Rule
from mmif_operator.core.governance import (
    ACL_DESCRIPTION,
    LEGAL_TAGS_DESCRIPTION,
    MAX_LEGAL_TAGS,
    Acl,
    LegalTag,
)
from mmif_operator.core.model import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    MAX_FAILURE_MESSAGE,
    MAX_FAILURES,
    Condition,
    SpecModel,
    StatusModel,
    Timestamp,
    list_map,
)
from mmif_operator.core.requester import Requester
from mmif_operator.kinds.pipeline.app import App, StepMode

KIND = "AnalysisJob"
PLURAL = "analysisjobs"
MAX_ANALYSES = 8


class Trigger(enum.StrEnum):
    LIVE = "Live"
    AFTER_RUN = "AfterRun"


class AnalysisPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def _service_has_url(app: App) -> bool:
    return app.mode is not StepMode.SERVICE or app.url is not None


_APP_RULE = Rule(
    "self.app.mode != 'Service' || has(self.app.url)",
    "app.url is required with mode Service: an analysis calls an app someone runs (the operator "
    "keeps app Deployments for Pipeline steps only)",
    check=lambda s: _service_has_url(s.app),
    field_path=".app.url",
)

_TRIGGER_DESCRIPTION = (
    "When items are processed. `Live`: each item as soon as it finishes the pipeline, while the "
    "run goes on; the analysis ends once the run has ended and every succeeded item is processed. "
    "`AfterRun`: once the run has ended, every item that succeeded."
)
_PARALLELISM_DESCRIPTION = "How many items are processed at once."


class RunRef(SpecModel):
    """Names the PipelineRun whose outputs an analysis reads."""

    name: str = Field(
        description="The name of a PipelineRun in the analysis's namespace.",
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )


class AnalysisJobSpec(SpecModel):
    """The desired state of an AnalysisJob. Immutable once created."""

    run_ref: RunRef = Field(description="The source: the PipelineRun whose items' final MMIF are the input.")
    app: App = Field(
        description="The app that turns each item's final MMIF into processed MMIF "
        "(the same MMIF-in, MMIF-out contract as a Pipeline step)."
    )
    trigger: Trigger = Field(Trigger.AFTER_RUN, description=_TRIGGER_DESCRIPTION)
    parallelism: int = Field(4, description=_PARALLELISM_DESCRIPTION, ge=1, le=1000)
    requester: Requester | None = Field(
        None,
        description="Who created the AnalysisJob (for a triggered one: who created the run). Set "
        "by the operator's admission webhook; setting or changing it by hand is rejected.",
    )
    legal_tags: list[LegalTag] | None = Field(
        None, description=LEGAL_TAGS_DESCRIPTION, max_length=MAX_LEGAL_TAGS
    )
    acl: Acl | None = Field(None, description=ACL_DESCRIPTION)

    cel_rules = (
        _APP_RULE,
        Rule("self == oldSelf", "spec is immutable: delete the AnalysisJob and create another"),
    )


class AnalysisTemplate(SpecModel):
    """An analysis every PipelineRun of the Pipeline creates (an AnalysisJob owned by the run,
    named `<run>-<name>`)."""

    name: str = Field(
        description="The analysis's name, unique in the pipeline and different from every step's "
        "name: a DNS label of at most 30 characters.",
        pattern=DNS_LABEL,
        max_length=30,
    )
    app: App = Field(description="The app, as in an AnalysisJob's `spec.app`.")
    trigger: Trigger = Field(Trigger.AFTER_RUN, description=_TRIGGER_DESCRIPTION)
    parallelism: int = Field(4, description=_PARALLELISM_DESCRIPTION, ge=1, le=1000)

    cel_rules = (_APP_RULE,)


class AnalysisFailure(StatusModel):
    """One item the analysis failed to process."""

    item: str | None = Field(None, description="The item's name, if it has one.", max_length=63)
    index: int = Field(description="The item's position in the run's batch, from 0.", ge=0)
    reason: str = Field(description="A CamelCase word, e.g. `AppError`, `InvalidOutput`.", max_length=128)
    message: str = Field(
        "",
        description=f"What went wrong (at most {MAX_FAILURE_MESSAGE} characters).",
        max_length=MAX_FAILURE_MESSAGE,
    )
    time: Timestamp = Field(description="When the failure was recorded.")


class AnalysisFailureReason(StatusModel):
    """Why items failed when no pod of theirs could say it (see `itemFailureReasons`)."""

    reason: str = Field(
        description="A CamelCase word, e.g. `ImagePullFailed`, `MountFailed`.", max_length=128
    )
    message: str = Field(
        "",
        description="The first such failure's message (the kubelet's, the "
        "scheduler's or the Job controller's).",
        max_length=MAX_FAILURE_MESSAGE,
    )


class AnalysisJobStatus(StatusModel):
    """The observed state of an AnalysisJob."""

    observed_generation: int | None = Field(
        None, description="The `metadata.generation` this status describes.", ge=0
    )
    phase: AnalysisPhase | None = Field(None, description="Pending, Running, Succeeded or Failed.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Succeeded`: `Unknown` while pending or running (reason `RunNotFound`, "
        "`WaitingForRun`, `Running`...), then `True` or `False` (`ItemsFailed`).",
        max_length=8,
        json_schema_extra=list_map("type"),
    )
    start_time: Timestamp | None = Field(None, description="When the first item started.")
    completion_time: Timestamp | None = Field(None, description="When the analysis ended.")
    progress: str | None = Field(
        None,
        description="Items processed (succeeded or failed) over items to process, e.g. `3/5`. "
        "The total is every item of the run that succeeded or may still succeed.",
        pattern=r"^[0-9]+/[0-9]+$",
        max_length=32,
    )
    items_total: int | None = Field(None, description="Items to process (see `progress`).", ge=0)
    items_running: int = Field(0, description="Items being processed.", ge=0)
    items_succeeded: int = Field(0, description="Items processed.", ge=0)
    items_failed: int = Field(0, description="Items the app failed to process.", ge=0)
    failures: list[AnalysisFailure] = Field(
        default_factory=list,
        description=f"The {MAX_FAILURES} latest failures, oldest first; the manifest lists them all.",
        max_length=MAX_FAILURES,
    )
    item_states: str | None = Field(
        None,
        description="The state of every item of the run, compressed as the run's `status.itemStates`.",
    )
    failure_reasons: list[AnalysisFailureReason] | None = Field(
        None,
        description="Why items failed when none of their pods could write it (a pod that could not "
        "start): one entry per reason; the manifest gives each such item its entry.",
        max_length=failurereasons.MAX_REASONS,
    )
    item_failure_reasons: str | None = Field(
        None,
        description="Which items have a `failureReasons` entry, compressed as the run's "
        "`status.itemFailureReasons`.",
    )
    output_path: str | None = Field(
        None,
        description="The analysis's folder as seen in pods, e.g. `/data/mmif-runs/run-1/analyses/run-1-ner`.",
    )
    manifest_path: str | None = Field(None, description="`<outputPath>/manifest.json`.")
