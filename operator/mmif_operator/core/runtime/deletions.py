"""Deletes of finished Jobs, beside a run's loop rather than inside its pass.

A pass deletes only the Jobs its status patch has just accounted for, so no outcome is lost
whenever a delete happens. Awaiting those deletes inside the pass made every item that finished
meanwhile wait for them (one or more round trips on a busy API server) before its next step's Job
was created. The loop hands them here instead and plans again at once; the next passes skip the
names still being deleted. A failed delete is only logged and forgotten: the Job is still in the
index, so a later pass plans its delete again. Nothing here is needed after a restart: a new
process plans the same deletes from the status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any

log = logging.getLogger(__name__)

MAX_CONCURRENT_DELETES = 16


class BackgroundDeletes:
    def __init__(
        self, delete: Callable[..., Awaitable[Any]], *, limit: int = MAX_CONCURRENT_DELETES, label: str = ""
    ):
        self._delete = delete
        self._sem = asyncio.Semaphore(limit)
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.label = label
        self.failures = 0

    def submit(self, names: Iterable[str], uids: Mapping[str, str | None] | None = None) -> int:
        """Start deleting `names` (those not being deleted already); returns how many started.
        `uids`: name -> the Job's uid, handed to the delete callable (`delete(name, uid)`) so it
        deletes only that object; names without one are deleted by name (`delete(name)`)."""
        started = 0
        for name in names:
            if name in self._tasks:
                continue
            task = asyncio.ensure_future(self._one(name, (uids or {}).get(name)))
            self._tasks[name] = task
            task.add_done_callback(partial(self._forget, name))
            started += 1
        return started

    def _forget(self, name: str, _task: asyncio.Task[Any]) -> None:
        self._tasks.pop(name, None)

    async def _one(self, name: str, uid: str | None) -> None:
        async with self._sem:
            try:
                await (self._delete(name, uid) if uid else self._delete(name))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - planned again by a later pass
                self.failures += 1
                log.warning("%sdeleting Job %s: %s", self.label, name, e)

    def pending(self) -> set[str]:
        """The names being deleted now."""
        return set(self._tasks)

    def take_failures(self) -> int:
        """Failed deletes since the last call."""
        count, self.failures = self.failures, 0
        return count

    async def drain(self) -> None:
        """Until every delete started so far has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    def cancel(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)
