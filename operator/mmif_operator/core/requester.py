"""Who asked: the user recorded by the admission webhook when a PipelineRun or AnalysisJob is
created (as the API server records `spec.username` etc. on a CertificateSigningRequest).

Groups: the first `MAX_GROUPS` verbatim in `groups`, readable with kubectl; any further ones in
`moreGroups`, compressed (the JSON list of names, zlib, base64) and bounded to
`MAX_MORE_GROUPS_CHARS` characters. Kubernetes bounds no user's groups, but what authenticates
users does in practice: an OIDC token's groups travel in an HTTP header (8 to 16 KiB), so a few
hundred names; 32 KiB of compressed names hold thousands. The SubjectAccessReview the operator
makes for the requester gets every group (`all_groups`), so RBAC sees the user as the API server
did; a user whose groups do not fit even so is refused at creation, with the sizes named, rather
than recorded with some groups missing.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from mmif_operator.core.model import SpecModel

MAX_GROUPS = 64
MAX_MORE_GROUPS_CHARS = 32 * 1024

Name = Annotated[str, Field(max_length=512)]


class Requester(SpecModel):
    """The user who created the object, from the admission request. Set by the operator's
    admission webhook at creation; it cannot be set or changed by hand."""

    username: str = Field(
        description="The user's name, e.g. `alice` or `system:serviceaccount:a1:ci`.", max_length=512
    )
    uid: str | None = Field(
        None, description="The user's UID, when the authenticator gives one.", max_length=512
    )
    groups: list[Name] = Field(
        default_factory=list,
        description=f"The user's groups (the first {MAX_GROUPS}).",
        max_length=MAX_GROUPS,
    )
    more_groups: str | None = Field(
        None,
        description=f"The user's groups beyond the first {MAX_GROUPS}, compressed: the JSON list "
        "of their names, zlib, base64 (read it with `mmif_operator.core.requester.all_groups`). The "
        "operator's SubjectAccessReviews for the user include them.",
        max_length=MAX_MORE_GROUPS_CHARS,
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
    )
    extra: dict[str, Annotated[list[Name], Field(max_length=32)]] = Field(
        default_factory=dict,
        description="Extra attributes the authenticator gave (e.g. scopes), as in a SubjectAccessReview.",
        max_length=32,
    )

    def to_user_info(self) -> dict:
        """The Kubernetes `UserInfo` shape (username, uid, groups, extra), every group included."""
        info = self.to_dict()
        info.pop("moreGroups", None)
        info["groups"] = all_groups(self.to_dict())
        return info


class TooManyGroups(ValueError):
    """The groups do not fit even compressed."""


def encode_more_groups(groups: list[str]) -> str:
    return base64.b64encode(
        zlib.compress(json.dumps(groups, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 9)
    ).decode("ascii")


def split_groups(groups: list[str]) -> dict[str, Any]:
    """`groups` as the requester's fields: `{"groups": first 64}` plus `moreGroups` for the rest;
    TooManyGroups when the rest does not fit in `MAX_MORE_GROUPS_CHARS`."""
    out: dict[str, Any] = {"groups": list(groups[:MAX_GROUPS])}
    rest = list(groups[MAX_GROUPS:])
    if rest:
        text = encode_more_groups(rest)
        if len(text) > MAX_MORE_GROUPS_CHARS:
            raise TooManyGroups(
                f"the user's {len(groups)} groups do not fit: the {len(rest)} beyond the "
                f"first {MAX_GROUPS} take {len(text)} characters compressed, more than "
                f"the {MAX_MORE_GROUPS_CHARS} spec.requester.moreGroups holds"
            )
        out["moreGroups"] = text
    return out


def all_groups(requester: Mapping[str, Any]) -> list[str]:
    """Every group of a recorded requester (camelCase dict): `groups`, then `moreGroups`."""
    groups = [str(g) for g in requester.get("groups") or ()]
    more = requester.get("moreGroups")
    if more:
        try:
            rest = json.loads(zlib.decompress(base64.b64decode(more, validate=True)).decode("utf-8"))
        except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"spec.requester.moreGroups cannot be read: {e}") from None
        if not isinstance(rest, list):
            raise ValueError("spec.requester.moreGroups is not a list of names")
        groups += [str(g) for g in rest]
    return groups
