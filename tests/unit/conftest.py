"""Fixtures shared by more than one unit-test module."""

from __future__ import annotations

import contextlib
import pathlib
from dataclasses import dataclass

import pytest

from mmif_operator.runner.items import DocumentSpec, Item
from mmif_operator.runner.source import build_source
from tests.apps.harness import load_app


@pytest.fixture(scope="module")
def apps():
    """One in-process server per test app: name -> (url, counting wrapper). Used by
    test_runner_step and test_runner_analysis (here, so neither imports it from the other)."""
    from tests.unit.test_runner_step import Counting, harness

    with contextlib.ExitStack() as stack:
        out = {}
        for name in ("textgen", "timeframes", "failer", "sleeper"):
            wrapped = Counting(harness.wsgi_app(name))
            out[name] = (stack.enter_context(harness.serve(wrapped)), wrapped)
        yield out


@dataclass(frozen=True)
class AppChain:
    workspace: pathlib.Path  # holds a.mp4
    source: str  # the item's source MMIF
    steps: list[tuple[str, str]]  # (step name, that step's MMIF), in order


@pytest.fixture(scope="module")
def app_chain(tmp_path_factory) -> AppChain:
    """A two-step chain of the real test apps over `a.mp4` of a workspace: textgen ("text"), then
    timeframes ("frames"). Used by test_records and test_runner_publish."""
    workspace = tmp_path_factory.mktemp("ws")
    (workspace / "a.mp4").write_bytes(b"not really a video")
    item = Item(index=0, name="a", documents=(DocumentSpec("a.mp4", "video/mp4"),))
    source = build_source(item, str(workspace)).serialize()
    first = load_app("textgen").annotate(source)
    second = load_app("timeframes").annotate(first)
    return AppChain(workspace, source, [("text", first), ("frames", second)])
