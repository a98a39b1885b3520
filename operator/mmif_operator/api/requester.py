"""Who asked: the user recorded by the admission webhook when a PipelineRun or AnalysisJob is
created (as the API server records `spec.username` etc. on a CertificateSigningRequest)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .common import SpecModel

MAX_GROUPS = 64

Name = Annotated[str, Field(max_length=512)]


class Requester(SpecModel):
    """The user who created the object, from the admission request. Set by the operator's
    admission webhook at creation; it cannot be set or changed by hand."""

    username: str = Field(description="The user's name, e.g. `alice` or "
                          "`system:serviceaccount:a1:ci`.", max_length=512)
    uid: str | None = Field(None, description="The user's UID, when the authenticator gives one.",
                            max_length=512)
    groups: list[Name] = Field(default_factory=list, description="The user's groups.",
                              max_length=MAX_GROUPS)
    extra: dict[str, Annotated[list[Name], Field(max_length=32)]] = Field(
        default_factory=dict,
        description="Extra attributes the authenticator gave (e.g. scopes), as in a "
        "SubjectAccessReview.",
        max_length=32,
    )

    def to_user_info(self) -> dict:
        """The Kubernetes `UserInfo` shape (username, uid, groups, extra)."""
        return self.to_dict()
