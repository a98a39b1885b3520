"""The Project custom resource (cluster-scoped): a collaboration project.

A project maps 1:1 to a namespace of the same name, which it creates and keeps: its admins and
contributors are bound there to the shipped ClusterRoles `mmif-project-admin` and
`mmif-project-contributor`, and every PipelineRun and AnalysisJob created there gets the
project's default legal tags and ACL unless it names its own. A Closed project takes no new runs
or analyses (the admission webhook refuses them, naming the project).
"""

from __future__ import annotations

import enum

from pydantic import Field

from mmif_operator.core.cel import Rule
from mmif_operator.core.governance import MAX_LEGAL_TAGS, Acl, LegalTag, Principal
from mmif_operator.core.model import (
    DNS_SUBDOMAIN,
    Condition,
    MountPath,
    SpecModel,
    StatusModel,
    Timestamp,
    list_map,
)
from mmif_operator.kinds.monitor.model import Duration
from mmif_operator.notifications.model import (
    MAX_TARGETS,
    PROJECT_EVENTS,
    NotificationTarget,
    RunNotifications,
)

KIND = "Project"
PLURAL = "projects"
MAX_MEMBERS = 256

ADMIN_ROLE = "mmif-project-admin"
CONTRIBUTOR_ROLE = "mmif-project-contributor"
ADMINS_BINDING = "mmif-project-admins"
CONTRIBUTORS_BINDING = "mmif-project-contributors"


class ProjectState(enum.StrEnum):
    OPEN = "Open"
    CLOSED = "Closed"


class Members(SpecModel):
    """Users and groups, as the cluster's authentication names them."""

    users: list[Principal] | None = Field(
        None, description="User names, e.g. `alice@example.org`.", max_length=MAX_MEMBERS
    )
    groups: list[Principal] | None = Field(
        None, description="Group names, e.g. `archive-team`.", max_length=MAX_MEMBERS
    )


class Timeline(SpecModel):
    """When the project starts and ends."""

    start: Timestamp | None = Field(
        None, description="When the project starts (RFC 3339).", json_schema_extra={"maxLength": 64}
    )
    end: Timestamp | None = Field(
        None,
        description="When the project ends (RFC 3339): the end of its work in progress.",
        json_schema_extra={"maxLength": 64},
    )

    cel_rules = (
        Rule(
            "!has(self.start) || !has(self.end) || self.start <= self.end",
            "end must not be before start",
            check=lambda t: t.start is None or t.end is None or t.start <= t.end,
            field_path=".end",
        ),
    )


class ProjectDefaults(SpecModel):
    """What every run, analysis and record of the project gets unless it names its own."""

    legal_tags: list[LegalTag] | None = Field(
        None,
        description="Legal tags given to every PipelineRun and AnalysisJob created in the "
        "project's namespace without `spec.legalTags`.",
        max_length=MAX_LEGAL_TAGS,
    )
    acl: Acl | None = Field(
        None,
        description="The ACL given to every PipelineRun and AnalysisJob created in the project's "
        "namespace without its own (`owners` and `viewers` each on its own).",
    )


class RecordStore(SpecModel):
    """Where the project's records are kept: a volume of its own that only the publisher writes."""

    claim_name: str = Field(
        description="A PersistentVolumeClaim in the project's namespace holding the record store. "
        "Only a reviewed run's publish Job mounts it read-write; step pods mount it read-only; a "
        "run, AnalysisJob or Pipeline may not use it as its workspace.",
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )
    mount_path: MountPath = Field(
        "/records", description="Where pods mount the record store (read-only, but the publisher)."
    )


class Disposal(SpecModel):
    """The project's non-record disposal window: work in progress left behind is deleted."""

    after: Duration = Field(
        description="How long after a run finished (or after `timeline.end`, when that is "
        "later) the operator sets the run's `workInProgress` to `Delete`, e.g. `P90D`: an ISO "
        "8601 duration. Only runs whose spec does not set `workInProgress` are disposed of (set "
        "`Keep` on a run to keep it); records are never touched. Extending `timeline.end` moves "
        "the schedule.",
    )
    notice: Duration | None = Field(
        None,
        description="How long before the deletion an Event (`DisposalNotice`, on the run and the "
        "Project) and the `DisposalNotice` notification (`spec.notifications`) announce it, e.g. "
        "`P7D`. No notice when unset.",
    )


class Conflicts(SpecModel):
    """How the project's reviewers may resolve conflicts found when a run publishes."""

    allow_ignore: bool = Field(
        False,
        description="When true, a reviewer may pass a run with `spec.review.onConflict: Ignore`: "
        "its records are published without naming the conflicts found. Refused at admission "
        "when false (the default): `Block` or `Supersede` only.",
    )


class ProjectSpec(SpecModel):
    """The desired state of a Project."""

    title: str | None = Field(None, description="A human-readable title.", max_length=256)
    project_id: str | None = Field(
        None,
        description="The project's id in the organisation's records; missing: the Project's name.",
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.:]*[A-Za-z0-9])?$",
        max_length=128,
    )
    scope: str | None = Field(None, description="What the project covers.", max_length=4096)
    objective: str | None = Field(None, description="What the project is for.", max_length=4096)
    timeline: Timeline | None = Field(None, description="When the project starts and ends.")
    admins: Members | None = Field(
        None,
        description="Project admins: bound to the ClusterRole `mmif-project-admin` in the project's "
        "namespace (run, review, cancel and delete runs and analyses; manage pipelines).",
    )
    contributors: Members | None = Field(
        None,
        description="Project contributors: bound to the ClusterRole `mmif-project-contributor` in "
        "the project's namespace (run pipelines and analyses, read their results; no review).",
    )
    defaults: ProjectDefaults | None = Field(
        None, description="Legal tags and ACL that the project's runs and analyses get by default."
    )
    records: RecordStore | None = Field(
        None,
        description="The project's record store. With it, a reviewed run that passes makes a "
        "record of each item that succeeded (its final MMIF and lineage); without it, passing "
        "publishes in the run's folder only.",
    )
    disposal: Disposal | None = Field(
        None,
        description="The non-record disposal window: the work in progress of finished runs is "
        "deleted once past it, with a notice before. Nothing is disposed of when unset.",
    )
    conflicts: Conflicts | None = Field(
        None,
        description="How conflicts found at publish time may be resolved (`allowIgnore`); a "
        "run's reviewer picks `onConflict` in the review decision.",
    )
    notifications: list[NotificationTarget] | None = Field(
        None,
        description="Whom the project tells about its events, as a Pipeline's `notifications` "
        "(webhook: a CloudEvent `dev.mmif.project.<event>`; email), with the events "
        "`DisposalNotice` (the disposal window will delete runs' work in progress; the message "
        "names them and when), `ProjectClosed` (the closure ended) and `SharedRecords` (another "
        "Open project's runs start from a record this project's runs start from). Secrets named "
        "are of the project's namespace (labelled `mmif.dev/notifications: \"true\"`). A run's "
        "events are refused here (a Pipeline's targets hear of those).",
        max_length=MAX_TARGETS,
        json_schema_extra=list_map("name"),
    )
    state: ProjectState = Field(
        ProjectState.OPEN,
        description="`Open`, or `Closed`: no new PipelineRuns or AnalysisJobs in the namespace "
        "(refused at admission, naming the project). Setting `Closed` is refused while runs of "
        "the namespace are Pending, Running or AwaitingReview (naming them); then the project "
        "closes: phase `Closing` while runs publish and the work in progress of finished runs "
        "is deleted (records are kept), then `Closed`. A closed project may be opened again.",
    )

    cel_rules = (
        Rule(
            "!has(self.notifications) || self.notifications.all(n, n.events.all(e, e in "
            + repr(sorted(e.value for e in PROJECT_EVENTS)).replace("'", '"')
            + "))",
            "spec.notifications: a Project's targets take only DisposalNotice, ProjectClosed and "
            "SharedRecords",
            check=lambda p: all(set(t.events) <= PROJECT_EVENTS for t in p.notifications or ()),
            field_path=".notifications",
        ),
    )


class ProjectPhase(enum.StrEnum):
    OPEN = "Open"
    CLOSING = "Closing"
    CLOSED = "Closed"


MAX_REFERENCED_RECORDS = 20  # status.referencedRecords.latest
MAX_REFERENCING_RUNS = 5  # runs named per referenced record
MAX_SHARED_RECORDS = 10  # record ids named in the SharedRecords condition's message


class RecordReference(StatusModel):
    """A record that runs of the project start items from."""

    id: str = Field(description="The record's id, `sha256:<hex>`.", max_length=71)
    runs: list[str] = Field(
        default_factory=list,
        description="The PipelineRuns of the project naming it (the newest first).",
        max_length=MAX_REFERENCING_RUNS,
    )


class ReferencedRecords(StatusModel):
    """The records that the project's runs start items from (spec.items[].record)."""

    count: int = Field(0, description="How many distinct records the project's runs name.", ge=0)
    latest: list[RecordReference] = Field(
        default_factory=list,
        description=f"The records named by the newest runs (at most {MAX_REFERENCED_RECORDS}).",
        max_length=MAX_REFERENCED_RECORDS,
    )


class ProjectStatus(StatusModel):
    """The observed state of a Project."""

    observed_generation: int | None = Field(
        None, description="The `metadata.generation` this status was computed from.", ge=0
    )
    phase: ProjectPhase | None = Field(
        None,
        description="`Open`, `Closing` (spec.state is Closed; the `Closed` condition says what it "
        "waits for) or `Closed`, once the namespace is ready.",
    )
    closed_at: Timestamp | None = Field(None, description="When the project reached phase `Closed`.")
    namespace: str | None = Field(None, description="The project's namespace (the Project's name).")
    project_id: str | None = Field(None, description="`spec.projectId`, or the Project's name.")
    notifications: RunNotifications | None = Field(
        None,
        description="The project's outbox: one delivery per target and event (the latest "
        "occurrence of each event), tried with the target's retries, as a run's.",
    )
    referenced_records: ReferencedRecords | None = Field(
        None,
        description="The records that runs of the project start items from (bounded: a count and "
        "the newest); `SharedRecords` says when another Open project's runs name one of them too.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Ready` (the namespace and the role bindings are as the spec says), with "
        "kstatus's `Reconciling` and `Stalled`; `Closed` (False `ProjectOpen`; False "
        "`WaitingForRuns`, `WaitingForPublishing` or `DeletingWorkInProgress` while closing, the "
        "message naming the runs; True `ProjectClosed`); `SharedRecords` (True: another Open project's runs "
        "start from a record this project's runs start from; the message names the projects and "
        "records).",
        max_length=8,
        json_schema_extra=list_map("type"),
    )
