"""Server-sent events framing (the `text/event-stream` format of the HTML standard). Pure."""

from __future__ import annotations

import json
from typing import Any


def frame(event: str, data: Any, *, id: str | None = None, retry_ms: int | None = None) -> bytes:
    """One event: `event:` line, optional `id:` and `retry:`, the JSON data (one `data:` line per
    line of it, so a newline inside can never end the event early), then a blank line."""
    if "\n" in event or "\r" in event:
        raise ValueError("an event name is one line")
    lines = [f"event: {event}"]
    if id is not None:
        lines.append(f"id: {id}")
    if retry_ms is not None:
        lines.append(f"retry: {int(retry_ms)}")
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    lines.extend(f"data: {line}" for line in text.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def comment(text: str = "") -> bytes:
    """A comment line (ignored by EventSource): a heartbeat."""
    return f": {text}\n\n".encode()


def parse(stream: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a stream's text, JSON-decoded: for tests and scripts."""
    events: list[tuple[str, Any]] = []
    for block in stream.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events
