"""Render the reference of every custom-resource field from the CRD schemas (`make docs`).

python -m mmif_operator.core.refdocs > docs/reference.md
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mmif_operator.core.crdgen import PRESERVE_UNKNOWN, RESOURCES, Resource, structural_schema
from mmif_operator.core.model import API_VERSION

_INT_OR_STRING = "x-kubernetes-int-or-string"


def _type(schema: dict[str, Any]) -> str:
    if schema.get(_INT_OR_STRING):
        return "int-or-string"
    if schema.get(PRESERVE_UNKNOWN):
        return "object (any fields)"
    kind = schema.get("type", "")
    if kind == "array":
        return "[]" + _type(schema["items"])
    if kind == "object" and "additionalProperties" in schema:
        return "map[string]" + _type(schema["additionalProperties"])
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return kind


def _range(low: Any, high: Any, unit: str) -> str | None:
    if low is None and high is None:
        return None
    if high is None:
        return f"at least {low}{unit}"
    if low is None:
        return f"at most {high}{unit}"
    return f"{low}..{high}{unit}"


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def _default(value: Any) -> str:
    if value is None:
        return ""
    return _code(json.dumps(value) if value == "" else str(value))


def _validation(schema: dict[str, Any], required: bool) -> list[str]:
    rules = ["required"] if required else []
    if "enum" in schema:
        rules.append("one of " + ", ".join(_code(str(v)) for v in schema["enum"]))
    for low, high, unit in (
        ("minimum", "maximum", ""),
        ("minLength", "maxLength", " characters"),
        ("minItems", "maxItems", " entries"),
        (None, "maxProperties", " entries"),
    ):
        bounds = _range(schema.get(low) if low else None, schema.get(high), unit)
        if bounds:
            rules.append(bounds)
    if "pattern" in schema:
        rules.append("matches " + _code(schema["pattern"]))
    if "x-kubernetes-list-map-keys" in schema:
        keys = ", ".join(_code(k) for k in schema["x-kubernetes-list-map-keys"])
        rules.append(f"entries keyed by {keys}")
    for rule in schema.get("x-kubernetes-validations", []):
        rules.append(f"{rule['message']} ({_code(rule['rule'])})")
    return rules


def _rows(schema: dict[str, Any], path: str, required: bool) -> Iterator[list[str]]:
    default = schema.get("default")
    yield [
        _code(path),
        _type(schema),
        _default(default),
        schema.get("description", "").replace("\n", " "),
        "; ".join(_validation(schema, required)),
    ]
    children = schema
    while children.get("type") == "array":
        children = children["items"]
        path += "[]"
    for name, child in children.get("properties", {}).items():
        yield from _rows(child, f"{path}.{name}", name in children.get("required", []))


def _section(resource: Resource) -> list[str]:
    lines = [
        f"## {resource.kind}",
        "",
        resource.description,
        "",
        f"`apiVersion: {API_VERSION}`, `kind: {resource.kind}`, {'namespaced' if resource.scope == 'Namespaced' else 'cluster-scoped'}; short name "
        f"`{resource.short_name}`; `kubectl get {resource.plural}` shows "
        + ", ".join(c["name"] for c in resource.printer_columns)
        + ".",
    ]
    for part, model in (("spec", resource.spec), ("status", resource.status)):
        lines += [
            "",
            f"### {part}",
            "",
            "| field | type | default | description | validation |",
            "| --- | --- | --- | --- | --- |",
        ]
        rows = _rows(structural_schema(model), part, required=part == "spec")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render() -> str:
    """The whole `docs/reference.md`."""
    lines = [
        "# Custom resource reference",
        "",
        "<!-- Generated from the models in operator/mmif_operator/kinds/: do not edit. -->",
        "<!-- Regenerate with `make docs` (python -m mmif_operator.core.refdocs). -->",
        "",
        "Every field of the custom resources, as the API server validates it. Validation rules "
        "in parentheses are CEL expressions checked at admission; `oldSelf` ones only on update.",
    ]
    for resource in RESOURCES:
        lines += ["", *_section(resource)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
