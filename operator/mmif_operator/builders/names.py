"""Deterministic names of the objects the operator creates.

Every name is a valid DNS-1123 label of at most 63 characters, because Job names also become
label values (`job-name`, `batch.kubernetes.io/job-name`) and Service names must be labels.
When a base name is too long (or had to be cleaned), it is truncated and a short hash of the
*whole* base name is appended, so two different long names never map to the same child name,
and the same input always gives the same name.
"""
from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
HASH_LEN = 8

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_INVALID = re.compile(r"[^-a-z0-9]+")


def short_hash(text: str, length: int = HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def is_dns1123_label(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_DNS1123_LABEL.match(name))


def is_dns1035_label(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_DNS1035_LABEL.match(name))


def _clean(text: str) -> str:
    """Lower-case, invalid runs ('.', '_', ...) become '-', no leading/trailing '-'."""
    return _INVALID.sub("-", text.lower()).strip("-")


def fit_name(base: str, suffix: str = "", max_len: int = MAX_NAME) -> str:
    """`base + suffix` as a DNS-1123 label of at most `max_len` characters.

    `suffix` (e.g. "-00012-3") is kept verbatim; it must itself be valid label characters.
    If `base` is clean and short enough it is used as is; otherwise it is cleaned, truncated and
    followed by "-" and a hash of the original `base`.
    """
    cleaned = _clean(base)
    if cleaned == base and base and len(base) + len(suffix) <= max_len:
        return base + suffix
    digest = short_hash(base)
    room = max_len - len(suffix) - HASH_LEN - 1
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room in a {max_len}-character name")
    head = cleaned[:room].rstrip("-")
    name = f"{head}-{digest}{suffix}" if head else f"{digest}{suffix}"
    if not _DNS1123_LABEL.match(name):  # e.g. a suffix ending in "-"
        raise ValueError(f"cannot make a DNS-1123 label of {base!r} + {suffix!r}")
    return name


def step_job_name(run: str, item_index: int, step_index: int) -> str:
    """`<run>-<item:05d>-<step index>`, e.g. `run-1-00012-3`."""
    return fit_name(run, f"-{item_index:05d}-{step_index}")


def prepare_job_name(run: str) -> str:
    return fit_name(run, "-prepare")


def manifest_job_name(run: str) -> str:
    return fit_name(run, "-manifest")


def _incarnation(uid: str) -> str:
    """8 characters of an object's UID: a child named with them is never the child of a deleted
    object of the same name (one the garbage collector has not taken yet)."""
    return (_clean(uid).replace("-", "") or "0" * HASH_LEN)[:HASH_LEN]


def items_config_map_name(run: str, uid: str) -> str:
    """`<run>-items-<uid[:8]>`: the ConfigMap holding a run's inline items for its prepare Job."""
    return fit_name(run, f"-items-{_incarnation(uid)}")


def states_config_map_name(run: str, uid: str) -> str:
    """`<run>-states-<uid[:8]>`: the ConfigMap holding a run's final item states for its manifest Job."""
    return fit_name(run, f"-states-{_incarnation(uid)}")


def analysis_states_config_map_name(analysis: str, uid: str) -> str:
    """`<analysis job>-astates-<uid[:8]>`: the item states for an AnalysisJob's manifest Job (the
    `a` keeps it apart from a run's `-states` of the same name)."""
    return fit_name(analysis, f"-astates-{_incarnation(uid)}")


def analysis_job_name(analysis: str, item_index: int) -> str:
    """`<analysis job>-a<item:05d>`, e.g. `run-1-ner-a00012` (the `a` keeps it apart from a run's
    step Jobs, `<run>-<item>-<step>`)."""
    return fit_name(analysis, f"-a{item_index:05d}")


def analysis_manifest_job_name(analysis: str) -> str:
    return fit_name(analysis, "-amanifest")


def triggered_analysis_name(run: str, analysis: str) -> str:
    """`<run>-<analysis name>`: the AnalysisJob a run creates for one of its Pipeline's analyses."""
    return fit_name(f"{run}-{analysis}")


def app_service_name(pipeline: str, step: str) -> str:
    """`<pipeline>-<step>`: the Deployment and Service of a Service-mode step.

    Service names must be DNS-1035 labels (start with a letter), so a base starting with a
    digit gets an `app-` prefix and a hash (as any changed name does).
    """
    base = f"{pipeline}-{step}"
    if base[:1].isalpha():
        return fit_name(base)
    head = _clean(base)[: MAX_NAME - len("app-") - HASH_LEN - 1].rstrip("-")
    return f"app-{head}-{short_hash(base)}" if head else f"app-{short_hash(base)}"
