"""CEL validation rules that travel with the models into the CRD schema.

A `Rule` holds the CEL expression the API server evaluates at admission and, when the rule does
not compare with the old object, the same check in Python, so that parsing a custom object with
the models refuses what the API server would refuse. A rule is attached either to a model (listed
in its `cel_rules`) or to a field type (as `Annotated` metadata).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

VALIDATIONS = "x-kubernetes-validations"


@dataclass(frozen=True)
class Rule:
    """One `x-kubernetes-validations` entry.

    `check` is the Python twin of `rule` (None for transition rules, which need the old object).
    `field_path` (JSONPath relative to where the rule is attached) tells the API server which
    field to blame.
    """

    rule: str
    message: str
    check: Callable[[Any], bool] | None = None
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry

    def validate(self, value: Any) -> Any:
        if self.check is not None and not self.check(value):
            raise PydanticCustomError("cel_rule", self.message)
        return value

    # As `Annotated` metadata: validate in Python and add the rule to the field's schema.
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler):
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler):
        json_schema = handler(schema)
        add_rules(json_schema, [self])
        return json_schema


def add_rules(json_schema: dict[str, Any], rules: list[Rule] | tuple[Rule, ...]) -> None:
    """Append `rules` to the `x-kubernetes-validations` of a JSON schema node."""
    if rules:
        json_schema.setdefault(VALIDATIONS, []).extend(r.to_schema() for r in rules)
