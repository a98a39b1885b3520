"""Queueing a Project's notifications (`DisposalNotice`, `ProjectClosed`, `SharedRecords`) in
its `status.notifications`, the outbox a run has (notifications/outbox.py); the Project's
delivery daemon (notifications/handler.py `notify_project_loop`) sends them.

Restart-safe and at most once per occurrence: each occurrence has a key of its own (planning.py
`ProjectNote.key`), so its delivery ids are fixed (`outbox.queue_once`); the outbox is written
with a status patch conditional on the version read (a conflict with the delivery daemon reads
again), *before* what announced it is recorded elsewhere (a run's notice annotation, the
project's phase): a crash in between queues the same occurrence again, which adds nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from mmif_operator.core.kube.ops import Kube, KubeError
from mmif_operator.kinds.project.model import PLURAL
from mmif_operator.kinds.project.planning import ProjectNote
from mmif_operator.notifications import outbox
from mmif_operator.notifications.handler import PROJECT_NOTIFY_WAKERS

log = logging.getLogger(__name__)
MAX_CONFLICTS = 5


async def queue(kube: Kube, name: str, note: ProjectNote, *, now: datetime | None = None) -> bool:
    """Queue `note` in Project `name`'s outbox; True when a delivery was added. Raises KubeError
    when the outbox cannot be written (the caller then does not record what it announced)."""
    now = now or datetime.now(UTC)
    for _ in range(MAX_CONFLICTS):
        project = await kube.get_custom(PLURAL, "", name)
        if project is None:
            return False
        meta = project.get("metadata") or {}
        box = outbox.queue_once(
            (project.get("status") or {}).get("notifications"),
            [note],
            outbox.parse_targets(project.get("spec")),
            uid=f"{meta.get('uid')}/{note.key}",
            phase=note.phase,
            now=now,
        )
        if box is None:
            return False
        try:
            await kube.patch_status(
                PLURAL, "", name, {"notifications": box}, resource_version=meta.get("resourceVersion")
            )
        except KubeError as e:
            if e.conflict:
                continue
            raise
        PROJECT_NOTIFY_WAKERS.wake(("", name))
        log.info("project %s: %s queued (%s)", name, note.event.value, note.key)
        return True
    raise KubeError(409, "Conflict", f"queueing {note.event.value}: {MAX_CONFLICTS} conflicts in a row")
