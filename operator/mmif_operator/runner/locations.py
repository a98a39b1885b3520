"""Document locations in MMIF: percent-encoded `file://` URIs, and whether CLAMS apps read them
back as the same file.

A document's `location` is a URI (MMIF; RFC 8089 for `file:`): its path is the file's absolute
path with every byte that a path segment may not hold percent-encoded as UTF-8 (RFC 3986, 3.3:
a segment holds unreserved characters, sub-delims, ":" and "@"). So `media/sp ace/ü #1?.mp4`
under `/data` becomes `file:///data/media/sp%20ace/%C3%BC%20%231%3F.mp4`; written verbatim, a
reader would stop the path at "#" (a fragment) and "?" (a query) and open another file.

CLAMS apps find the file with mmif-python (`Document.location_path()`). mmif-python takes the
URI's path as it stands: it does not percent-decode it (1.5.4, and 1.6.0, the newest, alike). So
a file whose path needs encoding (a space, a non-ASCII letter, "#", "?", "%", ...) would be
opened by its encoded spelling, another path. The prepare step checks every document with
mmif-python's own reading (`app_path`) and refuses an item whose location apps would resolve to
another file (`problem`), naming the item, the file and the path apps would open, rather than
letting apps read the wrong file. A path of letters, digits and `-._~!$&'()*+,;=:@` needs no
encoding, and goes through.
"""

from __future__ import annotations

import urllib.parse

import mmif
from mmif import Document

#: what a path segment may hold unencoded besides letters, digits and "-._~" (RFC 3986 pchar)
SEGMENT_SAFE = "!$&'()*+,;=:@"


def file_uri(path: str) -> str:
    """The `file://` URI of an absolute POSIX path (empty authority), percent-encoded."""
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    return "file://" + urllib.parse.quote(path, safe="/" + SEGMENT_SAFE, encoding="utf-8", errors="strict")


def uri_path(uri: str) -> str:
    """The path of a `file://` URI as RFC 3986 reads it (percent-decoded, UTF-8)."""
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.unquote(parts.path, encoding="utf-8", errors="strict")


def app_path(uri: str) -> str | None:
    """The path CLAMS apps open for a document at `uri`: mmif-python's own reading."""
    doc = Document()
    doc.location = uri
    return doc.location_path()


def problem(path: str) -> str | None:
    """Why apps would not open `path` from its location URI (None: they would)."""
    try:
        uri = file_uri(path)
    except UnicodeEncodeError:
        return "is not valid Unicode text: it has no file:// URI"
    seen = app_path(uri)
    if seen == path:
        return None
    return (
        f"CLAMS apps would open {seen!r} instead (its location {uri} as mmif-python "
        f"{mmif.__version__}'s Document.location_path() reads it): rename the file with letters, "
        f"digits and -._~!$&'()*+,;=:@ only"
    )
