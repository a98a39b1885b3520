"""The runner's input file: a key of a ConfigMap the operator made for one run or AnalysisJob,
mounted read-only (core/runner_input.py): zlib-compressed JSON `{"owner": <uid>, ...}`."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any


class InputFileError(Exception):
    """The file is missing, unreadable, or not made for this owner; the message says which."""


def encode(owner_uid: str, body: Mapping[str, Any]) -> bytes:
    text = json.dumps({"owner": owner_uid, **body}, separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode("utf-8"), 9)


def read(path: str, owner_uid: str | None, what: str) -> dict[str, Any]:
    """The payload at `path`, made for `owner_uid` (checked when given)."""
    try:
        with open(path, "rb") as f:
            obj = json.loads(zlib.decompress(f.read()).decode("utf-8"))
    except OSError as e:
        raise InputFileError(f"cannot read {what} at {path}: {e.strerror or e}") from None
    except (zlib.error, UnicodeDecodeError, ValueError) as e:
        raise InputFileError(f"{what} at {path} cannot be decoded: {e}") from None
    if not isinstance(obj, dict):
        raise InputFileError(f"{what} at {path} is not a JSON object")
    if owner_uid and obj.get("owner") != owner_uid:
        raise InputFileError(
            f"{what} at {path} was made for {obj.get('owner')!r}, not for {owner_uid!r}: "
            f"its ConfigMap is not this object's"
        )
    return obj
