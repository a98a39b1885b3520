"""The console's settings, from the environment (all optional; the Deployment sets none)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PORT = "MMIF_CONSOLE_PORT"
ENV_RECHECK = "MMIF_CONSOLE_RECHECK_SECONDS"
ENV_HEARTBEAT = "MMIF_CONSOLE_HEARTBEAT_SECONDS"
ENV_MAX_ROWS = "MMIF_CONSOLE_MAX_ITEM_ROWS"


@dataclass(frozen=True)
class Config:
    port: int = 8080
    # How often an open event stream re-checks, with the person's token, that they may still list
    # the namespace's runs (a revoked RoleBinding stops their stream within this time).
    recheck_seconds: float = 60.0
    # A comment line this often keeps idle streams open through proxies and `kubectl port-forward`.
    heartbeat_seconds: float = 15.0
    # The run page's item table shows at most this many items (status holds every item's state
    # compressed; the manifest on the volume lists them all). 1000 = the most inline items a run has.
    max_item_rows: int = 1000
    # An EventSource waits this long before reconnecting (the `retry:` field of the stream).
    retry_ms: int = 2000
    # A subscriber whose queue is this full is dropped (its browser reconnects and gets a snapshot).
    queue_size: int = 256


def from_env(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    base = Config()
    return Config(
        port=int(env.get(ENV_PORT, base.port)),
        recheck_seconds=float(env.get(ENV_RECHECK, base.recheck_seconds)),
        heartbeat_seconds=float(env.get(ENV_HEARTBEAT, base.heartbeat_seconds)),
        max_item_rows=int(env.get(ENV_MAX_ROWS, base.max_item_rows)),
    )
