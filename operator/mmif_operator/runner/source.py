"""The source MMIF of an item: its documents, no views, built with mmif-python (as `clams source`
does). Locations are absolute, percent-encoded `file://` URIs under the workspace mount path,
which every pod mounts at the same path (runner/locations.py; prepare refused any document
whose location CLAMS apps would resolve to another file)."""

from __future__ import annotations

from mmif import Document, DocumentTypes, Mmif

from mmif_operator.runner.items import Item, resolve_in_workspace
from mmif_operator.runner.locations import file_uri

DOCUMENT_TYPES = {
    "video": DocumentTypes.VideoDocument,
    "audio": DocumentTypes.AudioDocument,
    "text": DocumentTypes.TextDocument,
    "image": DocumentTypes.ImageDocument,
}


def build_source(item: Item, workspace: str) -> Mmif:
    """A validated source MMIF for an item given by documents (ids d1, d2, ...)."""
    mmif = Mmif(validate=False)
    for n, spec in enumerate(item.documents, start=1):
        doc = Document()
        doc.at_type = DOCUMENT_TYPES[spec.mime_type.split("/", 1)[0]]
        doc.properties.id = f"d{n}"
        doc.properties.mime = spec.mime_type
        doc.location = file_uri(resolve_in_workspace(workspace, spec.location))
        mmif.add_document(doc)
    try:
        Mmif.validate(mmif.serialize())
    except Exception as e:  # jsonschema's ValidationError is no ValueError
        raise ValueError(f"the source MMIF does not validate: {getattr(e, 'message', e)}") from None
    return mmif


def serialize(mmif: Mmif) -> bytes:
    return mmif.serialize(pretty=True).encode("utf-8")
