"""Test inputs parsed as the handlers parse them (core/specs.py): the planners and builders take
the kinds' models, not dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmif_operator.core.specs import parse_spec
from mmif_operator.kinds.pipeline.model import PipelineSpec, Step
from mmif_operator.kinds.pipelinerun import children as J
from mmif_operator.kinds.pipelinerun.model import PipelineRunSpec

# The least a run's spec holds (for builders that read none of it).
MIN_RUN_SPEC: dict[str, Any] = {
    "pipelineRef": {"name": "pipe"},
    "workspace": {"claimName": "media"},
    "itemsFrom": {"path": "batch.jsonl"},
}


def pipe(spec: Mapping[str, Any] | PipelineSpec) -> PipelineSpec:
    """A Pipeline spec (or a run's snapshot of one), parsed."""
    return spec if isinstance(spec, PipelineSpec) else parse_spec(PipelineSpec, spec)


def step(spec: Mapping[str, Any]) -> Step:
    return parse_spec(Step, spec)


def runspec(spec: Mapping[str, Any] | None = None) -> PipelineRunSpec:
    """A PipelineRun spec, parsed (`MIN_RUN_SPEC` when None)."""
    return parse_spec(PipelineRunSpec, MIN_RUN_SPEC if spec is None else spec)


def ctx(run: Mapping[str, Any]) -> J.RunContext:
    """The RunContext of a PipelineRun object (metadata and spec)."""
    return J.RunContext.from_run(run["metadata"], runspec(run["spec"]))


def plan_run(run: Mapping[str, Any], pipeline_spec: Mapping[str, Any] | None, *args: Any, **kw: Any) -> Any:
    """`planning.plan_run` on a run object and a Pipeline spec as dicts, parsed first as the
    handler parses them."""
    from mmif_operator.kinds.pipelinerun import planning as R

    return R.plan_run(R.parse_run(run), None if pipeline_spec is None else pipe(pipeline_spec), *args, **kw)


def plan_analysis(analysis: Mapping[str, Any], run: Mapping[str, Any] | None, *args: Any, **kw: Any) -> Any:
    """`analysisjob.planning.plan_analysis` on an AnalysisJob and its source run as dicts, parsed
    first as the handler parses them."""
    from mmif_operator.kinds.analysisjob import planning as RA

    return RA.plan_analysis(
        RA.parse_analysis(analysis), None if run is None else RA.parse_source_run(run), *args, **kw
    )
