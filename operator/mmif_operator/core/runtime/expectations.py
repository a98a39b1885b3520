"""Jobs a run's loop created that its Job index may not show yet.

kopf's watch shows a created Job some milliseconds (seconds, on a busy API server) after the
create returned. A pass planned in between sees the item in flight without its Job and would
create it again: a 409, one more write, and with a bounded number of creates per pass, a pass
that re-creates the previous pass's Jobs instead of the next ones. The loop remembers what it
created and skips those names until the index shows them. Only an optimisation, never needed for
correctness: after `ttl` seconds, or in a new process, a Job still missing is created again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

TTL_SECONDS = 30.0


class RecentCreates:
    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._at: dict[str, float] = {}

    def note(self, names: Iterable[str]) -> None:
        now = self.clock()
        for name in names:
            self._at[name] = now

    def pending(self, observed: Iterable[str]) -> set[str]:
        """The names created less than `ttl` ago that `observed` (the index) does not show yet;
        forgets the others."""
        seen = set(observed)
        oldest = self.clock() - self.ttl
        self._at = {n: t for n, t in self._at.items() if n not in seen and t >= oldest}
        return set(self._at)

    def __len__(self) -> int:
        return len(self._at)
