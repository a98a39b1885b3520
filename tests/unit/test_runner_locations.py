"""Document locations (runner/locations.py): percent-encoded file:// URIs that read back as the
same path by RFC 3986, and the prepare check with mmif-python's own reading (what CLAMS apps open)."""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path

import pytest
from mmif import Mmif

from mmif_operator.runner import locations
from mmif_operator.runner.exitcodes import ExitCode
from tests.unit.test_runner_step import Run, harness

NASTY = "media/sp ace/ü #1?.mp4"
SAFE = "media/take(1)+mix&cut=2,final;v'1@x:y!$~.mp4"


@pytest.mark.parametrize(
    "path",
    [
        "/data/" + NASTY,
        "/data/" + SAFE,
        "/data/100%.mp4",
        "/data/%20.mp4",
        "/data/a b/c\td.mp4",
        "/data/日本語/ファイル.wav",
        "/data/" + "".join(chr(c) for c in range(32, 127) if chr(c) != "/"),
        "/data/a//b/./c.mp4",
    ],
)
def test_the_location_is_a_percent_encoded_uri_that_reads_back_as_the_same_path(path):
    uri = locations.file_uri(path)
    assert uri.startswith("file:///")
    allowed = set(string.ascii_letters + string.digits + "-._~/%" + locations.SEGMENT_SAFE)
    assert set(uri[len("file://") :]) <= allowed, "only RFC 3986 path characters, the rest %XX"
    assert locations.uri_path(uri) == path


def test_apps_read_a_location_that_needs_no_encoding_as_the_same_file():
    for path in ("/data/" + SAFE, "/data/media/clip-1.mp4"):
        assert locations.file_uri(path) == "file://" + path
        assert locations.app_path(locations.file_uri(path)) == path
        assert locations.problem(path) is None


@pytest.mark.parametrize(
    "name, seen",
    [
        (NASTY, "/data/media/sp%20ace/%C3%BC%20%231%3F.mp4"),
        ("media/100%.mp4", "/data/media/100%25.mp4"),
        ("media/ü.mp4", "/data/media/%C3%BC.mp4"),
    ],
)
def test_a_location_mmif_python_reads_as_another_path_is_a_problem_naming_that_path(name, seen):
    why = locations.problem("/data/" + name)
    assert why is not None and repr(seen) in why and "rename the file" in why


def test_prepare_refuses_a_document_apps_would_open_as_another_file(tmp_path, monkeypatch):
    with pytest.raises(AssertionError):
        Run(
            tmp_path,
            monkeypatch,
            ["spy"],
            [{"name": "clip", "documents": [{"location": NASTY, "mimeType": "video/mp4"}]}],
            files={NASTY: b"the right file"},
        )
    term = json.loads((tmp_path / "termination-log").read_text())
    assert term["reason"] == "InvalidItems"
    assert term["message"].startswith(
        f"item 0 (clip): documents[0].location {NASTY!r}: CLAMS apps would open '/"
    )
    assert "sp%20ace/%C3%BC%20%231%3F.mp4" in term["message"]


def test_an_app_opens_the_right_file_for_a_name_full_of_uri_characters(tmp_path, monkeypatch):
    content = b"the right file\n"
    run = Run(
        tmp_path,
        monkeypatch,
        ["spy"],
        [{"documents": [{"location": SAFE, "mimeType": "video/mp4"}]}],
        files={SAFE: content},
    )
    with harness.serve_app("spy") as url:
        code, term = run.step(0, 0, url, {"readDocuments": "true"})
    assert code == ExitCode.OK, term
    out = Mmif(Path(run.layout.final_mmif(0)).read_text())
    assert out.documents[0].location == locations.file_uri(str(run.ws / SAFE))
    [read] = [a for a in out.views[-1].get_annotations() if a.get_property("op") == "readDocument"]
    assert read.get_property("path") == str(run.ws / SAFE)
    assert read.get_property("outcome") == "allowed"
    assert read.get_property("sha256") == hashlib.sha256(content).hexdigest()
