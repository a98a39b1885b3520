"""The textgen test app as its image starts it (`app.py --port N`), with the start-up delay the
start-up benchmarks give it: it does not answer before the delay has passed, then serves."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "apps" / "textgen" / "app.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_answer(port: int, deadline: float) -> tuple[float, bytes]:
    """Poll GET / until the app answers (bounded by `deadline`): the time it answered, the body."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                return time.monotonic(), r.read()
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the app never answered")


def test_textgen_waits_its_startup_delay_before_it_listens():
    port = _free_port()
    env = {**os.environ, "CLAMS_STARTUP_DELAY_SECONDS": "2"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(APP), "--port", str(port)], env=env)
    try:
        answered, body = _first_answer(port, started + 60)
        assert answered - started >= 2.0
        assert b"http://apps.mmif.dev/textgen/v1" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
