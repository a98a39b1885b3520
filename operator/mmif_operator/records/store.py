"""The record store: a folder on a volume of its own that only the publisher writes.

    <store>/objects/<aa>/<sha256>.mmif     the record's MMIF, byte-identical to the run's final.mmif
    <store>/lineage/<aa>/<sha256>.json     its lineage document (records/lineage.py)
    <store>/index.jsonl                    one line per record: what search reads

Content-addressed: a record's id is `sha256:<hex>` of its MMIF. Never overwritten: each file is
written to a temporary name, flushed, then hard-linked to its final name (`link` fails when the
name exists, where `rename` would replace it) and made read-only. A record that exists already
with the same bytes is the same record (a retried publish, or another run that made identical
MMIF); its lineage is kept as first written. Index lines are appended under an exclusive lock,
once per record (a marker file beside its lineage says it is indexed), so a retried publish adds
no second line; search reads one entry per id even if a crash left two.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

INDEX = "index.jsonl"
LOCK = ".index.lock"


class RecordConflict(RuntimeError):
    """A file at a record's name holds other bytes than the record: it is left as it is."""


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class RecordUnavailable(LookupError):
    """A record cannot be read: the store does not hold it, or its bytes are not its sha256."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


R_NOT_FOUND = "RecordNotFound"
R_CORRUPT = "RecordCorrupt"


def read(root: str, record_id: str) -> bytes:
    """The MMIF of record `record_id` (`sha256:<hex>`), checked against its sha256 (a store
    mounted read-only can still be damaged): RecordUnavailable when it is missing or damaged."""
    sha = record_id.removeprefix("sha256:")
    path = os.path.join(root, object_path(sha))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise RecordUnavailable(
            R_NOT_FOUND, f"record {record_id} is not in the project's record store"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha:
        raise RecordUnavailable(
            R_CORRUPT, f"record {record_id} in the record store has sha256 {actual}: it is damaged"
        )
    return data


def object_path(sha: str) -> str:
    return os.path.join("objects", sha[:2], f"{sha}.mmif")


def lineage_path(sha: str) -> str:
    return os.path.join("lineage", sha[:2], f"{sha}.json")


def _write_once(root: str, rel: str, data: bytes) -> bool:
    """Write `data` at `root/rel` unless it exists; True when written now, False when the same
    bytes were there; RecordConflict when other bytes are."""
    final = os.path.join(root, rel)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if os.path.lexists(final):
        if os.path.isfile(final) and _same(final, data):
            return False
        raise RecordConflict(f"{final} exists with other content: records are never overwritten")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(final), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, final)
        except FileExistsError:  # another publisher won the race: same bytes or a conflict
            if not _same(final, data):
                raise RecordConflict(
                    f"{final} exists with other content: records are never overwritten"
                ) from None
            return False
        return True
    finally:
        os.unlink(tmp)


def _same(path: str, data: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read() == data


@contextmanager
def _locked(root: str) -> Iterator[None]:
    fd = os.open(os.path.join(root, LOCK), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def index_entry(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """The index line of a record: what search filters on, and where to read the rest."""
    return {
        "id": lineage["record"]["id"],
        "publishedAt": lineage["times"]["publishedAt"],
        "project": (lineage.get("project") or {}).get("name"),
        "namespace": lineage["run"]["namespace"],
        "run": lineage["run"]["name"],
        "item": lineage["item"]["index"],
        "itemName": lineage["item"].get("name"),
        "inputs": [{"location": i["location"], "sha256": i["sha256"]} for i in lineage["inputs"]],
        "apps": sorted({s["app"] for s in lineage["steps"]}),
        "legalTags": list(lineage["legalTags"]),
        "path": lineage["record"]["path"],
    }


def indexed_marker(sha: str) -> str:
    """Made once the record's index line is written: a retried publish appends no second line."""
    return os.path.join("lineage", sha[:2], f"{sha}.indexed")


@dataclass(frozen=True)
class Stored:
    id: str
    new: bool  # False: the record existed already (same bytes)
    path: str
    lineage_path: str


def put(root: str, mmif_bytes: bytes, lineage: Mapping[str, Any]) -> Stored:
    """Store one record (its MMIF, its lineage, its index line), never overwriting anything."""
    sha = hashlib.sha256(mmif_bytes).hexdigest()
    if lineage["record"]["sha256"] != sha:
        raise ValueError("the lineage names another record than these bytes")
    new = _write_once(root, object_path(sha), mmif_bytes)
    lineage_bytes = (json.dumps(lineage, indent=2, sort_keys=True) + "\n").encode()
    try:
        _write_once(root, lineage_path(sha), lineage_bytes)
    except RecordConflict:
        if new:
            raise
        # The same MMIF was published before (another run or item): its first lineage stays.
    marker = os.path.join(root, indexed_marker(sha))
    with _locked(root):
        if not os.path.exists(marker):
            line = json.dumps(index_entry(lineage), sort_keys=True, separators=(",", ":")) + "\n"
            with open(os.path.join(root, INDEX), "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            # Killed between the line and the marker: the retry appends the line again, and
            # search keeps one entry per id (records/search.py).
            with open(marker, "x"):
                pass
    return Stored(f"sha256:{sha}", new, object_path(sha), lineage_path(sha))
