"""Kubernetes Events on our objects, posted through kopf (core/v1 Events, created in the
background by kopf's poster: never blocks a reconcile, failures are only logged)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

log = logging.getLogger(__name__)
MAX_MESSAGE = 1024


def object_ref(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an object kopf needs to address an Event to it."""
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")},
    }


def post(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post one Event (`type_` Normal or Warning) about `obj`."""
    text = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
    try:
        # kopf.event reads any mapping (apiVersion, kind, metadata); its annotation names only its Body view.
        kopf.event(object_ref(obj), type=type_, reason=reason, message=text)  # type: ignore[arg-type]
    except LookupError:  # outside kopf's operator context (tests, tools)
        log.info("event %s %s: %s", type_, reason, text)
