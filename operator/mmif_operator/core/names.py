"""Deterministic names of the objects the operator creates, injective by construction.

Every name is a valid DNS-1123 label of at most 63 characters, because Job names also become
label values (`job-name`, `batch.kubernetes.io/job-name`) and Service names must be labels.

Two forms, which can never be equal to each other:

* **as is**: `<owner><suffix>` when the owner's name is already a clean label, fits, and has no
  `--` (e.g. `run-1-00012-3`). Different owners give different names: the suffix is fixed.
* **hashed**: `<cleaned, cut head>--<hash of the whole owner name><suffix>` otherwise (too long,
  dots, a `--` of its own). Only hashed names contain `--` (the head has none, suffixes have
  none, and an as-is name has none), so an as-is name never equals a hashed one, and two hashed
  names are equal only if their 8-hex-digit hashes (sha256) are: an accidental collision needs
  tens of thousands of long names in one namespace, and a deliberate one ~2^32 tries.

The suffixes of the kinds end in different last tokens (`-<item>-<step>` digits, `-prepare`,
`-manifest`, `-publish`, `-a<item>`, `-amanifest`), so a run's Jobs and an AnalysisJob's Jobs of one
namespace never share a name either. App objects of Service-mode steps (Deployment, Service,
NetworkPolicy) are always hashed, over the (pipeline, step) pair: `col` + `a-b` and `col-a` +
`b` differ. A name is injective, not a claim: an object found under it is used only when it is
ours (core/ownership.py).
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
HASH_LEN = 8
HASH_MARK = "--"  # only hashed names contain it

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_INVALID = re.compile(r"[^-a-z0-9]+")
_DASHES = re.compile(r"-{2,}")


def short_hash(text: str, length: int = HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def is_dns1123_label(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_DNS1123_LABEL.match(name))


def is_dns1035_label(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_DNS1035_LABEL.match(name))


def _clean(text: str) -> str:
    """Lower-case, invalid runs ('.', '_', ...) and runs of '-' become one '-', no leading or
    trailing '-'."""
    return _DASHES.sub("-", _INVALID.sub("-", text.lower())).strip("-")


def _hashed(head_source: str, digest_source: str, suffix: str, max_len: int, *, letter: bool = False) -> str:
    """`<head>--<hash of digest_source><suffix>`, the head cut to fit (`letter`: the name must
    start with a letter, as DNS-1035 labels do)."""
    if HASH_MARK in suffix or (suffix and not suffix.startswith("-")):
        raise ValueError(f"suffix {suffix!r} must start with '-' and have no {HASH_MARK!r}")
    head = _clean(head_source) or "x"
    if letter and not head[:1].isalpha():
        head = f"app-{head}"
    room = max_len - len(suffix) - HASH_LEN - len(HASH_MARK)
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room in a {max_len}-character name")
    head = head[:room].rstrip("-")
    name = f"{head}{HASH_MARK}{short_hash(digest_source)}{suffix}"
    if not _DNS1123_LABEL.match(name):
        raise ValueError(f"cannot make a DNS-1123 label of {head_source!r} + {suffix!r}")
    return name


def fit_name(base: str, suffix: str = "", max_len: int = MAX_NAME) -> str:
    """`base + suffix` as a DNS-1123 label of at most `max_len` characters.

    `suffix` (e.g. "-00012-3") is kept verbatim; it must start with '-' and be valid label
    characters without '--'. If `base` is a clean label without '--' and short enough it is used
    as is; otherwise the hashed form (see the module docstring).
    """
    if base and _DNS1123_LABEL.match(base) and HASH_MARK not in base and len(base) + len(suffix) <= max_len:
        if HASH_MARK in suffix or (suffix and not suffix.startswith("-")):
            raise ValueError(f"suffix {suffix!r} must start with '-' and have no {HASH_MARK!r}")
        return base + suffix
    return _hashed(base, base, suffix, max_len)


def step_job_name(run: str, item_index: int, step_index: int) -> str:
    """`<run>-<item:05d>-<step index>`, e.g. `run-1-00012-3`."""
    return fit_name(run, f"-{item_index:05d}-{step_index}")


def prepare_job_name(run: str) -> str:
    return fit_name(run, "-prepare")


def manifest_job_name(run: str) -> str:
    return fit_name(run, "-manifest")


def publish_job_name(run: str) -> str:
    """`<run>-publish`: the Job publishing a reviewed run's outputs."""
    return fit_name(run, "-publish")


def wip_job_name(run: str, action: str) -> str:
    """`<run>-wip-delete` / `<run>-wip-archive`: the Job disposing of a finished run's folder."""
    return fit_name(run, f"-wip-{action.lower()}")


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


def app_logs_config_map_name(run: str, uid: str) -> str:
    """`<run>-applogs-<uid[:8]>`: the ConfigMap keeping the app logs of a run's failed item-steps
    (core/applogs.py)."""
    return fit_name(run, f"-applogs-{_incarnation(uid)}")


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


def run_pool_name(run: str, step: str) -> str:
    """`<run>-<step>--<hash>-pool`: the Deployment, Service and NetworkPolicy of a run's pool of
    a `warm` Job-mode step, e.g. `run-1-asr--3b9d0c1e-pool`. Hashed over the pair (marked as a
    pool's), so it never equals a Pipeline's app name (app_service_name) in the namespace."""
    return _hashed(f"{run}-{step}", f"pool:{run}/{step}", "-pool", MAX_NAME, letter=True)


def app_service_name(pipeline: str, step: str) -> str:
    """`<pipeline>-<step>--<hash of (pipeline, step)>`: the Deployment, Service and NetworkPolicy
    of a Service-mode step, e.g. `col-a-b--1c0f9e2a`.

    Always hashed over the pair, so `col` + `a-b` and `col-a` + `b` differ; a DNS-1035 label
    (Service names start with a letter: a head starting with a digit gets `app-`).
    """
    return _hashed(f"{pipeline}-{step}", f"{pipeline}/{step}", "", MAX_NAME, letter=True)
