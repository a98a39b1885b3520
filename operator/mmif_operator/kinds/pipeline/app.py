"""A CLAMS app and how it runs: the part Pipeline steps and analyses share."""

from __future__ import annotations

import enum
from typing import ClassVar

from pydantic import Field

from mmif_operator.core.cel import Rule
from mmif_operator.core.model import (
    EnvVar,
    ResourceRequirements,
    ShortString,
    SpecModel,
    Toleration,
    list_map,
)


class StepMode(enum.StrEnum):
    JOB = "Job"
    SERVICE = "Service"


def is_service_without_url(step: App) -> bool:
    return step.mode is StepMode.SERVICE and step.url is None


REPLICAS_RULE = Rule(
    "self.replicas == 1 || (self.mode == 'Service' && !has(self.url))",
    "replicas is only meaningful with mode Service and no url",
    check=lambda s: s.replicas == 1 or is_service_without_url(s),
    field_path=".replicas",
)


class App(SpecModel):
    """A CLAMS app (or any container following the same MMIF-in, MMIF-out HTTP contract) and how
    it runs: the part shared by Pipeline steps and analyses."""

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
        description="Only with mode `Service` and no `url`: how many app pods the Deployment keeps "
        "(with `autoscaling`, the most). For a `warm` Job-mode step of a Pipeline: how many app "
        "pods each run starts.",
        ge=1,
        le=100,
    )
    port: int = Field(5000, description="The TCP port the app's HTTP server listens on.", ge=1, le=65535)
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
        "`{nvidia.com/gpu.present: 'true'}`: every item's pod of this step (in any mode) and, "
        "in Service mode, the app's replicas.",
        max_length=20,
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="Taints the app's pods tolerate (the same pods as `nodeSelector`), e.g. "
        "`[{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]`.",
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
        description="The deadline of one item at this step, retries included. No deadline when unset.",
        ge=1,
    )
    startup_timeout_seconds: int = Field(
        900,
        description="How long an item's pod may take to start: to be scheduled, mount the "
        "workspace, pull the images and start its containers; then, in Job mode, how long the "
        "app may take to listen on `port` (loading a model can take minutes). Past it the item "
        "fails with a reason (`ImagePullFailed`, `Unschedulable`, `PodCreateFailed`, "
        "`MountFailed`, `AppNotListening`, ...) and the kubelet's or controller's message. An "
        "image name that can never work (`InvalidImageName`, `ErrImageNeverPull`) fails at once. "
        "A pod waiting for room on the nodes (`Insufficient cpu`) while a pod of the same run runs "
        "waits its turn: the bound applies once none of the run's pods runs, and once such a "
        "pod has waited a minute the run starts no new item until it is placed.",
        ge=1,
        le=86400,
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

    cel_rules: ClassVar[tuple[Rule, ...]] = (
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
        REPLICAS_RULE,
    )
