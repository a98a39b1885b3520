"""The ConfigMaps runner pods read (core/runner_input.py): created before the Jobs that mount
them, counted as created only when ours, deleted once read, and only when ours."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mmif_operator.core.kube.ops import Kube, KubeError, NameConflict, owned_by

log = logging.getLogger(__name__)


async def create_config_maps(
    kube: Kube,
    bodies: Iterable[Mapping[str, Any]],
    owner: Mapping[str, Any],
    what: str,
    post_event: Callable[[Mapping[str, Any], str, str, str], None],
) -> bool:
    """Create each ConfigMap; False when one could not be created (its Jobs wait for the next
    pass). An existing one counts only when its controller is `owner` (`Kube.create`). One that
    is not (its name holds the owner's UID, so it was made by someone else on purpose) gets a
    Warning Event, and the Jobs go ahead: the runner refuses its content (another owner's UID, or
    no such key), so the run fails with that reason on its condition, never waits."""
    ok = True
    for body in bodies:
        name = body["metadata"]["name"]
        try:
            await kube.create(body)  # True: created; False: ours already
        except NameConflict as e:
            log.warning("%s: %s", what, e.message)
            post_event(owner, "Warning", "NameConflict", f"{e.message}; the runner will refuse it")
        except KubeError as e:
            log.warning("%s: creating ConfigMap %s: %s", what, name, e)
            post_event(owner, "Warning", "CreateFailed", f"ConfigMap {name} could not be created: {e}")
            ok = False
    return ok


async def delete_config_maps(
    kube: Kube, namespace: str, names: Iterable[str], owner_uid: str, what: str
) -> None:
    """Delete the runner inputs a plan says are read, only those `owner_uid` controls (bound to
    the uid read, as a precondition); 404 = gone. A failure only leaves them to the garbage
    collector, which deletes them with their owner."""
    for config_map in names:
        try:
            existing = await kube.get("ConfigMap", namespace, config_map)
            if existing is None or not owned_by(existing, owner_uid):
                continue  # gone, or someone else's: never ours to delete
            await kube.delete(
                "ConfigMap", namespace, config_map, uid=(existing.get("metadata") or {}).get("uid")
            )
        except KubeError as e:
            log.warning("%s: deleting ConfigMap %s: %s", what, config_map, e)
