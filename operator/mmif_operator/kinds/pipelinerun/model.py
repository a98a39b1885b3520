"""The PipelineRun custom resource: one batch of media sent through a Pipeline."""

from __future__ import annotations

import enum
from typing import Annotated

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
    DNS_SUBDOMAIN,
    MAX_FAILURE_MESSAGE,
    MAX_FAILURES,
    Condition,
    MountPath,
    RelativePath,
    ShortString,
    SpecModel,
    StatusModel,
    Timestamp,
    list_map,
)
from mmif_operator.core.requester import Requester
from mmif_operator.kinds.analysisjob.model import MAX_ANALYSES
from mmif_operator.kinds.pipeline.model import MAX_ALTERNATIVES, MAX_STEPS, PipelineSpec
from mmif_operator.kinds.pipelinerun.review import OnConflict, ReviewStatus, RunReview
from mmif_operator.notifications.model import RunNotifications

KIND = "PipelineRun"
PLURAL = "pipelineruns"
MAX_INLINE_ITEMS = 1000
MAX_HISTORY = 20
MAX_FAILURE_REASONS = failurereasons.MAX_REASONS


StepParams = Annotated[dict[str, ShortString], Field(max_length=50)]
"""CLAMS runtime parameters of one step: name -> value."""


class RunPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    AWAITING_REVIEW = "AwaitingReview"
    PUBLISHING = "Publishing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class RunStage(enum.StrEnum):
    """The fine stage of a run: a state of its template (kinds/pipelinerun/phases.py). Several stages
    share a phase: Preparing, RunningItems, WritingManifest, Cancelling and TimingOut are all
    phase `Running`."""

    PENDING = "Pending"
    PREPARING = "Preparing"
    RUNNING_ITEMS = "RunningItems"
    WRITING_MANIFEST = "WritingManifest"
    CANCELLING = "Cancelling"
    TIMING_OUT = "TimingOut"
    AWAITING_REVIEW = "AwaitingReview"
    PUBLISHING = "Publishing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class OnItemFailure(enum.StrEnum):
    STOP = "Stop"
    CONTINUE = "Continue"


class RunSpecStatus(enum.StrEnum):
    """What a user may set in `spec.status`."""

    CANCELLED = "Cancelled"


class WorkInProgress(enum.StrEnum):
    """What becomes of a finished run's folder on the workspace (`spec.workInProgress`)."""

    KEEP = "Keep"
    DELETE = "Delete"
    ARCHIVE = "Archive"


class PipelineRef(SpecModel):
    """Names the Pipeline a run follows."""

    name: str = Field(
        description="The name of a Pipeline in the run's namespace.",
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )


class RunWorkspace(SpecModel):
    """The volume holding the run's media and receiving its outputs."""

    claim_name: str = Field(
        description="The name of a PersistentVolumeClaim in the run's namespace.",
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )
    mount_path: MountPath = Field(
        "/data",
        description="Where the claim is mounted in the step pods. Documents' locations are relative to it.",
    )
    output_dir: RelativePath = Field(
        "mmif-runs",
        description="The folder, relative to `mountPath`, under which the run writes "
        "`<outputDir>/<run name>/`.",
    )


class Document(SpecModel):
    """One media file of an item."""

    location: RelativePath = Field(
        description="The file's path relative to the workspace's `mountPath`, e.g. `videos/news-1.mp4`."
    )
    mime_type: str = Field(
        description="The file's MIME type; its top-level type (`video`, `audio`, `image` or "
        "`text`) sets the MMIF document type, e.g. `video/mp4`.",
        pattern=r"^(video|audio|image|text)/[-+.a-zA-Z0-9]+$",
        max_length=127,
    )


RECORD_ID_PATTERN = r"^sha256:[0-9a-f]{64}$"


class Item(SpecModel):
    """One unit of work: its documents, an MMIF file to continue from, or a record."""

    name: str | None = Field(None, description="A label for the item in status and manifest.", max_length=63)
    documents: list[Document] | None = Field(
        None,
        description="The media files the item's source MMIF is built from.",
        min_length=1,
        max_length=10,
    )
    mmif: RelativePath | None = Field(
        None,
        description="The path, relative to the workspace's `mountPath`, of an existing MMIF file "
        "to send through the pipeline instead of building one from documents.",
    )
    record: str | None = Field(
        None,
        description="A record of the run's project's record store (its id, `sha256:<hex>`) to "
        "start from: the prepare step copies the record's MMIF (checked against its sha256) as "
        "the item's source MMIF, and the record published from this item names it as its parent "
        "(lineage `inputs[].record`). Only in a namespace of a Project with `spec.records`; a "
        "record the store does not hold fails this item (reason `RecordNotFound`), not the run.",
        pattern=RECORD_ID_PATTERN,
        max_length=71,
    )

    cel_rules = (
        Rule(
            "has(self.record) || has(self.documents) != has(self.mmif)",
            "an item needs exactly one of documents, mmif or record",
            check=lambda i: i.record is not None or (i.documents is None) != (i.mmif is None),
        ),
        Rule(
            "!has(self.record) || (!has(self.documents) && !has(self.mmif))",
            "record excludes documents and mmif: an item needs exactly one of them",
            check=lambda i: i.record is None or (i.documents is None and i.mmif is None),
            field_path=".record",
        ),
    )


class ItemsFrom(SpecModel):
    """A batch stored on the workspace."""

    path: RelativePath = Field(
        description="A JSON Lines file, relative to the workspace's `mountPath`, holding one "
        "item per line in the same shape as `items` entries."
    )


IMMUTABLE_SPEC_FIELDS = (
    "pipelineRef",
    "workspace",
    "items",
    "itemsFrom",
    "parallelism",
    "params",
    "timeoutSeconds",
    "startTimeoutSeconds",
    "onItemFailure",
    "requester",
    "legalTags",
    "acl",
)
"""Every spec field but `status`, `ttlSecondsAfterFinished` and `workInProgress`: set once, at
creation."""


def _immutable(field: str) -> Rule:
    return Rule(
        f"has(self.{field}) == has(oldSelf.{field})"
        f" && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"spec.{field} is immutable",
        field_path=f".{field}",
    )


class PipelineRunSpec(SpecModel):
    """The desired state of a PipelineRun. Only `status`, `ttlSecondsAfterFinished` and
    `workInProgress` may change after creation."""

    pipeline_ref: PipelineRef = Field(description="The Pipeline the run follows.")
    workspace: RunWorkspace = Field(description="The volume holding the media and receiving the outputs.")
    items: list[Item] | None = Field(
        None,
        description="The batch, inline. Exactly one of `items` and `itemsFrom` is set.",
        min_length=1,
        max_length=MAX_INLINE_ITEMS,
    )
    items_from: ItemsFrom | None = Field(
        None,
        description="The batch, from a file on the workspace (for batches too large to list "
        "inline). Exactly one of `items` and `itemsFrom` is set.",
    )
    parallelism: int = Field(4, description="How many items are in flight at once.", ge=1, le=1000)
    params: dict[str, StepParams] = Field(
        default_factory=dict,
        description="Per-step parameter overrides: step name -> CLAMS runtime parameter -> "
        "value. They replace the Pipeline step's `parameters` of the same name.",
        max_length=MAX_STEPS,
    )
    timeout_seconds: int | None = Field(
        None,
        description="The whole run's deadline; items still in flight then are cancelled and the "
        "run fails with reason `Timeout`. No deadline when unset.",
        ge=1,
    )
    start_timeout_seconds: int = Field(
        900,
        description="How long the run may wait to start: for its Pipeline to exist and be "
        "`Ready` (Service-mode apps pulled and listening) and its PersistentVolumeClaim to exist, "
        "counted from the run's creation; then the run fails with the reason it waited for "
        "(`PipelineNotFound`, `PipelineNotReady`, `WorkspaceNotFound`). It also bounds how long "
        "the run's own prepare and manifest pods may take to start.",
        ge=1,
        le=86400,
    )
    on_item_failure: OnItemFailure = Field(
        OnItemFailure.STOP,
        description="What happens to an item whose step fails. `Stop`: the item stops there. "
        "`Continue`: the failed step's MMIF goes on to the next step (the item still counts as "
        "failed).",
    )
    status: RunSpecStatus | None = Field(
        None,
        description="Set to `Cancelled` to cancel the run: the operator deletes the Jobs in "
        "flight and the run ends `Cancelled`. A cancellation cannot be withdrawn.",
    )
    requester: Requester | None = Field(
        None,
        description="Who created the run. Set by the operator's admission webhook; setting or "
        "changing it by hand is rejected. The run's analyses are authorised for this user.",
    )
    legal_tags: list[LegalTag] | None = Field(
        None, description=LEGAL_TAGS_DESCRIPTION, max_length=MAX_LEGAL_TAGS
    )
    acl: Acl | None = Field(None, description=ACL_DESCRIPTION)
    review: RunReview | None = Field(
        None,
        description="The reviewer's decision, for a run whose Pipeline requires review. Set it "
        "with `kubectl patch` once the run is `AwaitingReview`; it cannot change once made.",
    )
    ttl_seconds_after_finished: int | None = Field(
        None,
        description="Delete the run (and its Jobs) this many seconds after it ends. Kept "
        "forever when unset. The outputs on the volume are not deleted by it (see "
        "`workInProgress`), nor the run's records.",
        ge=0,
    )
    work_in_progress: WorkInProgress | None = Field(
        None,
        description="What becomes of the run's unpublished outputs, its folder "
        "`<mountPath>/<outputDir>/<run>/` (items, manifest, logs), once the run is finished. "
        "Unset: kept, until the project's disposal window (if any) sets `Delete`. `Keep`: kept, "
        "also from the disposal window. `Delete`: removed from the workspace. `Archive`: moved to "
        "`<mountPath>/<outputDir>/.archive/<run>/` on the same volume (a later `Delete` removes "
        "the archive). Refused (condition `WorkInProgress`, reason `HasDescendants`, naming "
        "them) while an AnalysisJob of the run, or another run whose items come from the "
        "folder, exists; refused (`Published`) when the folder is the run's published output (a "
        "passed run in a namespace without a record store). A project's records are never "
        "touched. Set it with `kubectl mmif wip delete|archive RUN`.",
    )

    cel_rules = (
        Rule(
            "has(self.items) != has(self.itemsFrom)",
            "spec: exactly one of items or itemsFrom must be set",
            check=lambda r: (r.items is None) != (r.items_from is None),
        ),
        Rule(
            "has(self.status) || !has(oldSelf.status)",
            "spec.status: a cancelled run cannot be resumed",
            field_path=".status",
        ),
        # Final once made, but for one change: a Pass whose publishing conflicts blocked may be
        # given onConflict Supersede or Ignore (the webhook admits it only while the run is
        # blocked, and records the new reviewer and time; admission/review.py).
        Rule(
            "!has(oldSelf.review) || (has(self.review) && (self.review == oldSelf.review || "
            "(self.review.decision == 'Pass' && oldSelf.review.decision == 'Pass' && "
            "(!has(oldSelf.review.onConflict) || oldSelf.review.onConflict == 'Block') && "
            "has(self.review.onConflict) && self.review.onConflict != 'Block')))",
            "spec.review: a review decision cannot change or be withdrawn once made (but for "
            "onConflict Supersede or Ignore on a Pass that conflicts blocked)",
            field_path=".review",
        ),
        *map(_immutable, IMMUTABLE_SPEC_FIELDS),
    )


class StepCounts(StatusModel):
    """How many items are at each phase of one step."""

    name: str = Field(description="The step's name.", max_length=30)
    pending: int = Field(0, description="Items that have not reached the step yet.", ge=0)
    running: int = Field(0, description="Items whose Job for this step is in flight.", ge=0)
    succeeded: int = Field(0, description="Items that passed the step.", ge=0)
    failed: int = Field(0, description="Items that failed at the step.", ge=0)


class ServedCount(StatusModel):
    """How many items one app of a step with alternatives served."""

    name: str = Field(
        description="The app: the step's name for its own app, else the alternative's name.", max_length=30
    )
    items: int = Field(0, description="Items whose step it ran to the end (succeeded or failed).", ge=0)
    failed: int = Field(0, description="Of those, the ones that failed there.", ge=0)


class StepAlternatives(StatusModel):
    """The choice of app for one step with alternatives: the latest, and what each app served."""

    step: str = Field(description="The step's name.", max_length=30)
    chosen: str | None = Field(
        None,
        description="The app the step's latest launched items went to (the step's name for its "
        "own app, else the alternative's name).",
        max_length=30,
    )
    reason: str | None = Field(
        None,
        description="Why: `Healthiest` (Healthy by its Monitors, the most reliable), "
        "`NotMonitored` (no Healthy candidate; the first that no Monitor covers), `Degraded` (none "
        "Healthy or unmonitored: the most reliable Degraded one) or `AllFailing` (every candidate "
        "Failing: the first still runs, with a Warning Event).",
        max_length=32,
    )
    message: str | None = Field(
        None,
        description="Every candidate in the order of the choice, with its health, reliability and Monitors.",
        max_length=MAX_FAILURE_MESSAGE,
    )
    served: list[ServedCount] = Field(
        default_factory=list,
        description="Per app that served items of the step so far, how many.",
        max_length=MAX_ALTERNATIVES + 1,
        json_schema_extra=list_map("name"),
    )


class Failure(StatusModel):
    """One item that failed at one step."""

    item: str | None = Field(None, description="The item's name, if it has one.", max_length=63)
    index: int = Field(description="The item's position in the batch, from 0.", ge=0)
    step: str = Field(description="The step that failed.", max_length=30)
    reason: str = Field(
        description="A CamelCase word, e.g. `AppError`, `InvalidOutput`, `Timeout`.",
        max_length=128,
    )
    message: str = Field(
        "",
        description=f"What went wrong (at most {MAX_FAILURE_MESSAGE} characters).",
        max_length=MAX_FAILURE_MESSAGE,
    )
    time: Timestamp = Field(description="When the failure was recorded.")


class FailureReason(StatusModel):
    """Why items failed at a step when no pod of theirs could say it (see `itemFailureReasons`)."""

    step: str | None = Field(None, description="The step the items failed at.", max_length=30)
    reason: str = Field(
        description="A CamelCase word, e.g. `ImagePullFailed`, `PodCreateFailed`.", max_length=128
    )
    message: str = Field(
        "",
        description="The first such failure's message (the kubelet's, the "
        "scheduler's or the Job controller's).",
        max_length=MAX_FAILURE_MESSAGE,
    )


class Transition(StatusModel):
    """One change of the run's phase."""

    from_: RunPhase | None = Field(
        None, alias="from", description="The phase before (none for the first entry)."
    )
    to: RunPhase = Field(description="The phase after.")
    reason: str = Field(description="Why the phase changed, e.g. `Running`.", max_length=128)
    time: Timestamp = Field(description="When the phase changed.")


class AnalysisState(enum.StrEnum):
    CREATED = "Created"
    NOT_AUTHORIZED = "NotAuthorized"
    NAME_CONFLICT = "NameConflict"
    CREATE_FAILED = "CreateFailed"


class RunAnalysis(StatusModel):
    """What became of one of the Pipeline's `analyses` for this run."""

    name: str = Field(description="The analysis's name in the Pipeline.", max_length=30)
    analysis_job: str | None = Field(
        None, description="The AnalysisJob created for it (`<run>-<name>`).", max_length=253
    )
    state: AnalysisState = Field(
        description="`Created`; `NotAuthorized` (the requester may "
        "not create AnalysisJobs here); `NameConflict` (an AnalysisJob "
        "`<run>-<name>` exists that this run does not own: it is left "
        "alone, and the message names its owner); `CreateFailed` (the API "
        "server refused the AnalysisJob)."
    )
    message: str = Field("", description="Why, when not created.", max_length=1024)


MAX_APP_IMAGES = 128  # (step, image) pairs: every step, and the alternatives that served items


class AppImage(StatusModel):
    """The image a step's app ran from, as the node resolved it (for the records' lineage)."""

    step: str = Field(description="The step's name.", max_length=30)
    image: str = Field(description="The image as the step names it.", max_length=512)
    image_id: str = Field(
        alias="imageID",
        description="The image as the container runtime ran it (the pod's "
        "`containerStatuses[].imageID`, e.g. `registry/app@sha256:...`).",
        max_length=600,
    )


MAX_CONFLICTS = 50  # kinds/pipelinerun/conflicts.py keeps the first this many in status.conflicts


class ConflictKind(enum.StrEnum):
    CONCURRENT_WORK = "ConcurrentWork"
    NEWER_VERSION = "NewerVersion"


class RunConflict(StatusModel):
    """A parent record of this run's items that another run shares (kinds/pipelinerun/conflicts.py)."""

    kind: ConflictKind = Field(
        description="`ConcurrentWork`: a run of another project starts from the same record and "
        "is work in progress there (it may still publish); `NewerVersion`: a run starting from "
        "the record was passed and published its records (a newer version of the record) since "
        "this run started."
    )
    record: str = Field(description="The parent record, `sha256:<hex>`.", max_length=71)
    project: str = Field(description="The other run's project (its namespace).", max_length=63)
    run: str = Field(description="The other run.", max_length=253)
    phase: str | None = Field(None, description="The other run's phase when found.", max_length=32)
    published_at: Timestamp | None = Field(
        None, description="`NewerVersion`: when the other run's review passed (its records' `publishedAt`)."
    )
    items: list[str] = Field(
        default_factory=list,
        description="This run's items starting from the record (names, or `#<index>`; the first 10).",
        max_length=10,
    )
    item_count: int = Field(0, description="How many of this run's items start from the record.", ge=0)


class RunConflicts(StatusModel):
    """The conflicts found when a passed run was about to publish, and what the review chose."""

    count: int = Field(0, description="How many conflicts were found.", ge=0)
    policy: OnConflict | None = Field(
        None, description="The decision's `onConflict` acted on (`Block` when unset)."
    )
    detected_at: Timestamp | None = Field(None, description="When they were found.")
    conflicts: list[RunConflict] = Field(
        default_factory=list,
        description=f"The first {MAX_CONFLICTS} conflicts (by kind, record, project, run).",
        max_length=MAX_CONFLICTS,
    )


class PipelineRunStatus(StatusModel):
    """The observed state of a PipelineRun."""

    observed_generation: int | None = Field(
        None, description="The `metadata.generation` this status describes.", ge=0
    )
    phase: RunPhase | None = Field(
        None,
        description="Pending, Running, AwaitingReview, Publishing (the last two only when the "
        "Pipeline requires review), Succeeded, Failed or Cancelled.",
    )
    stage: RunStage | None = Field(
        None,
        description="The state of the run's template (docs/state-machines.md) it is in: finer "
        "than `phase`. While `phase` is `Running`: `Preparing` (the prepare Job lists the batch), "
        "`RunningItems`, `WritingManifest` (every item is done; the manifest Job runs), "
        "`Cancelling` or `TimingOut` (items were stopped; the manifest Job runs). Otherwise the "
        "same as `phase`.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Succeeded`: `Unknown` while the run is pending or running, then `True` or "
        "`False`; its reason says why (e.g. `PipelineNotFound`, `ItemsFailed`, `Timeout`). "
        "`Conflict` (a reviewed run, once passed): `True` when publishing found conflicts, reason "
        "`ConflictsFound` (blocked: nothing published), `ConflictsSuperseded` or "
        "`ConflictsIgnored` (published); `False`, `NoConflicts`.",
        max_length=8,
        json_schema_extra=list_map("type"),
    )
    start_time: Timestamp | None = Field(None, description="When the run started running.")
    completion_time: Timestamp | None = Field(None, description="When the run ended.")
    progress: str | None = Field(
        None,
        description="Items done (succeeded, failed or cancelled) over items in the batch, e.g. `120/500`.",
        pattern=r"^[0-9]+/[0-9]+$",
        max_length=32,
    )
    item_count: int | None = Field(
        None, description="How many items the batch holds (known once prepared).", ge=0
    )
    items_succeeded: int = Field(0, description="Items that passed every step.", ge=0)
    items_failed: int = Field(0, description="Items that failed at a step.", ge=0)
    items_cancelled: int = Field(0, description="Items stopped by cancellation or the run's timeout.", ge=0)
    steps: list[StepCounts] = Field(
        default_factory=list,
        description="Item counts per step, in the pipeline's order.",
        max_length=MAX_STEPS,
        json_schema_extra=list_map("name"),
    )
    alternatives: list[StepAlternatives] = Field(
        default_factory=list,
        description="For each step with `alternatives` that launched items: the app chosen for "
        "the latest items and why, and how many items each app served (the manifest says which "
        "app served each item).",
        max_length=MAX_STEPS,
        json_schema_extra=list_map("step"),
    )
    failures: list[Failure] = Field(
        default_factory=list,
        description=f"The {MAX_FAILURES} latest item failures, oldest first; the manifest lists them all.",
        max_length=MAX_FAILURES,
    )
    history: list[Transition] = Field(
        default_factory=list,
        description=f"The {MAX_HISTORY} latest phase changes, oldest first.",
        max_length=MAX_HISTORY,
    )
    item_states: str | None = Field(
        None,
        description="The state of every item, compressed (one byte per item, zlib, base64); "
        "read it with `mmif_operator.core.itemstates`.",
    )
    item_failed_steps: str | None = Field(
        None,
        description="The failed steps of every item, compressed (one 32-bit mask per item, bit k "
        "set when step k failed; little-endian, zlib, base64); used with `onItemFailure: "
        "Continue`, where an item goes on after a failed step.",
    )
    failure_reasons: list[FailureReason] | None = Field(
        None,
        description="Why items failed when none of their pods could write it (a pod that could not "
        "start, a Job that could not be created): one entry per step and reason; the manifest "
        "gives each such item its entry.",
        max_length=MAX_FAILURE_REASONS,
    )
    item_failure_reasons: str | None = Field(
        None,
        description="Which items have a `failureReasons` entry, compressed (one byte per item: 0 "
        "none, n the n-th entry; zlib, base64); read it with `mmif_operator.core.failurereasons`.",
    )
    pipeline_spec: PipelineSpec | None = Field(
        None,
        description="The Pipeline's spec as it was when the run started; the run follows this "
        "copy, so editing the Pipeline does not change runs already started.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    analyses: list[RunAnalysis] = Field(
        default_factory=list,
        description="The Pipeline's `analyses` for this run: created, or why not (see also the "
        "`AnalysesCreated` condition).",
        max_length=MAX_ANALYSES,
        json_schema_extra=list_map("name"),
    )
    output_path: str | None = Field(
        None,
        description="The run's output folder as seen in pods, e.g. `/data/mmif-runs/run-1`.",
    )
    manifest_path: str | None = Field(None, description="The run's manifest, `<outputPath>/manifest.json`.")
    review: ReviewStatus | None = Field(
        None,
        description="The review, for a run whose Pipeline requires one (`pipelineSpec.review`): "
        "since and until when it awaits, and the decision acted on.",
    )
    conflicts: RunConflicts | None = Field(
        None,
        description="The conflicts found when a review passed the run and it was about to publish "
        "(condition `Conflict`): items whose parent record another project's run works from, or "
        "that got a newer version since this run started; bounded (a count and the first "
        f"{MAX_CONFLICTS}).",
    )
    notifications: RunNotifications | None = Field(
        None,
        description="The notifications the run's transitions sent to the Pipeline's "
        "`notifications` targets: one delivery per target and event, with its attempts.",
    )
    app_images: list[AppImage] | None = Field(
        None,
        description="The image each step's app ran from, read once per step from a pod of it (a "
        "Job-mode step pod, or a Service-mode app pod); `url` steps have none. The records' "
        "lineage takes its `imageDigest` from here.",
        max_length=MAX_APP_IMAGES,
    )
