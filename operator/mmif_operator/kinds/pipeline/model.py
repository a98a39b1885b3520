"""The Pipeline custom resource: an ordered chain of CLAMS apps."""

from __future__ import annotations

from pydantic import Field

from mmif_operator.core.cel import Rule
from mmif_operator.core.model import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    Condition,
    MountPath,
    SpecModel,
    StatusModel,
    list_map,
)
from mmif_operator.kinds.analysisjob.model import MAX_ANALYSES, AnalysisTemplate
from mmif_operator.kinds.pipeline.app import App, StepMode, is_service_without_url
from mmif_operator.kinds.pipelinerun.review import ReviewPolicy
from mmif_operator.notifications.model import MAX_TARGETS, NotificationTarget

__all__ = ["App", "StepMode", "Step", "PipelineSpec", "PipelineStatus", "StepStatus"]

KIND = "Pipeline"
PLURAL = "pipelines"
MAX_STEPS = 20


class Step(App):
    """One CLAMS app of the pipeline."""

    name: str = Field(
        description="The step's name, unique in the pipeline: a DNS label (lower-case letters, "
        "digits, '-') of at most 30 characters. It names the step's output files and, in "
        "Service mode, its Deployment and Service.",
        pattern=DNS_LABEL,
        max_length=30,
    )


class PipelineWorkspace(SpecModel):
    """The volume that Service-mode app pods mount read-only to read the media."""

    claim_name: str = Field(
        description="The name of a PersistentVolumeClaim in the pipeline's namespace; runs of "
        "this pipeline should use the same claim.",
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )
    mount_path: MountPath = Field(
        "/data",
        description="Where the claim is mounted in the app containers; use the same path as the "
        "runs' `workspace.mountPath`.",
    )


class PipelineSpec(SpecModel):
    """The desired state of a Pipeline."""

    steps: list[Step] = Field(
        description="The CLAMS apps, in the order each item goes through them.",
        min_length=1,
        max_length=MAX_STEPS,
        json_schema_extra=list_map("name"),
    )
    workspace: PipelineWorkspace | None = Field(
        None,
        description="The volume holding the media, mounted by Service-mode apps. Required when a "
        "step has mode `Service` without `url`.",
    )

    analyses: list[AnalysisTemplate] = Field(
        default_factory=list,
        description="Analyses every PipelineRun of this pipeline creates: one AnalysisJob per "
        "entry, named `<run>-<name>` and owned by the run, created only if the user who created "
        "the run may create AnalysisJobs in the namespace.",
        max_length=MAX_ANALYSES,
        json_schema_extra=list_map("name"),
    )
    review: ReviewPolicy | None = Field(
        None,
        description="A review (QA) gate before the runs' outputs are published. Without it a run "
        "succeeds as soon as its items and manifest are done.",
    )
    notifications: list[NotificationTarget] = Field(
        default_factory=list,
        description="Who hears about the runs' transitions (succeeded, failed, awaiting review, "
        "review passed or failed, publish failed): webhooks (CloudEvents) and email. Delivered at "
        "least once, with retries; never delays or fails a run (see `status.notifications`).",
        max_length=MAX_TARGETS,
        json_schema_extra=list_map("name"),
    )
    progress_deadline_seconds: int = Field(
        900,
        description="How long the Service-mode apps may take to become ready (after the Pipeline "
        "is created or its spec changes, or after it stops being Ready) before the operator "
        "declares the Pipeline `Stalled` (kstatus: Failed; Argo CD: Degraded). The operator keeps "
        "trying after it: a Pipeline whose apps become ready is `Ready` again. A name conflict is "
        "`Stalled` at once: only a person can resolve it.",
        ge=1,
        le=86400,
    )

    cel_rules = (
        Rule(
            "!has(self.analyses) || self.analyses.all(a, self.analyses.exists_one(b, b.name == a.name)"
            " && !self.steps.exists(s, s.name == a.name))",
            "spec.analyses: analysis names must be unique and differ from step names",
            check=lambda p: (
                len({a.name for a in p.analyses}) == len(p.analyses)
                and not {a.name for a in p.analyses} & {s.name for s in p.steps}
            ),
            field_path=".analyses",
        ),
        Rule(
            "!has(self.notifications) || self.notifications.all(n, self.notifications.exists_one(m, m.name == n.name))",
            "spec.notifications: target names must be unique",
            check=lambda p: len({n.name for n in p.notifications}) == len(p.notifications),
            field_path=".notifications",
        ),
        Rule(
            "self.steps.all(s, self.steps.exists_one(t, t.name == s.name))",
            "spec.steps: step names must be unique",
            check=lambda p: len({s.name for s in p.steps}) == len(p.steps),
            field_path=".steps",
        ),
        Rule(
            "has(self.workspace) || self.steps.all(s, s.mode != 'Service' || has(s.url))",
            "spec.workspace is required when a step has mode Service and no url",
            check=lambda p: p.workspace is not None or not any(map(is_service_without_url, p.steps)),
            field_path=".workspace",
        ),
    )


class StepStatus(StatusModel):
    """What the operator observes of one step."""

    name: str = Field(description="The step's name.", max_length=30)
    mode: StepMode = Field(description="The step's mode.")
    url: str | None = Field(
        None,
        description="The address item pods call (Service mode only): the step's own Service, or "
        "the step's `url`.",
        max_length=512,
    )
    replicas: int | None = Field(
        None, description="The app pods wanted (Service mode without url only).", ge=0
    )
    ready_replicas: int | None = Field(
        None, description="The app pods ready (Service mode without url only).", ge=0
    )
    ready: bool = Field(False, description="Whether the step can take items (always true in Job mode).")


class PipelineStatus(StatusModel):
    """The observed state of a Pipeline."""

    observed_generation: int | None = Field(
        None, description="The `metadata.generation` this status describes.", ge=0
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Ready`: whether every step can take items (its reason says why not). "
        "`Reconciling` (True while the operator works toward the spec: apps starting or rolling "
        "out) and `Stalled` (True when it cannot progress: not Ready past "
        "`spec.progressDeadlineSeconds`, or a name conflict), as kstatus reads them; all three "
        "carry `observedGeneration`.",
        max_length=8,
        json_schema_extra=list_map("type"),
    )
    steps: list[StepStatus] = Field(
        default_factory=list,
        description="One entry per step, in order.",
        max_length=MAX_STEPS,
        json_schema_extra=list_map("name"),
    )
