"""The ConfigMaps runner pods read (builders/runner_input.py): created before the Jobs that mount
them, counted as created only when ours, deleted once read."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..k8s.ops import Kube, KubeError, owned_by

log = logging.getLogger(__name__)


async def create_config_maps(kube: Kube, bodies: Iterable[Mapping[str, Any]], owner: Mapping[str, Any], what: str,
                             post_event: Callable[[Mapping[str, Any], str, str, str], None]) -> bool:
    """Create each ConfigMap; False when one could not be created (its Jobs wait for the next
    pass). A 409 counts as ours only when the existing ConfigMap's controller is `owner` (by UID).
    One that is not (its name holds the owner's UID, so it was made by someone else on purpose)
    gets a Warning Event, and the Jobs go ahead: the runner refuses its content (another owner's
    UID, or no such key), so the run fails with that reason on its condition, never waits."""
    uid = (owner.get("metadata") or {}).get("uid") or ""
    ok = True
    for body in bodies:
        name = body["metadata"]["name"]
        try:
            if await kube.create(body):
                continue
            existing = await kube.get("ConfigMap", body["metadata"]["namespace"], name)
        except KubeError as e:
            log.warning("%s: creating ConfigMap %s: %s", what, name, e)
            post_event(owner, "Warning", "CreateFailed", f"ConfigMap {name} could not be created: {e}")
            ok = False
            continue
        if existing is not None and not owned_by(existing, uid):
            log.warning("%s: ConfigMap %s exists and is not ours", what, name)
            post_event(owner, "Warning", "NameConflict", f"ConfigMap {name} exists and is not owned by this "
                       f"object (uid {uid}); the runner will refuse it")
    return ok


async def delete_config_maps(kube: Kube, namespace: str, names: Iterable[str], what: str) -> None:
    """Delete the runner inputs a plan says are read (404 = gone); a failure only leaves them to
    the garbage collector, which deletes them with their owner."""
    for config_map in names:
        try:
            await kube.delete("ConfigMap", namespace, config_map)
        except KubeError as e:
            log.warning("%s: deleting ConfigMap %s: %s", what, config_map, e)
