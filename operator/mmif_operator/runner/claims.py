"""Claiming a folder on the volume for one run or one AnalysisJob (docs/design.md, "Outputs on
the volume").

The rule: a run's folder (`<mountPath>/<outputDir>/<run>`) and an AnalysisJob's folder
(`<run folder>/analyses/<analysis job>`) never lie inside another run's or analysis's folder,
nor contain one, whatever the names and `outputDir`. A claimed folder holds a marker file with
its owner's UID (`.run-uid` or `.analysis-uid`), so:

* walking from the top of what the pod sees (the workspace's mount path; for an analysis, its
  source run's folder) down to the folder, no folder on the way may hold a marker, except the
  ones the caller names (an AnalysisJob's source run folder, with that run's UID);
* the folder itself must be new, empty, or already hold this owner's marker;
* the marker is created atomically (a hard link of a complete temporary file, or O_EXCL), so two
  claimers of one folder cannot both win;
* after the claim, the way down is checked again (and a fresh folder's content): two claimers of
  nested folders racing each other see each other's marker, so at least one fails and none
  writes into the other's folder.

Nothing is created inside a claimed folder by a claimer that is refused: the way down is created
one level at a time, each level checked before the next is made.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from mmif_operator.runner.paths import ANALYSIS_UID_FILE, RUN_UID_FILE

MARKERS = {RUN_UID_FILE: "run", ANALYSIS_UID_FILE: "AnalysisJob"}
#: entries looked at when naming what a non-empty folder holds (a bounded walk)
SCAN_LIMIT = 2000


class ClaimConflict(Exception):
    """The folder cannot be this owner's (exit 5, OutputConflict); the message says why."""


@dataclass(frozen=True)
class Owner:
    marker: str  # RUN_UID_FILE or ANALYSIS_UID_FILE
    uid: str

    @property
    def kind(self) -> str:
        return MARKERS[self.marker]


def _tmp_prefix(marker: str) -> str:
    return f".{marker}.tmp-"


def read_markers(folder: str) -> dict[str, str]:
    """The markers `folder` holds: marker file name -> UID (an empty string when unreadable)."""
    found: dict[str, str] = {}
    for marker in MARKERS:
        path = os.path.join(folder, marker)
        try:
            with open(path, encoding="utf-8") as f:
                found[marker] = f.read().strip()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            found[marker] = ""
    return found


def describe(marker: str, uid: str) -> str:
    return f"{MARKERS[marker]} {uid or '(unreadable marker)'}"


def _steps_down(top: str, folder: str) -> list[str]:
    """The folders from `top` (included) down to `folder` (included)."""
    top, folder = posixpath.normpath(top), posixpath.normpath(folder)
    rel = posixpath.relpath(folder, top)
    if rel == ".":
        return [top]
    if rel == ".." or rel.startswith("../"):
        raise ClaimConflict(f"{folder} does not lie under {top}")
    out, cur = [top], top
    for part in rel.split("/"):
        cur = posixpath.join(cur, part)
        out.append(cur)
    return out


def owners_text(markers: Mapping[str, str]) -> str:
    """e.g. "run 1234" or "run 1234 and AnalysisJob 5678"."""
    return " and ".join(describe(m, u) for m, u in markers.items()) or "nobody"


class _Way:
    """Checks the folders between the top and the claimed folder, by their real paths (so a
    symbolic link on the way cannot hide a claimed folder above the one it points into)."""

    def __init__(self, top: str, folder: str, allowed: Mapping[str, tuple[str, str]]):
        self.top_real = os.path.realpath(top)
        self.folder = folder
        self.allowed = {os.path.realpath(k): v for k, v in allowed.items()}

    def real(self, path: str) -> str:
        real = os.path.realpath(path)
        if os.path.commonpath([self.top_real, real]) != self.top_real:
            raise ClaimConflict(f"{self.folder} cannot be claimed: {path} leads out of {self.top_real}")
        return real

    def check(self, path: str) -> None:
        """Every folder from the top down to `path` (included) holds no marker but an allowed one."""
        for level in _steps_down(self.top_real, self.real(path)):
            if not os.path.isdir(level):
                raise ClaimConflict(f"{self.folder} cannot be claimed: {level} exists and is not a folder")
            markers = read_markers(level)
            want = self.allowed.get(level)
            if want is not None:
                if markers != {want[0]: want[1]}:
                    raise ClaimConflict(
                        f"{level} should be the folder of {describe(*want)}, but it "
                        f"holds the marker of {owners_text(markers)}"
                    )
                continue
            if markers:
                raise ClaimConflict(
                    f"{self.folder} lies inside {level}, the folder of "
                    f"{owners_text(markers)}: a run's or analysis's folder never "
                    f"lies inside another's"
                )


def find_markers(folder: str, limit: int = SCAN_LIMIT) -> list[tuple[str, str, str]]:
    """(relative folder, marker, uid) of the claimed folders inside `folder`, looking at no more
    than `limit` entries (symbolic links are not followed)."""
    found: list[tuple[str, str, str]] = []
    seen = 0
    stack = [folder]
    while stack and seen < limit:
        cur = stack.pop()
        try:
            entries = sorted(os.scandir(cur), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if cur != folder and entry.name in MARKERS:
                found.append(
                    (posixpath.relpath(cur, folder), entry.name, read_markers(cur).get(entry.name, ""))
                )
            elif entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return found


def _inside_text(inside: list[tuple[str, str, str]]) -> str:
    where, marker, uid = inside[0]
    more = f" (and {len(inside) - 1} more)" if len(inside) > 1 else ""
    return (
        f"holds {where}, the folder of {describe(marker, uid)}{more}: a run's or analysis's "
        f"folder never contains another's"
    )


def _create_marker(folder: str, owner: Owner) -> bool:
    """Create the marker atomically; False when one appeared meanwhile."""
    path = os.path.join(folder, owner.marker)
    tmp = os.path.join(folder, f"{_tmp_prefix(owner.marker)}{os.getpid()}-{secrets.token_hex(4)}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(owner.uid + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if the marker appeared meanwhile
        return True
    except FileExistsError:
        return False
    except OSError:
        # a filesystem without hard links: an exclusive create (the content follows at once)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(owner.uid + "\n")
        return True
    finally:
        os.unlink(tmp)


def _check_folder(folder: str, owner: Owner) -> bool:
    """True when `folder` already holds this owner's marker (and no other); ClaimConflict when it
    holds another's, or other files; False when it is free (empty)."""
    markers = read_markers(folder)
    if markers == {owner.marker: owner.uid}:
        return True
    if markers:
        raise ClaimConflict(
            f"{folder} belongs to {owners_text(markers)}, not to {owner.kind} "
            f"{owner.uid}: a run never writes into another run's or analysis's folder"
        )
    names = sorted(n for n in os.listdir(folder) if not n.startswith(_tmp_prefix(owner.marker)))
    if not names:
        return False
    inside = find_markers(folder)
    if inside:
        raise ClaimConflict(f"{folder} already exists and {_inside_text(inside)}")
    raise ClaimConflict(
        f"{folder} already exists, is not empty and is not marked as a {owner.kind}'s "
        f"folder (holds {', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
    )


def claim(top: str, folder: str, owner: Owner, allowed: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Claim `folder` (under `top`) for `owner` by the rule of the module docstring; raise
    ClaimConflict, with nothing of another's touched, when it cannot be this owner's.

    `allowed`: folders on the way down that must hold exactly this (marker, uid), e.g. an
    AnalysisJob's source run folder."""
    steps = _steps_down(top, folder)
    folder = steps[-1]
    way = _Way(steps[0], folder, allowed or {})
    created: list[str] = []
    for path in steps[:-1]:
        if not os.path.lexists(path):
            try:
                os.mkdir(path)
                created.append(path)
            except FileExistsError:
                pass
        way.check(path)  # before anything is made one level further down
    if not os.path.lexists(folder):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise ClaimConflict(f"{folder} cannot be claimed: it exists and is not a folder")
    mine = False
    for _ in range(3):
        if _check_folder(folder, owner):
            break
        if _create_marker(folder, owner):
            mine = True
            break
    else:
        raise ClaimConflict(f"cannot claim {folder}: its marker keeps changing")
    # Again, now that the marker is there: a claimer of a folder above or below that raced us
    # either sees our marker, or we see its marker now.
    try:
        if len(steps) > 1:
            way.check(steps[-2])
        if mine:
            inside = find_markers(folder)
            if inside:
                raise ClaimConflict(f"{folder} {_inside_text(inside)}")
    except ClaimConflict:
        if mine:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, owner.marker))
        for path in reversed(created):
            try:
                os.rmdir(path)
            except OSError:
                break
        raise


def verify(folder: str, owner: Owner) -> None:
    """The folder must be claimed by `owner` already (a step or manifest writer): ClaimConflict
    naming the owner when another holds it, FileNotFoundError when it holds no marker."""
    markers = read_markers(folder)
    if markers == {owner.marker: owner.uid}:
        return
    if not markers:
        raise FileNotFoundError(
            f"{os.path.join(folder, owner.marker)} is missing: the folder was "
            f"never claimed by {owner.kind} {owner.uid}"
        )
    raise ClaimConflict(f"{folder} belongs to {owners_text(markers)}, not to {owner.kind} {owner.uid}")
