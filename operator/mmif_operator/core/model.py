"""Pieces shared by the Pipeline and PipelineRun models: base classes, field types, conditions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mmif_operator.core.cel import Rule, add_rules

GROUP = "mmif.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# The bounds on a run's and an AnalysisJob's status: the latest failures kept, and each message.
MAX_FAILURES = 20
MAX_FAILURE_MESSAGE = 512

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _add_model_rules(schema: dict[str, Any], cls: type[ApiModel]) -> None:
    add_rules(schema, cls.cel_rules)


class ApiModel(BaseModel):
    """Base of every custom-resource model: camelCase aliases, CEL rules checked in Python too."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra=_add_model_rules,
    )
    cel_rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        for rule in self.cel_rules:
            rule.validate(self)
        return self

    @classmethod
    def from_obj(cls, data: Mapping[str, Any] | None) -> Self:
        """Parse the `spec` or `status` dict of a custom object (camelCase keys); None is `{}`."""
        return cls.model_validate(dict(data or {}))

    def to_dict(self) -> dict[str, Any]:
        """The object as Kubernetes stores it: camelCase keys, JSON values, no None fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class SpecModel(ApiModel):
    """A part of a `spec`: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class StatusModel(ApiModel):
    """A part of a `status`: written by the operator; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    def to_status_patch(self) -> dict[str, Any]:
        """The body to merge into `.status` (camelCase keys, JSON values, no None fields)."""
        return self.to_dict()


def list_map(*keys: str) -> dict[str, Any]:
    """Schema markers of a list whose entries are identified by `keys` (server-side apply merges
    them by key)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[AwareDatetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]
"""A point in time, written as Kubernetes does: RFC 3339 in UTC, whole seconds."""

Quantity = Annotated[
    int | Annotated[str, StringConstraints(pattern=QUANTITY)],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity: an integer or a string such as `500m`, `2Gi`."""

# No ".." segment, written with prefix/suffix/substring tests: a regex costs too much CEL budget
# on 10,000 document locations.
_NO_DOTDOT = "!self.endsWith('/..') && !self.contains('/../')"


def _no_dotdot(path: str) -> bool:
    return ".." not in path.split("/")


RelativePath = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    Rule(
        f"!self.startsWith('/') && self != '..' && !self.startsWith('../') && {_NO_DOTDOT}",
        "must be a relative path (no leading '/') without '..' segments",
        check=lambda p: not p.startswith("/") and _no_dotdot(p),
    ),
]
"""A path relative to the workspace's mount path that cannot leave it."""

AbsolutePath = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    Rule(
        f"self.startsWith('/') && {_NO_DOTDOT}",
        "must be an absolute path (leading '/') without '..' segments",
        check=lambda p: p.startswith("/") and _no_dotdot(p),
    ),
]
"""An absolute path inside a container."""

RESERVED_MOUNT_PATHS = (
    "/",
    "/tmp",
    "/dev",
    "/proc",
    "/sys",
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/opt",
    "/run",
    "/var/run",
    "/app",
)
"""Folders a workspace may not be mounted at, inside or above: the root, the runner's scratch
`/tmp` (an emptyDir of every pod), the system folders a container needs, the runner's own code
(`/opt`) and where CLAMS app images keep theirs (`/app`)."""

_RESERVED_CEL = "[" + ", ".join(f"'{p}'" for p in RESERVED_MOUNT_PATHS) + "]"


def reserved_mount_path(path: str) -> str | None:
    """The reserved folder `path` is, lies in or lies above (None when it is free)."""
    for reserved in RESERVED_MOUNT_PATHS:
        if path == reserved or path.startswith(reserved + "/") or reserved.startswith(path + "/"):
            return reserved
    return None


MountPath = Annotated[
    AbsolutePath,
    Rule(
        "self == '/' || (!self.endsWith('/') && !self.contains('//') && !self.endsWith('/.')"
        " && !self.contains('/./'))",
        "must be a clean absolute path: no trailing '/', no '//' and no '.' segments",
        check=lambda p: p == "/" or (not p.endswith("/") and "//" not in p and "." not in p.split("/")),
    ),
    Rule(
        f"!{_RESERVED_CEL}.exists(r, self == r || self.startsWith(r + '/') || r.startsWith(self + '/'))",
        "must not be one of the folders the pods need for themselves ("
        + ", ".join(RESERVED_MOUNT_PATHS)
        + "), nor lie inside or above one",
        check=lambda p: reserved_mount_path(p) is None,
    ),
]
"""Where a workspace is mounted: an absolute path outside the folders every pod needs."""

ShortString = Annotated[str, Field(max_length=1024)]
"""A string value of a map (parameters, node selector): at most 1024 characters."""


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """The state of one aspect of a resource, as in `metav1.Condition`."""

    type: str = Field(
        description="The aspect this condition is about, e.g. `Ready` or `Succeeded`.",
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        max_length=316,
    )
    status: ConditionStatus = Field(description="`True`, `False` or `Unknown` (still undecided).")
    reason: str = Field(
        description="A CamelCase word saying why the condition has this status, e.g. `PipelineNotFound`.",
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        min_length=1,
        max_length=1024,
    )
    message: str = Field("", description="A human-readable explanation of the reason.", max_length=32768)
    last_transition_time: Timestamp = Field(
        description="When the status last changed (not when the reason or message changed)."
    )
    observed_generation: int | None = Field(
        None, description="The `metadata.generation` the condition was computed from.", ge=0
    )


class EnvVar(SpecModel):
    """An environment variable of a container."""

    name: str = Field(
        description="The variable's name.",
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
        max_length=256,
    )
    value: str = Field("", description="The variable's value.", max_length=32768)


class ResourceRequirements(SpecModel):
    """Compute resources of a container, as in a Pod's `resources`."""

    requests: dict[str, Quantity] | None = Field(
        None,
        description="The resources the scheduler reserves for the container, "
        "e.g. `{cpu: 500m, memory: 2Gi}`.",
        max_length=16,
    )
    limits: dict[str, Quantity] | None = Field(
        None,
        description="The most the container may use, e.g. `{memory: 4Gi, nvidia.com/gpu: 1}`.",
        max_length=16,
    )


class TolerationOperator(enum.StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(enum.StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(SpecModel):
    """A taint a pod tolerates, as in a Pod's `tolerations`."""

    key: str | None = Field(
        None,
        description="The taint key; empty with operator `Exists` tolerates every taint.",
        max_length=316,
    )
    operator: TolerationOperator = Field(
        TolerationOperator.EQUAL,
        description="`Equal` (the taint's value must equal `value`) or `Exists` (any value).",
    )
    value: str | None = Field(
        None, description="The taint value to match (operator `Equal` only).", max_length=63
    )
    effect: TaintEffect | None = Field(
        None,
        description="The taint effect to match: `NoSchedule`, `PreferNoSchedule` or `NoExecute`; "
        "empty matches every effect.",
    )
    toleration_seconds: int | None = Field(
        None,
        description="Only with effect `NoExecute`: how long the pod stays bound after the taint appears.",
        ge=0,
    )

    cel_rules = (
        Rule(
            "self.operator != 'Exists' || !has(self.value)",
            "value must be empty with operator Exists",
            check=lambda t: t.operator is not TolerationOperator.EXISTS or t.value is None,
            field_path=".value",
        ),
    )
