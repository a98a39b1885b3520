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
from mmif_operator.kinds.pipeline.app import REPLICAS_RULE, App, StepMode, is_service_without_url
from mmif_operator.kinds.pipelinerun.review import ReviewPolicy
from mmif_operator.notifications.model import MAX_TARGETS, NotificationTarget

__all__ = [
    "Alternative",
    "App",
    "Autoscaling",
    "StepMode",
    "Step",
    "PipelineSpec",
    "PipelineStatus",
    "StepStatus",
]

KIND = "Pipeline"
PLURAL = "pipelines"
MAX_STEPS = 20
MAX_ALTERNATIVES = 5  # per step, besides the step's own app


class Alternative(App):
    """Another app doing the same job as its step's own app: each item goes, when its step is
    launched, to the most reliable healthy one of the step's app and its alternatives, by the
    Monitors of the namespace (docs/design.md, "Alternatives"). It runs as a Job next to each
    item (`mode: Job`) or at the `url` of an app someone runs (`mode: Service` with `url`): the
    operator keeps no Deployment for an alternative."""

    name: str = Field(
        description="The alternative's name, unique among the step's alternatives and different "
        "from the step's name (which names the step's own app): a DNS label of at most 30 "
        "characters. The run's status and manifest say by this name which app served each item.",
        pattern=DNS_LABEL,
        max_length=30,
    )

    cel_rules = (
        *App.cel_rules,
        Rule(
            "self.mode != 'Service' || has(self.url)",
            "an alternative runs as a Job or at a url: mode Service needs url",
            check=lambda a: not is_service_without_url(a),
            field_path=".mode",
        ),
    )


class Autoscaling(SpecModel):
    """How a Service-mode step's replicas follow the work of the runs (kinds/pipeline/scaling.py)."""

    min_replicas: int = Field(
        0,
        description="The fewest app replicas kept, even with no run needing the app. 0 removes "
        "the app's pods (and releases their GPUs) when no run needs it; the first item of the "
        "next run then waits for the app to start, within the step's `startupTimeoutSeconds`.",
        ge=0,
        le=100,
    )
    scale_down_delay_seconds: int = Field(
        300,
        description="How long the app keeps more replicas than the runs need before they are "
        "removed: fewer app starts when runs come one after another.",
        ge=0,
        le=86400,
    )


class Step(App):
    """One CLAMS app of the pipeline."""

    name: str = Field(
        description="The step's name, unique in the pipeline: a DNS label (lower-case letters, "
        "digits, '-') of at most 30 characters. It names the step's output files and, in "
        "Service mode, its Deployment and Service.",
        pattern=DNS_LABEL,
        max_length=30,
    )
    alternatives: list[Alternative] = Field(
        default_factory=list,
        description=f"Other apps doing the step's job (at most {MAX_ALTERNATIVES}). When an "
        "item's step is launched it goes to the most reliable healthy candidate, the step's own "
        "app first and then these in order, by the Monitors of the namespace that test each "
        "app's image (or url): `Healthy` before not monitored before `Degraded` before "
        "`Failing`, higher reliability first, ties in this order. Without alternatives the step "
        "always runs its own app.",
        max_length=MAX_ALTERNATIVES,
        json_schema_extra=list_map("name"),
    )
    own_pod: bool = Field(
        False,
        description="When true, each item runs this step in a pod of its own. By default, "
        "consecutive steps whose apps run outside the item's pod (Service mode, or `url`) and "
        "that have the same `nodeSelector`, `tolerations` and `retries`, and all set or all "
        "leave out `timeoutSeconds`, run in one pod per item: the runner calls each app in "
        "turn and writes each step's MMIF and result record as a pod of the step's own would, "
        "and the cluster makes one pod where it would make one per step. A retried pod goes "
        "on from the first of its steps not done yet; its deadline is the sum of its steps' "
        "`timeoutSeconds`, and each app call is bounded by its own step's. Job-mode steps and "
        "steps with alternatives always run in pods of their own, and Job-mode steps too unless "
        "they are `warm`.",
    )
    warm: bool = Field(
        False,
        description="Only with mode `Job` and no `alternatives`: each run starts the app once, in "
        "`replicas` pods of its own (a Deployment, Service and NetworkPolicy the run owns, "
        "mounting the run's volume read-only), and sends it every item, instead of starting a "
        "fresh app next to each item. The pool is made when the run starts and removed when "
        "its items are done (or the run is cancelled or times out). Items wait for the app's "
        "start-up within `startupTimeoutSeconds`; an app error fails only its item, and an "
        "item whose call is cut (an app pod lost mid-item) is retried like any infrastructure "
        "failure. Only this run's item pods can reach the pool. Such steps share an item's pod "
        "with their neighbours as Service-mode steps do (see `ownPod`).",
    )
    autoscaling: Autoscaling | None = Field(
        None,
        description="Only with mode `Service` and no `url`: the app's replicas follow the runs "
        "of this Pipeline, between `autoscaling.minReplicas` and `replicas` (then the most). "
        "One replica while a running run has items still to reach this step, and one per item "
        "at the step beyond that; replicas no longer needed go after "
        "`autoscaling.scaleDownDelaySeconds`. Without it the Deployment keeps `replicas`.",
    )

    cel_rules = (
        *(r for r in App.cel_rules if r is not REPLICAS_RULE),
        Rule(
            "self.replicas == 1 || (self.mode == 'Service' && !has(self.url))"
            " || (self.mode == 'Job' && has(self.warm) && self.warm)",
            "replicas is only meaningful with mode Service and no url, or with warm (a Job-mode "
            "step's pods per run)",
            check=lambda s: (
                s.replicas == 1 or is_service_without_url(s) or (s.mode is StepMode.JOB and s.warm)
            ),
            field_path=".replicas",
        ),
        Rule(
            "!has(self.alternatives) || self.alternatives.all(a, a.name != self.name"
            " && self.alternatives.exists_one(b, b.name == a.name))",
            "alternatives: names must be unique and differ from the step's name",
            check=lambda s: (
                len({a.name for a in s.alternatives}) == len(s.alternatives)
                and s.name not in {a.name for a in s.alternatives}
            ),
            field_path=".alternatives",
        ),
        Rule(
            "!has(self.autoscaling) || (self.mode == 'Service' && !has(self.url))",
            "autoscaling is only meaningful with mode Service and no url",
            check=lambda s: s.autoscaling is None or is_service_without_url(s),
            field_path=".autoscaling",
        ),
        Rule(
            "!has(self.warm) || !self.warm || (self.mode == 'Job'"
            " && (!has(self.alternatives) || size(self.alternatives) == 0))",
            "warm is only meaningful with mode Job and no alternatives",
            check=lambda s: not s.warm or (s.mode is StepMode.JOB and not s.alternatives),
            field_path=".warm",
        ),
        Rule(
            "!has(self.autoscaling) || self.autoscaling.minReplicas <= self.replicas",
            "autoscaling.minReplicas must not exceed replicas (the most replicas)",
            check=lambda s: s.autoscaling is None or s.autoscaling.min_replicas <= s.replicas,
            field_path=".autoscaling.minReplicas",
        ),
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


class AlternativeStatus(StatusModel):
    """What the operator observes of one alternative of a step."""

    name: str = Field(description="The alternative's name.", max_length=30)
    mode: StepMode = Field(description="The alternative's mode.")
    url: str | None = Field(None, description="The address item pods call (`url` only).", max_length=512)
    ready: bool = Field(
        False,
        description="Whether it can take items: always true (a Job-mode app starts with each "
        "item; a url is someone else's app, which the Monitors test).",
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
    alternatives: list[AlternativeStatus] = Field(
        default_factory=list,
        description="The step's alternatives, in order, and whether each can take items.",
        max_length=MAX_ALTERNATIVES,
        json_schema_extra=list_map("name"),
    )


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
