"""docs/state-machines.md and docs/reference.md match the code they are generated from."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmif_operator.core import refdocs as api_docs
from mmif_operator.kinds.pipelinerun import phases_doc as statemachine_docs

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    ("name", "render"),
    [("state-machines.md", statemachine_docs.render), ("reference.md", api_docs.render)],
)
def test_generated_doc_is_up_to_date(name, render):
    path = DOCS_DIR / name
    assert path.exists(), f"docs/{name} is missing: run `make docs`"
    assert path.read_text() == render(), f"docs/{name} is stale: run `make docs`"


def test_reference_lists_every_spec_field_with_its_rules():
    text = api_docs.render()
    assert "| `spec.steps[].name` | string |" in text
    assert "| `spec.items[].documents[].location` | string |" in text
    assert "spec.pipelineRef is immutable" in text
    assert "| `spec.parallelism` | integer | `4` |" in text


def test_state_machine_doc_has_a_table_and_a_diagram_per_template():
    text = statemachine_docs.render()
    assert "## run-workflow" in text and "## run-with-review" in text
    assert (
        "| WritingManifest | `AllItemsSucceeded` | Succeeded | True | `Succeeded` | "
        "`{Announce}` `{SendNotification RunSucceeded}` | yes |"
    ) in text
    assert "stateDiagram-v2" in text and "WritingManifest --> Succeeded: AllItemsSucceeded" in text
    # The notation, with each row's actions.
    assert (
        "[WritingManifest] - <AllItemsSucceeded> {Announce} {SendNotification RunSucceeded} -> [Succeeded]"
    ) in text
    assert (
        "[WritingManifest] - <AllItemsSucceeded> {Announce} {SendNotification AwaitingReview} "
        "-> [AwaitingReview]"
    ) in text
    assert (
        "[Publishing] - <PublishFailed> {Announce Warning} {SendNotification PublishFailed} -> [Failed]"
    ) in text
