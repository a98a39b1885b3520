"""core/names.py and core/labels.py: deterministic, valid, collision-free."""

from __future__ import annotations

import pytest

from mmif_operator.core import labels as L
from mmif_operator.core import names


def test_short_names_are_kept():
    assert names.step_job_name("run-1", 12, 3) == "run-1-00012-3"
    assert names.prepare_job_name("run-1") == "run-1-prepare"
    assert names.manifest_job_name("run-1") == "run-1-manifest"
    assert names.app_service_name("pl", "asr") == f"pl-asr--{names.short_hash('pl/asr')}"


@pytest.mark.parametrize("run", ["r" * 63, "a" * 253, "x" * 50 + ".y" * 20, "my.run.with.dots"])
def test_long_or_dotted_names_are_valid_and_stable(run):
    for name in (
        names.step_job_name(run, 999, 19),
        names.prepare_job_name(run),
        names.manifest_job_name(run),
    ):
        assert names.is_dns1123_label(name), name
        assert len(name) <= 63
    assert names.step_job_name(run, 1, 2) == names.step_job_name(run, 1, 2)
    assert names.step_job_name(run, 1, 2).endswith("-00001-2")
    assert names.prepare_job_name(run).endswith("-prepare")


def test_truncated_names_do_not_collide():
    a = "a" * 60 + "-one"
    b = "a" * 60 + "-two"
    assert names.step_job_name(a, 0, 0) != names.step_job_name(b, 0, 0)
    assert names.prepare_job_name(a) != names.prepare_job_name(b)
    # a clean name and a cleaned name that would look the same
    assert names.prepare_job_name("a.b") != names.prepare_job_name("a-b")


def test_item_index_beyond_five_digits():
    assert names.step_job_name("run", 123456, 0) == "run-123456-0"


@pytest.mark.parametrize("pipeline,step", [("p" * 253, "s" * 30), ("1pipe", "asr"), ("pipe.line", "ner")])
def test_service_names_are_dns1035(pipeline, step):
    name = names.app_service_name(pipeline, step)
    assert names.is_dns1035_label(name), name
    assert name == names.app_service_name(pipeline, step)


@pytest.mark.parametrize(
    "value", ["ok", "a" * 63, "a" * 64, "x" * 253, "a.b_c-d", "-lead", "trail.", "..", "a b/c"]
)
def test_label_values_are_valid(value):
    out = L.label_value(value)
    assert L.is_label_value(out), out
    assert out == L.label_value(value)
    if L.is_label_value(value):
        assert out == value


def test_long_label_values_differ():
    assert L.label_value("a" * 70 + "1") != L.label_value("a" * 70 + "2")


def test_run_job_labels():
    labels = L.run_job_labels("r" * 100, "pipe", L.COMPONENT_STEP, step="asr", step_index=1, item_index=7)
    assert labels[L.MANAGED_BY] == "mmif-operator"
    assert labels[L.PART_OF] == "mmif-operator"
    assert labels[L.COMPONENT] == "step"
    assert labels[L.RUN] == L.label_value("r" * 100)
    assert labels[L.STEP_INDEX] == "1" and labels[L.ITEM_INDEX] == "7"
    assert all(L.is_label_value(v) for v in labels.values())
    assert L.run_selector("r" * 100).items() <= labels.items()
