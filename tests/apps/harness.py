"""Run the test apps (or any WSGI callable) in-process on a free localhost port, for unit tests.

    harness = load_harness()             # see tests/unit/test_runner_*.py
    with harness.serve_app("textgen") as url: ...   # url = "http://127.0.0.1:<port>"

Every app folder holds an `app.py` (all named alike), so each is imported under its own module
name (`mmif_test_app_<name>`) and registered in sys.modules: clams-python needs
`inspect.getfile(type(app))` to work.
"""

from __future__ import annotations

import contextlib
import importlib.util
import pathlib
import sys
import threading
from collections.abc import Callable, Iterator

from werkzeug.serving import make_server

APPS_DIR = pathlib.Path(__file__).resolve().parent
APP_NAMES = ("textgen", "timeframes", "sleeper", "failer", "spy")


def load_module(name: str):
    module_name = f"mmif_test_app_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, APPS_DIR / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_app(name: str):
    """A fresh instance of the test app `name` (a ClamsApp)."""
    return load_module(name).get_app()


def wsgi_app(name: str):
    from clams import Restifier

    return Restifier(load_app(name), debug=False).flask_app


@contextlib.contextmanager
def serve(app: Callable) -> Iterator[str]:
    """Serve the WSGI callable `app` on 127.0.0.1 (a free port) in a thread; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi-{server.port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve_app(name: str):
    return serve(wsgi_app(name))
