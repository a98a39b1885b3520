"""Wake-ups of per-object reconcile loops: one asyncio.Event per (namespace, name).

A loop (a kopf daemon) registers its key, then waits for a wake-up, a timer (the plan's requeue)
or its stop flag. Watch events (a child Job changed, the spec changed) wake it; wakes that come
while it reconciles are kept, so it runs once more. A short debounce after a wake batches the
burst of events that usually follows (a dozen Jobs finishing together is one reconcile). A wake
may also ask the loop to read its object again (`refresh`: the spec changed) rather than reuse
the copy its last pass left.

Nothing here is needed for correctness: every pass recomputes from the cluster, and a lost wake-up
only delays the next pass until the timer.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

DEBOUNCE_SECONDS = 0.15
# Runs: wake-ups come only from meaningful changes (a Job finished or vanished, the spec), and a
# pass in progress already batches what arrives meanwhile; a finished step waits for no timer.
RUN_DEBOUNCE_SECONDS = 0.01

Key = tuple[str, str]  # (namespace, name or label value)


class Wake(enum.Enum):
    WOKEN = "woken"
    TIMEOUT = "timeout"
    STOPPED = "stopped"


@dataclass(eq=False)
class Waker:
    """The wake-up flag of one loop, and a few facts other handlers select loops by."""

    key: Key
    tags: dict[str, Any] = field(default_factory=dict)
    event: asyncio.Event = field(default_factory=asyncio.Event)
    refresh: bool = False

    def wake(self, refresh: bool = False) -> None:
        self.refresh = self.refresh or refresh
        self.event.set()

    def take_refresh(self) -> bool:
        """Whether a wake asked to read the object again since the last call."""
        refresh, self.refresh = self.refresh, False
        return refresh

    def clear(self) -> None:
        self.event.clear()

    @property
    def woken(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None, stopped: Any = None) -> Wake:
        """Until woken, `timeout` seconds (None: no timer), or `stopped` (kopf's DaemonStopped,
        anything with `is_set()` and an awaitable `wait()`) is set."""
        if stopped is not None and stopped.is_set():
            return Wake.STOPPED
        if self.event.is_set():
            return Wake.WOKEN
        if timeout is not None and timeout <= 0:
            return Wake.TIMEOUT
        waiters: set[asyncio.Task[Any]] = {asyncio.ensure_future(self.event.wait())}
        stop_task = None
        if stopped is not None:
            stop_task = asyncio.ensure_future(_wait_flag(stopped))
            waiters.add(stop_task)
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        if stopped is not None and stopped.is_set():
            return Wake.STOPPED
        if self.event.is_set():
            return Wake.WOKEN
        return Wake.TIMEOUT


async def _wait_flag(stopped: Any) -> None:
    await stopped.wait()


class Wakers:
    """The registry: key -> the Waker of the loop running for it."""

    def __init__(self) -> None:
        self._by_key: dict[Key, Waker] = {}

    def register(self, key: Key, **tags: Any) -> Waker:
        """A fresh Waker for `key` (replacing a stale one left by an earlier loop)."""
        waker = Waker(key, dict(tags))
        self._by_key[key] = waker
        return waker

    def unregister(self, waker: Waker) -> None:
        if self._by_key.get(waker.key) is waker:
            del self._by_key[waker.key]

    def get(self, key: Key) -> Waker | None:
        return self._by_key.get(key)

    def wake(self, key: Key, refresh: bool = False) -> bool:
        """Wake the loop of `key`; False when none runs."""
        waker = self._by_key.get(key)
        if waker is None:
            return False
        waker.wake(refresh)
        return True

    def wake_where(self, predicate: Callable[[Waker], bool]) -> int:
        woken = 0
        for waker in list(self._by_key.values()):
            if predicate(waker):
                waker.wake()
                woken += 1
        return woken

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Waker]:
        return iter(list(self._by_key.values()))


def backoff(failures: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds before retrying after `failures` consecutive failed passes: 1, 2, 4, ... 60."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2 ** (failures - 1))
