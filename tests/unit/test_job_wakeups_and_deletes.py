"""Which Job events wake a loop (core/observed.changes_plan, core/runtime/jobs.JobSummaries), and
the deletes a run's loop makes beside its passes (core/runtime/deletions.BackgroundDeletes)."""

from __future__ import annotations

import asyncio

from mmif_operator.core.observed import JobKind, JobState, ObservedJob, changes_plan
from mmif_operator.core.runtime.deletions import BackgroundDeletes
from mmif_operator.core.runtime.jobs import JobSummaries


def job(uid="u1", condition=None):
    body = {
        "metadata": {
            "name": "run-1-00000-0",
            "namespace": "ns",
            "uid": uid,
            "labels": {
                "app.kubernetes.io/component": "step",
                "mmif.dev/run": "run-1",
                "mmif.dev/item-index": "0",
                "mmif.dev/step-index": "0",
            },
        },
        "status": {"active": 1},
    }
    if condition:
        body["status"] = {"conditions": [{"type": condition, "status": "True", "reason": "R"}]}
    return body


def test_changes_plan():
    active = ObservedJob("j", JobKind.STEP, item=0, step=0)
    done = ObservedJob("j", JobKind.STEP, JobState.SUCCEEDED, item=0, step=0)
    failed = ObservedJob("j", JobKind.STEP, JobState.FAILED, item=0, step=0, reason="R")
    assert not changes_plan(None, active)  # just created: the loop knows
    assert not changes_plan(active, active)  # pod counts changed
    assert changes_plan(active, done) and changes_plan(None, done) and changes_plan(done, failed)
    assert not changes_plan(done, done)  # more status after the outcome
    assert changes_plan(active, None)  # deleted before it finished: re-planned
    assert not changes_plan(done, None)  # the loop deleted it after recording it
    assert changes_plan(None, None)  # deleted, never seen: look anyway


def test_job_summaries_wake_once_per_outcome():
    seen = JobSummaries()
    wakes = [
        seen.update(job(), deleted=False),  # ADDED
        seen.update(job(), deleted=False),  # pod ready
        seen.update(job(condition="SuccessCriteriaMet"), deleted=False),
        seen.update(job(condition="Complete"), deleted=False),
        seen.update(job(condition="Complete"), deleted=True),
    ]
    assert wakes == [False, False, True, False, False] and len(seen) == 0
    assert seen.update(job("u2"), deleted=False) is False
    assert seen.update(job("u2"), deleted=True) is True and len(seen) == 0  # deleted unfinished


def test_background_deletes_skip_names_in_flight_and_count_failures():
    async def scenario():
        release = asyncio.Event()
        calls: list[str] = []

        async def delete(name):
            calls.append(name)
            await release.wait()
            if name == "bad":
                raise RuntimeError("forbidden")

        deletes = BackgroundDeletes(delete, limit=2)
        assert deletes.submit(["a", "b", "bad"]) == 3
        assert deletes.submit(["a", "c"]) == 1  # "a" is being deleted already
        await asyncio.sleep(0)
        assert len(calls) == 2 and deletes.pending() == {"a", "b", "bad", "c"}  # at most 2 at once
        release.set()
        await deletes.drain()
        assert sorted(calls) == ["a", "b", "bad", "c"] and len(deletes) == 0
        assert deletes.take_failures() == 1 and deletes.take_failures() == 0
        assert deletes.submit(["bad"]) == 1  # planned again: tried again
        await deletes.drain()

    asyncio.run(scenario())
