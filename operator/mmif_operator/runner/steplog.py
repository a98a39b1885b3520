"""The runner's own log of one item-step, kept on the volume beside the step's result record
(`items/<index>/<k>-<step>.log`, runner/paths.py), so that `kubectl mmif logs` can show it after
the step's pod is gone. Every attempt appends to it; the file is bounded (MAX_BYTES): past the
bound one line says so and nothing more is written. The app container's own log of a failed
item-step is kept by the operator, not here (core/applogs.py): step pods have no API token."""

from __future__ import annotations

import logging
import os
import threading

MAX_BYTES = 256 * 1024
TRUNCATED = "... (the runner log reached its bound of {} bytes: later lines are not kept)\n"
FORMAT = "%(asctime)s %(levelname)s %(message)s"


class BoundedFileHandler(logging.Handler):
    """Appends records to `path` until the file holds `limit` bytes, then one truncation line."""

    def __init__(self, path: str, limit: int = MAX_BYTES) -> None:
        super().__init__()
        self.path, self.limit = path, limit
        self._lock = threading.Lock()
        self.previous_level = logging.NOTSET
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", errors="replace")
            marker = TRUNCATED.format(self.limit).encode()
            room = self.limit - len(marker) - 1  # what lines may take; the marker fits after them
            with self._lock, open(self.path, "ab") as f:
                size = f.tell()
                if size >= room:
                    return  # full: the marker is already there (this attempt's or an earlier one's)
                if size + len(line) > room:
                    f.write(line[: room - size] + b"\n" + marker)  # now past `room`
                    return
                f.write(line)
        except Exception:  # noqa: BLE001 - a log that cannot be written never fails the step
            self.handleError(record)


def attach(logger: logging.Logger, path: str, limit: int = MAX_BYTES) -> BoundedFileHandler | None:
    """Log `logger` to `path` as well (its folder made if needed); None when that cannot be."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError:
        return None
    handler = BoundedFileHandler(path, limit)
    handler.setLevel(logging.INFO)
    handler.previous_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:  # the file keeps INFO whatever stderr shows
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def detach(logger: logging.Logger, handler: BoundedFileHandler | None) -> None:
    if handler is not None:
        logger.removeHandler(handler)
        logger.setLevel(handler.previous_level)
        handler.close()
