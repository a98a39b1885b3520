"""The generated CRDs are structural, bounded, carry the admission rules, and match crds/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmif_operator.core import crdgen

CRDS_DIR = Path(__file__).resolve().parents[2] / "crds"
CRDS = {r.kind: crdgen.crd(r) for r in crdgen.RESOURCES}
INT_OR_STRING = "x-kubernetes-int-or-string"
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
FORBIDDEN_KEYS = {"$ref", "$defs", "definitions", "title", "allOf", "oneOf", "not", "nullable"}


def _root(kind: str) -> dict[str, Any]:
    return CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}.*")


def _node(kind: str, path: str) -> dict[str, Any]:
    return dict(_nodes(_root(kind)))[path]


def _rules(kind: str, path: str) -> dict[str, str]:
    """message -> rule of the CEL rules at `path`."""
    return {v["message"]: v["rule"] for v in _node(kind, path).get("x-kubernetes-validations", [])}


ALL_NODES = [
    pytest.param(kind, path, node, id=f"{kind}{path}") for kind in CRDS for path, node in _nodes(_root(kind))
]
SPEC_NODES = [n for n in ALL_NODES if n.values[1].startswith(".spec")]


@pytest.mark.parametrize("kind", CRDS)
def test_crd_files_are_up_to_date(kind):
    resource = next(r for r in crdgen.RESOURCES if r.kind == kind)
    path = CRDS_DIR / resource.file_name
    assert path.exists(), f"{path} is missing: run `make crds`"
    assert path.read_text() == crdgen.render(resource), f"{path} is stale: run `make crds`"


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES)
def test_schema_node_is_structural(kind, path, node):
    assert not FORBIDDEN_KEYS & node.keys(), f"{kind}{path}: {FORBIDDEN_KEYS & node.keys()}"
    if node.get(INT_OR_STRING):
        assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}] and "type" not in node
    else:
        assert "anyOf" not in node, f"{kind}{path}"
        assert node.get("type") in {"object", "array", "string", "integer", "boolean", "number"}
    assert node.get("additionalProperties", {}) is not False
    assert not ("properties" in node and "additionalProperties" in node), f"{kind}{path}"
    assert "default" not in node or node["default"] is not None
    if node.get(PRESERVE_UNKNOWN):
        assert node.keys() <= {"description", "type", PRESERVE_UNKNOWN}


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES)
def test_every_field_is_described(kind, path, node):
    if path not in {".metadata"} and not path.endswith(("[]", ".*")):
        assert node.get("description"), f"{kind}{path} has no description for kubectl explain"


@pytest.mark.parametrize(("kind", "path", "node"), SPEC_NODES)
def test_spec_lists_strings_and_maps_are_bounded(kind, path, node):
    if node.get("type") == "string" and "enum" not in node:
        assert "maxLength" in node, f"{kind}{path}: a string needs maxLength (CEL cost)"
    if node.get("type") == "array":
        assert "maxItems" in node, f"{kind}{path}: a list needs maxItems (CEL cost)"
    if "additionalProperties" in node:
        assert "maxProperties" in node, f"{kind}{path}: a map needs maxProperties (CEL cost)"


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES)
def test_list_map_keys_are_required_properties(kind, path, node):
    if node.get("x-kubernetes-list-type") == "map":
        items = node["items"]
        for key in node["x-kubernetes-list-map-keys"]:
            assert key in items.get("required", []) or "default" in items["properties"][key]


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES)
def test_cel_rules_name_existing_fields(kind, path, node):
    for validation in node.get("x-kubernetes-validations", []):
        for field in re.findall(r"\b(?:self|oldSelf)\.(\w+)\b(?!\()", validation["rule"]):
            assert field in node.get("properties", {}), f"{kind}{path}: {validation['rule']}"
        assert validation["rule"].count("(") == validation["rule"].count(")")


@pytest.mark.parametrize(
    ("kind", "path", "message", "rule"),
    [
        (
            "Pipeline",
            ".spec",
            "spec.steps: step names must be unique",
            "self.steps.all(s, self.steps.exists_one(t, t.name == s.name))",
        ),
        (
            "Pipeline",
            ".spec",
            "spec.workspace is required when a step has mode Service and no url",
            "has(self.workspace) || self.steps.all(s, s.mode != 'Service' || has(s.url))",
        ),
        (
            "Pipeline",
            ".spec.steps[]",
            "url is only allowed with mode Service",
            "!has(self.url) || self.mode == 'Service'",
        ),
        (
            "Pipeline",
            ".spec.steps[]",
            "image is required unless url is set",
            "has(self.image) || has(self.url)",
        ),
        (
            "Pipeline",
            ".spec.steps[]",
            "replicas is only meaningful with mode Service and no url, or with warm (a Job-mode "
            "step's pods per run)",
            "self.replicas == 1 || (self.mode == 'Service' && !has(self.url))"
            " || (self.mode == 'Job' && has(self.warm) && self.warm)",
        ),
        (
            "Pipeline",
            ".spec.steps[]",
            "warm is only meaningful with mode Job and no alternatives",
            "!has(self.warm) || !self.warm || (self.mode == 'Job'"
            " && (!has(self.alternatives) || size(self.alternatives) == 0))",
        ),
        (
            "PipelineRun",
            ".spec.items[]",
            "an item needs exactly one of documents, mmif or record",
            "has(self.record) || has(self.documents) != has(self.mmif)",
        ),
        (
            "PipelineRun",
            ".spec.items[]",
            "record excludes documents and mmif: an item needs exactly one of them",
            "!has(self.record) || (!has(self.documents) && !has(self.mmif))",
        ),
        (
            "PipelineRun",
            ".spec",
            "spec: exactly one of items or itemsFrom must be set",
            "has(self.items) != has(self.itemsFrom)",
        ),
        (
            "PipelineRun",
            ".spec",
            "spec.status: a cancelled run cannot be resumed",
            "has(self.status) || !has(oldSelf.status)",
        ),
    ],
)
def test_admission_rule_is_in_schema(kind, path, message, rule):
    assert _rules(kind, path).get(message) == rule


RELATIVE = "must be a relative path (no leading '/') without '..' segments"
ABSOLUTE = "must be an absolute path (leading '/') without '..' segments"


@pytest.mark.parametrize(
    ("kind", "path", "message"),
    [
        ("PipelineRun", ".spec.items[].documents[].location", RELATIVE),
        ("PipelineRun", ".spec.items[].mmif", RELATIVE),
        ("PipelineRun", ".spec.itemsFrom.path", RELATIVE),
        ("PipelineRun", ".spec.workspace.outputDir", RELATIVE),
        ("PipelineRun", ".spec.workspace.mountPath", ABSOLUTE),
        ("Pipeline", ".spec.workspace.mountPath", ABSOLUTE),
    ],
)
def test_path_fields_carry_path_rule(kind, path, message):
    assert message in _rules(kind, path)


@pytest.mark.parametrize("kind", ["PipelineRun", "Pipeline"])
def test_mount_paths_carry_the_reserved_folders_rule(kind):
    rules = _rules(kind, ".spec.workspace.mountPath")
    assert any(m.startswith("must not be one of the folders the pods need") for m in rules), rules
    assert any(m.startswith("must be a clean absolute path") for m in rules), rules


@pytest.mark.parametrize(
    "field",
    [
        "pipelineRef",
        "workspace",
        "items",
        "itemsFrom",
        "parallelism",
        "params",
        "timeoutSeconds",
        "startTimeoutSeconds",
        "onItemFailure",
    ],
)
def test_run_spec_field_is_immutable(field):
    rule = _rules("PipelineRun", ".spec")[f"spec.{field} is immutable"]
    assert f"self.{field} == oldSelf.{field}" in rule
    assert f"has(self.{field}) == has(oldSelf.{field})" in rule


@pytest.mark.parametrize("field", ["status", "ttlSecondsAfterFinished"])
def test_run_spec_field_stays_mutable(field):
    assert f"spec.{field} is immutable" not in _rules("PipelineRun", ".spec")


def test_parallelism_is_at_least_one_and_batch_not_empty():
    assert _node("PipelineRun", ".spec.parallelism")["minimum"] == 1
    assert _node("PipelineRun", ".spec.items")["minItems"] == 1
    assert _node("PipelineRun", ".spec.items[].documents")["minItems"] == 1
    assert _node("Pipeline", ".spec.steps")["minItems"] == 1


def test_pipeline_snapshot_in_run_status_keeps_unknown_fields():
    assert _node("PipelineRun", ".status.pipelineSpec")[PRESERVE_UNKNOWN] is True


def test_quantities_are_int_or_string():
    assert _node("Pipeline", ".spec.steps[].resources.limits.*")[INT_OR_STRING] is True


@pytest.mark.parametrize("kind", CRDS)
def test_crd_has_status_subresource_names_and_columns(kind):
    spec = CRDS[kind]["spec"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert spec["names"]["categories"] == ["mmif"]
    assert spec["names"]["shortNames"] == [
        {
            "Pipeline": "mpl",
            "PipelineRun": "mpr",
            "AnalysisJob": "maj",
            "Project": "mproj",
            "Monitor": "mmon",
            "HealthReport": "mhr",
        }[kind]
    ]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert (
        columns
        == {
            "Pipeline": ["Ready", "Reason", "Age"],
            "PipelineRun": [
                "Pipeline",
                "Progress",
                "Succeeded",
                "Reason",
                "StartTime",
                "CompletionTime",
                "Age",
            ],
            "AnalysisJob": ["Run", "Trigger", "Progress", "Succeeded", "Reason", "Requester", "Age"],
            "Project": ["Title", "State", "Ready", "Reason", "End", "Age"],
            "Monitor": ["Target", "Interval", "Health", "Reliability", "Last report", "Result", "Age"],
            "HealthReport": ["Monitor", "Id", "Result", "Duration", "Summary", "Age"],
        }[kind]
    )
