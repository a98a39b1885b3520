"""The Pipeline custom resource: an ordered chain of CLAMS apps."""
from __future__ import annotations

import enum
from pydantic import Field

from .cel import Rule
from .common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    AbsolutePath,
    Condition,
    EnvVar,
    ResourceRequirements,
    ShortString,
    SpecModel,
    StatusModel,
    list_map,
)

KIND = "Pipeline"
PLURAL = "pipelines"
MAX_STEPS = 20


class StepMode(enum.StrEnum):
    JOB = "Job"
    SERVICE = "Service"


def _is_service_without_url(step: Step) -> bool:
    return step.mode is StepMode.SERVICE and step.url is None


class Step(SpecModel):
    """One CLAMS app of the pipeline."""

    name: str = Field(
        description="The step's name, unique in the pipeline: a DNS label (lower-case letters, "
        "digits, '-') of at most 30 characters. It names the step's output files and, in "
        "Service mode, its Deployment and Service.",
        pattern=DNS_LABEL,
        max_length=30,
    )
    image: str | None = Field(
        None,
        description="The container image of the CLAMS app, e.g. "
        "`ghcr.io/clamsproject/app-swt-detection:v7.1`. Required unless `url` is set.",
        min_length=1,
        max_length=512,
    )
    mode: StepMode = Field(
        StepMode.JOB,
        description="How the app runs. `Job`: a fresh app container next to each item's step "
        "pod. `Service`: long-lived app replicas behind a Service (kept by the operator, or "
        "run by someone else when `url` is set), which every item's step pod calls.",
    )
    url: str | None = Field(
        None,
        description="Only with mode `Service`: the http(s) address of an app someone else runs. "
        "The operator then keeps no Deployment for this step.",
        pattern=r"^https?://[^\s]+$",
        max_length=512,
    )
    replicas: int = Field(
        1,
        description="Only with mode `Service` and no `url`: how many app pods the Deployment "
        "keeps.",
        ge=1,
        le=100,
    )
    port: int = Field(
        5000, description="The TCP port the app's HTTP server listens on.", ge=1, le=65535
    )
    parameters: dict[str, ShortString] = Field(
        default_factory=dict,
        description="CLAMS runtime parameters sent to the app in the query string, e.g. "
        "`{pretty: 'true'}`. A PipelineRun's `params` override them.",
        max_length=50,
    )
    resources: ResourceRequirements | None = Field(
        None, description="CPU, memory and GPU requests and limits of the app container."
    )
    node_selector: dict[str, ShortString] = Field(
        default_factory=dict,
        description="Node labels the app's pods must run on, e.g. "
        "`{nvidia.com/gpu.present: 'true'}`.",
        max_length=20,
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Environment variables of the app container.",
        max_length=50,
        json_schema_extra=list_map("name"),
    )
    timeout_seconds: int | None = Field(
        None,
        description="The deadline of one item at this step, retries included. No deadline when "
        "unset.",
        ge=1,
    )
    retries: int = Field(
        2,
        description="How many times an item's step is retried after an infrastructure failure "
        "(app unreachable, pod evicted). Errors the app reports are never retried.",
        ge=0,
        le=10,
    )
    run_as_user: int | None = Field(
        None,
        description="The user ID the app runs as; by default the image's user.",
        ge=0,
        le=2147483647,
    )
    run_as_non_root: bool | None = Field(
        None, description="When true, the app's pod fails to start if the app would run as root."
    )

    cel_rules = (
        Rule(
            "has(self.image) || has(self.url)",
            "image is required unless url is set",
            check=lambda s: s.image is not None or s.url is not None,
            field_path=".image",
        ),
        Rule(
            "!has(self.url) || self.mode == 'Service'",
            "url is only allowed with mode Service",
            check=lambda s: s.url is None or s.mode is StepMode.SERVICE,
            field_path=".url",
        ),
        Rule(
            "self.replicas == 1 || (self.mode == 'Service' && !has(self.url))",
            "replicas is only meaningful with mode Service and no url",
            check=lambda s: s.replicas == 1 or _is_service_without_url(s),
            field_path=".replicas",
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
    mount_path: AbsolutePath = Field(
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

    cel_rules = (
        Rule(
            "self.steps.all(s, self.steps.exists_one(t, t.name == s.name))",
            "spec.steps: step names must be unique",
            check=lambda p: len({s.name for s in p.steps}) == len(p.steps),
            field_path=".steps",
        ),
        Rule(
            "has(self.workspace) || self.steps.all(s, s.mode != 'Service' || has(s.url))",
            "spec.workspace is required when a step has mode Service and no url",
            check=lambda p: p.workspace is not None
            or not any(map(_is_service_without_url, p.steps)),
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
    ready: bool = Field(
        False, description="Whether the step can take items (always true in Job mode)."
    )


class PipelineStatus(StatusModel):
    """The observed state of a Pipeline."""

    observed_generation: int | None = Field(
        None, description="The `metadata.generation` this status describes.", ge=0
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Ready`: whether every step can take items (its reason says why not).",
        max_length=8,
        json_schema_extra=list_map("type"),
    )
    steps: list[StepStatus] = Field(
        default_factory=list,
        description="One entry per step, in order.",
        max_length=MAX_STEPS,
        json_schema_extra=list_map("name"),
    )
