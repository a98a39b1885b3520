"""Small file helpers: atomic writes, digests, timestamps, the termination message."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import secrets
from typing import Any

log = logging.getLogger("mmif-runner")

MESSAGE_LIMIT = 1024  # bytes of `message` in a termination message
TERMINATION_LIMIT = 4096  # what the kubelet keeps of /dev/termination-log


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (with an ellipsis when cut)."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode("utf-8", errors="ignore") + "..."


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to a temporary file in the same folder, fsync it, then rename it over `path`:
    readers see the old file or the new one, never a half-written one."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:  # make the rename durable; not every filesystem allows fsync on a folder
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: str) -> Any | None:
    """The JSON in `path`, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def write_termination(path: str, summary: dict) -> None:
    """Write the one-line JSON summary to the termination-message file (and to the log).

    `message` is cut to 1 KiB; the line is kept under the kubelet's 4 KiB. The file is written in
    place (it is a bind-mounted file in pods, it cannot be renamed over)."""
    summary = dict(summary)
    if isinstance(summary.get("message"), str):
        summary["message"] = cut(summary["message"])
    line = json.dumps(summary, ensure_ascii=False, separators=(",", ":"))
    if len(line.encode("utf-8")) >= TERMINATION_LIMIT:
        for key in ("problems", "warnings"):
            summary.pop(key, None)
        summary["message"] = cut(summary.get("message", ""), 512)
        line = json.dumps(summary, ensure_ascii=False, separators=(",", ":"))
    print(line, flush=True)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as e:
        log.warning("cannot write the termination message to %s: %s", path, e)
