"""Items of a batch: parsing, validation against the workspace, the normalised items.jsonl.

An item (docs/reference.md) is `{name?, documents: [{location, mimeType}]}` (1..10 documents),
`{name?, mmif: path}` or `{name?, record: "sha256:<hex>"}` (a record of the project's record store,
copied as the item's source MMIF by prepare: runner/prepare.py); every path is relative to the workspace, has no leading "/" and no ".."
segment, and must name an existing file inside the workspace (symlinks included).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_NAME = 63
MAX_DOCUMENTS = 10
#: media types an item document may have; the major type picks the MMIF document type
MEDIA_MAJOR_TYPES = ("video", "audio", "text", "image")
MAX_PROBLEMS = 5  # problems reported in the termination message
_MIME = re.compile(r"^([a-z]+)/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
_RECORD_ID = re.compile(r"^sha256:[0-9a-f]{64}$")  # the model's RECORD_ID_PATTERN


def default_name(index: int) -> str:
    return f"item-{index:05d}"


@dataclass(frozen=True)
class DocumentSpec:
    location: str  # relative to the workspace
    mime_type: str

    def to_json(self) -> dict:
        return {"location": self.location, "mimeType": self.mime_type}


@dataclass(frozen=True)
class Item:
    index: int
    name: str
    documents: tuple[DocumentSpec, ...] = ()
    mmif: str | None = None  # relative to the workspace
    record: str | None = None  # sha256:<hex>: prepare copied that record as the source MMIF...
    record_problem: tuple[str, str] | None = None  # ... or could not: (reason, message), which
    # the item's first step fails with

    def to_json(self) -> dict:
        out: dict[str, Any] = {"index": self.index, "name": self.name}
        if self.record is not None:
            out["record"] = self.record
            if self.record_problem is not None:
                reason, message = self.record_problem
                out["recordProblem"] = {"reason": reason, "message": message}
        elif self.mmif is not None:
            out["mmif"] = self.mmif
        else:
            out["documents"] = [d.to_json() for d in self.documents]
        return out

    @classmethod
    def from_json(cls, obj: dict) -> Item:
        """Read back a line of items.jsonl (already validated by prepare)."""
        docs = tuple(DocumentSpec(d["location"], d["mimeType"]) for d in obj.get("documents") or ())
        return cls(
            index=int(obj["index"]),
            name=str(obj["name"]),
            documents=docs,
            mmif=obj.get("mmif"),
            record=obj.get("record"),
            record_problem=_problem(obj.get("recordProblem")),
        )


def _problem(obj: Any) -> tuple[str, str] | None:
    if not isinstance(obj, dict):
        return None
    return str(obj.get("reason")), str(obj.get("message"))


class ItemsError(Exception):
    """The batch as a whole is unusable (not JSON, not a list, unreadable file...)."""


class Problems:
    """Collects item problems: the first few verbatim, and a count."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[str] = []

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.first) < MAX_PROBLEMS:
            self.first.append(text)

    def __bool__(self) -> bool:
        return self.count > 0

    def message(self) -> str:
        more = self.count - len(self.first)
        return "; ".join(self.first) + (f"; and {more} more" if more > 0 else "")


def resolve_in_workspace(workspace: str, rel: str) -> str:
    """The absolute path of `rel` under `workspace` (normalised, symlinks NOT resolved: the same
    path must work in every container that mounts the workspace). Raises ValueError when `rel` is
    not a plain relative path or leads (even through a symlink) out of the workspace."""
    if not isinstance(rel, str) or not rel.strip():
        raise ValueError("must be a non-empty string")
    if "\x00" in rel:
        raise ValueError("must not contain NUL")
    if rel.startswith("/"):
        raise ValueError("must be relative to the workspace (no leading '/')")
    if ".." in rel.replace("\\", "/").split("/"):
        raise ValueError("must not contain a '..' segment")
    path = os.path.normpath(os.path.join(workspace, rel))
    ws_real = os.path.realpath(workspace)
    real = os.path.realpath(path)
    if os.path.commonpath([ws_real, real]) != ws_real:
        raise ValueError("leads out of the workspace (through a symlink)")
    return path


def _check_file(workspace: str, rel: Any, what: str, problems: list[str], *, location: bool = False) -> None:
    """`rel` names a readable file in the workspace; with `location`, a document whose `file://`
    URI CLAMS apps read back as that same file (runner/locations.py)."""
    try:
        path = resolve_in_workspace(workspace, rel)
    except ValueError as e:
        problems.append(f"{what} {rel!r} {e}")
        return
    if not os.path.exists(path):
        problems.append(f"{what} {rel!r} does not exist")
    elif not os.path.isfile(path):
        problems.append(f"{what} {rel!r} is not a regular file")
    elif not os.access(path, os.R_OK):
        problems.append(f"{what} {rel!r} is not readable")
    elif location:
        from mmif_operator.runner import locations  # mmif-python: only where documents are checked

        why = locations.problem(path)
        if why:
            problems.append(f"{what} {rel!r}: {why}")


def validate_item(raw: Any, index: int, workspace: str) -> tuple[Item | None, list[str]]:
    """Check one raw item; returns the normalised item, or None and the problems found."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        return None, [f"must be a JSON object, not {type(raw).__name__}"]
    unknown = sorted(set(raw) - {"name", "documents", "mmif", "record"})
    if unknown:
        problems.append(f"unknown field(s) {', '.join(map(repr, unknown))}")
    name = raw.get("name")
    if name is None:
        name = default_name(index)
    elif not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        problems.append(f"name must be a non-empty string of at most {MAX_NAME} characters")
        name = default_name(index)
    has_docs, has_mmif, has_record = "documents" in raw, "mmif" in raw, "record" in raw
    if has_docs + has_mmif + has_record != 1:
        problems.append("needs exactly one of 'documents', 'mmif' and 'record'")
        return None, problems
    docs: list[DocumentSpec] = []
    if has_record:
        if not isinstance(raw["record"], str) or not _RECORD_ID.match(raw["record"]):
            problems.append(f"record {raw['record']!r} is not a record id like 'sha256:<64 hex digits>'")
    elif has_mmif:
        _check_file(workspace, raw["mmif"], "mmif", problems)
    else:
        documents = raw["documents"]
        if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_DOCUMENTS:
            problems.append(f"documents must be a list of 1 to {MAX_DOCUMENTS} entries")
            return None, problems
        for n, doc in enumerate(documents):
            where = f"documents[{n}]"
            if not isinstance(doc, dict):
                problems.append(f"{where} must be an object with location and mimeType")
                continue
            extra = sorted(set(doc) - {"location", "mimeType"})
            if extra:
                problems.append(f"{where} has unknown field(s) {', '.join(map(repr, extra))}")
            mime = doc.get("mimeType")
            m = _MIME.match(mime) if isinstance(mime, str) else None
            if m is None:
                problems.append(f"{where}.mimeType {mime!r} is not a media type like 'video/mp4'")
            elif m.group(1) not in MEDIA_MAJOR_TYPES:
                problems.append(
                    f"{where}.mimeType {mime!r} is not one of {'/, '.join(MEDIA_MAJOR_TYPES)}/ types"
                )
            _check_file(workspace, doc.get("location"), f"{where}.location", problems, location=True)
            if isinstance(doc.get("location"), str) and isinstance(mime, str):
                docs.append(DocumentSpec(os.path.normpath(doc["location"]), mime))
    if problems:
        return None, problems
    return Item(
        index=index,
        name=name,
        documents=tuple(docs),
        mmif=os.path.normpath(raw["mmif"]) if has_mmif else None,
        record=raw["record"] if has_record else None,
    ), []


def parse_list(raw: Any) -> list[tuple[str, Any]]:
    """Items from a JSON list (spec.items); each as (label for messages, raw item)."""
    if not isinstance(raw, list):
        raise ItemsError("the inline items must be a JSON list")
    return [("", r) for r in raw]


def parse_jsonl(path: str) -> Iterator[tuple[str, Any]]:
    """Items from a JSON Lines file, one item a line (blank lines skipped); each as
    (label for messages, raw item), a line that is not JSON gives a `_NotJson` raw item."""
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the `with f` below; the try covers the open alone
    except OSError as e:
        raise ItemsError(f"cannot read the items file: {e.strerror or e}") from None
    with f:
        try:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield f"line {lineno}", json.loads(line)
                except ValueError as e:
                    yield f"line {lineno}", _NotJson(str(e))
        except UnicodeDecodeError:
            raise ItemsError("the items file is not UTF-8 text") from None


class _NotJson:
    def __init__(self, error: str) -> None:
        self.error = error


def validate_all(raws: Iterable[tuple[str, Any]], workspace: str) -> tuple[list[Item], Problems]:
    """Validate every item; problems read `item 3 (name): documents[0].location 'x' does not exist`."""
    items: list[Item] = []
    problems = Problems()
    for index, (label, raw) in enumerate(raws):
        if isinstance(raw, _NotJson):
            problems.add(f"item {index} ({label}): not JSON: {raw.error}")
            continue
        item, found = validate_item(raw, index, workspace)
        if item is not None:
            items.append(item)
            continue
        name = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else None
        who = ", ".join(x for x in (name, label) if x) or default_name(index)
        for p in found:
            problems.add(f"item {index} ({who}): {p}")
    if not items and not problems:
        problems.add("the batch holds no items")
    return items, problems


def dump_jsonl(items: Iterable[Item]) -> bytes:
    return "".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items).encode("utf-8")


def read_item(items_file: str, index: int) -> Item | None:
    """Item `index` of a normalised items.jsonl (line `index`), or None when there is none."""
    with open(items_file, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n == index:
                return Item.from_json(json.loads(line))
    return None


def read_items(items_file: str) -> list[Item]:
    with open(items_file, encoding="utf-8") as f:
        return [Item.from_json(json.loads(line)) for line in f if line.strip()]
