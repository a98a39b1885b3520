"""The app container's log of a failed item-step, kept after its pod and Job are gone.

In Job mode the app is the step pod's sidecar container `app`; step pods have no ServiceAccount
token, so the runner cannot read that log itself. The operator does, where it reaps the failed
step (core/runtime/applogs.py, before the plan accounts for the failure and so before the Job is
deleted): the tail of the `app` container's log of the Job's newest pod, read through the API
(pods/log), kept in **one ConfigMap per run** (`<run>-applogs-<uid[:8]>`, owned by the run, the
standard labels), **one key per item-step** (`<item:05d>-<step index>.log`).

Bounds, so that a 10,000-item batch that all fails cannot blow up API writes or object size:
- `TAIL_BYTES` (16 KiB) per item-step: the end of the log, where an app's error and traceback are;
  read as the last `TAIL_LINES` lines, then cut to `TAIL_BYTES` at a line start;
- `MAX_KEPT` (40) item-steps per run, the first to fail: 40 x 16 KiB = 640 KiB, well inside the
  1 MiB a ConfigMap holds. Past it no log is read and nothing is written (one ConfigMap read per
  pass that meets new failures): at most 40 writes per run for its app logs, whatever its size.
Successful item-steps are not kept (their logs hold nothing the result does not say); a
Service-mode step's app is a long-lived Deployment whose log is the Deployment's.

A warm Job-mode step's app runs in the run's pool (kinds/pipelinerun/pools.py), which serves every
item of the run and is removed once they are done: for its failed item-step the operator keeps
the tail of each pool pod's `app` log (at most `MAX_POOL_PODS` pods, `TAIL_BYTES` in all), read
when the failure is seen, so lines of other items the pool served then may be among them (each
part says which pod it is from). Only pods of the pool's own ReplicaSets count (`pool_pods`).

Idempotent: a key is written once (a pass skips item-steps whose key exists), and a pass that
wrote it and then lost its status patch (or the process) finds it there and writes nothing again.
All pure here: names, keys, the choice of what to keep, the tail, the ConfigMap body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmif_operator.core import labels as L
from mmif_operator.core import names

#: the end of the app's log kept per failed item-step
TAIL_BYTES = 16 * 1024
#: lines asked of the API server (pods/log `tailLines`) before the cut to TAIL_BYTES
TAIL_LINES = 400
#: failed item-steps whose app log a run keeps (the first to fail)
MAX_KEPT = 40
COMPONENT = "app-logs"
#: the pool pods read for a failed item-step of a warm step
MAX_POOL_PODS = 4
POOL_HEADER = "[the app's log in pool pod {}, which serves every item of the run: lines of other items may be among these]\n"
CUT = "[... earlier lines not kept: the last {} bytes of the app's log follow]\n"
_KEY = re.compile(r"^(\d{5,})-(\d+)\.log$")


def config_map_name(run: str, uid: str) -> str:
    return names.app_logs_config_map_name(run, uid)


def key(item: int, step: int) -> str:
    """The ConfigMap key of item `item`'s step `step` (indexes), e.g. `00012-1.log`."""
    return f"{item:05d}-{step}.log"


def parse_key(k: str) -> tuple[int, int] | None:
    m = _KEY.match(k)
    return (int(m.group(1)), int(m.group(2))) if m else None


def to_keep(
    failed: Iterable[tuple[int, int]], kept: Iterable[str], limit: int = MAX_KEPT
) -> list[tuple[int, int]]:
    """Of the newly failed item-steps `failed` (item, step), those to read and keep now: not
    kept yet, in (item, step) order, while the run keeps fewer than `limit`."""
    have = {parse_key(k) for k in kept} - {None}
    room = max(0, limit - len(have))
    return sorted({f for f in failed if f not in have})[:room]


def tail(text: str, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of `text` (UTF-8), cut at a line start, with one line saying so."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    marker = CUT.format(limit)
    rest = data[-(limit - len(marker)) :]
    newline = rest.find(b"\n")
    if 0 <= newline < len(rest) - 1:
        rest = rest[newline + 1 :]
    return marker + rest.decode("utf-8", errors="ignore")


def config_map(
    run: str, namespace: str, uid: str, owner_reference: Mapping[str, Any], data: Mapping[str, str]
) -> dict[str, Any]:
    """The run's app-log ConfigMap holding `data` (key -> kept log)."""
    labels = L.common_labels(COMPONENT, instance=run)
    labels[L.RUN] = L.label_value(run)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(run, uid),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [dict(owner_reference)],
        },
        "data": dict(data),
    }


def pool_pods(pods: Iterable[Mapping[str, Any]], pool: str, limit: int = MAX_POOL_PODS) -> list[str]:
    """The names of the pods of Deployment `pool` (a run's app pool) among `pods` (listed by the
    pool's labels): those a ReplicaSet of that Deployment (`<pool>-<hash>`) controls, by name,
    at most `limit`. A pod someone labelled alike is not the pool's."""
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        owner = next((o for o in meta.get("ownerReferences") or () if o.get("controller")), None)
        if (
            owner is not None
            and owner.get("kind") == "ReplicaSet"
            and str(owner.get("name") or "").startswith(f"{pool}-")
            and meta.get("name")
        ):
            out.append(str(meta["name"]))
    return sorted(out)[:limit]


def pool_text(logs: Sequence[tuple[str, str]], limit: int = TAIL_BYTES) -> str:
    """The kept text of a warm step's failure: each pool pod's (name, log), its tail, under a
    line naming the pod; `limit` bytes in all."""
    if not logs:
        return ""
    each = limit // len(logs)
    parts = []
    for pod, text in logs:
        header = POOL_HEADER.format(pod)
        parts.append(
            header
            + tail(text or "(the app wrote nothing to its log)\n", max(256, each - len(header.encode())))
        )
    return "".join(parts)
