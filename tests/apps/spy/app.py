"""spy: a tiny CLAMS test app for security tests. It tries to read the file `readPath` and to
write a file at `writePath` (each only when given) and records in its view, as one annotation per
attempt, whether it was allowed or denied (with errno), plus the process's uid/gid. With
`readDocuments`, it also opens every document where CLAMS apps do, `Document.location_path()`,
and records the path and the sha256 of what it read. Identifier http://apps.mmif.dev/spy/v1."""

import argparse
import errno
import hashlib
import logging
import os

import pydantic
from clams import ClamsApp, Restifier
from clams.appmetadata import AppMetadata
from mmif import AnnotationTypes, DocumentTypes, Mmif

IDENTIFIER = "http://apps.mmif.dev/spy/v1"


def attempt(op: str, path: str) -> dict:
    try:
        if op.startswith("read"):
            with open(path, "rb") as f:
                data = f.read(1 << 20)
            return {
                "op": op,
                "path": path,
                "outcome": "allowed",
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        with open(path, "wb") as f:
            size = f.write(b"written by the spy test app\n")
        return {"op": op, "path": path, "outcome": "allowed", "bytes": size}
    except OSError as e:
        return {
            "op": op,
            "path": path,
            "outcome": "denied",
            "errno": e.errno or 0,
            "errnoName": errno.errorcode.get(e.errno or 0, ""),
            "detail": e.strerror or str(e),
        }


class Spy(ClamsApp):
    def _appmetadata(self) -> AppMetadata:
        md = AppMetadata(
            name="spy",
            description="Test app: records whether it may read readPath and write writePath.",
            app_license="Apache-2.0",
            identifier=IDENTIFIER,
            url="https://example.org/mmif-operator",
        )
        md.identifier = pydantic.AnyHttpUrl(IDENTIFIER)  # the SDK appends a version: pin it
        md.app_version = "v1"
        md.add_input(DocumentTypes.Document, required=False)
        md.add_output(AnnotationTypes.Annotation)
        md.add_parameter(name="readPath", description="a file to try to read", type="string", default="")
        md.add_parameter(name="writePath", description="a file to try to write", type="string", default="")
        md.add_parameter(
            name="readDocuments",
            description="read every document at its location_path()",
            type="boolean",
            default=False,
        )
        return md

    def _annotate(self, mmif: Mmif, **parameters) -> Mmif:
        if not mmif.documents:
            raise ValueError("no documents in the input")
        doc = mmif.documents[0].id  # mmif-python wants `document` on Annotation-typed annotations
        view = mmif.new_view()
        self.sign_view(view, parameters)
        view.new_annotation(
            AnnotationTypes.Annotation,
            document=doc,
            op="identity",
            uid=os.getuid(),
            gid=os.getgid(),
            groups=[int(g) for g in os.getgroups()],
        )
        for op, key in (("read", "readPath"), ("write", "writePath")):
            if parameters.get(key):
                view.new_annotation(AnnotationTypes.Annotation, document=doc, **attempt(op, parameters[key]))
        if parameters.get("readDocuments"):
            for d in mmif.documents:  # where CLAMS apps open a document
                view.new_annotation(
                    AnnotationTypes.Annotation,
                    document=d.id,
                    location=d.location,
                    **attempt("readDocument", d.location_path()),
                )
        return mmif


def get_app() -> ClamsApp:
    return Spy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="5000", help="port to listen on")
    parser.add_argument("--production", action="store_true", help="serve with gunicorn")
    args = parser.parse_args()
    app = get_app()
    http_app = Restifier(app, port=int(args.port), debug=False)
    if args.production:
        http_app.serve_production()
    else:
        app.logger.setLevel(logging.DEBUG)
        http_app.run()
