"""Where objects enter: a spec parsed into its kind's model, or why it cannot be.

The handlers parse what users write (a Pipeline's, PipelineRun's and AnalysisJob's `spec`, and
the run's pipeline snapshot `status.pipelineSpec`) into the models of `kinds/*/model.py` with
`parse_spec`; the planners and builders read typed fields (`step.port`, `spec.parallelism`), with
the defaults the models declare. A spec that does not parse (an object stored before a schema
change) raises `InvalidSpec`, whose message names the field: the handler puts it in a condition
(reason `InvalidSpec`) instead of crashing. The status side (the operator's own bookkeeping)
stays plain dicts: see docs/design.md ("Typed specs, plain statuses").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mmif_operator.core.model import API_VERSION as API_VERSION  # re-exported
from mmif_operator.core.model import GROUP
from mmif_operator.kinds.pipeline import model as pipeline_api
from mmif_operator.kinds.pipelinerun import model as run_api

API_GROUP = GROUP
KIND_PIPELINE = pipeline_api.KIND
KIND_RUN = run_api.KIND


def plain(obj: Any) -> dict[str, Any]:
    """A camelCase dict of `obj` (a Mapping, a pydantic model, or None → {}): for the parts
    copied as they are (a snapshot's analysis templates into an AnalysisJob)."""
    if obj is None:
        return {}
    if isinstance(obj, BaseModel):
        return obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"expected a mapping or a pydantic model, got {type(obj).__name__}")


M = TypeVar("M", bound=BaseModel)

MAX_INVALID_MESSAGE = 1024
"""At most this much of a parse error goes into a condition's message."""


class InvalidSpec(ValueError):
    """A spec (or snapshot) does not parse into its model; the message names each bad field,
    e.g. `spec.items[3].documents[0].mimeType: String should match pattern ...`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _location(where: str, loc: tuple[int | str, ...]) -> str:
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def describe(error: ValidationError, where: str) -> str:
    """A ValidationError as one line per field: `<where>.<field path>: <pydantic's message>`."""
    parts = [f"{_location(where, tuple(e['loc']))}: {e['msg']}" for e in error.errors(include_url=False)]
    text = "; ".join(parts) or str(error)
    return text if len(text) <= MAX_INVALID_MESSAGE else text[: MAX_INVALID_MESSAGE - 3] + "..."


def parse_spec(model: type[M], data: Mapping[str, Any] | None, where: str = "spec") -> M:
    """`data` (camelCase keys, as stored; None is `{}`) as `model`, or InvalidSpec naming the field."""
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as e:
        raise InvalidSpec(describe(e, where)) from e


class ParseCache:
    """The last few specs parsed, by a key that changes whenever the spec does (an object's
    `(uid, metadata.generation)`: the API server bumps the generation on every spec change).
    Bounded (least recently used out); a parse error is not kept (parsed again next time)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, BaseModel] = OrderedDict()

    def parse(
        self, key: Hashable | None, model: type[M], data: Mapping[str, Any] | None, where: str = "spec"
    ) -> M:
        """`parse_spec`, reusing the result of the same key (a None key: never cached)."""
        if key is not None:
            hit = self._items.get(key)
            if isinstance(hit, model):
                self._items.move_to_end(key)
                return hit
        parsed = parse_spec(model, data, where)
        if key is not None:
            self._items[key] = parsed
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return parsed

    def __len__(self) -> int:
        return len(self._items)


def generation_key(meta: Mapping[str, Any]) -> tuple[str, int] | None:
    """The cache key of an object's spec: `(uid, generation)`, None when either is missing."""
    uid, generation = meta.get("uid"), meta.get("generation")
    if not uid or generation is None:
        return None
    return (str(uid), int(generation))
