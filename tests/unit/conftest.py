"""Fixtures shared by more than one unit-test module."""

from __future__ import annotations

import contextlib

import pytest


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
