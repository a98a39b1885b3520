"""Legal tags and access-control lists: what every piece of data in a project carries.

A Project (kinds/project) declares defaults; the admission webhook copies them into every
PipelineRun and AnalysisJob created in the project's namespace that does not name its own
(explicit ones win, field by field); records (issue 12) carry the run's. The values are names
the organisation defines (`legal tags` say under which terms data may be used, e.g.
`public-domain`, `internal-research`; the ACL says which groups own and which may view it).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mmif_operator.core.model import SpecModel

MAX_LEGAL_TAGS = 32
MAX_ACL_ENTRIES = 64

LEGAL_TAG = r"^[A-Za-z0-9]([-A-Za-z0-9_.:]*[A-Za-z0-9])?$"
LegalTag = Annotated[str, Field(pattern=LEGAL_TAG, max_length=128)]
"""A legal tag's name: letters, digits, '-', '_', '.', ':' (at most 128 characters)."""

Principal = Annotated[str, Field(min_length=1, max_length=512)]
"""A user or group name as the cluster's authentication knows it."""


class Acl(SpecModel):
    """Who owns and who may view a piece of data (group or user names)."""

    owners: list[Principal] | None = Field(
        None,
        description="The users or groups that own the data (may change its metadata and publish it).",
        max_length=MAX_ACL_ENTRIES,
    )
    viewers: list[Principal] | None = Field(
        None,
        description="The users or groups that may read the data.",
        max_length=MAX_ACL_ENTRIES,
    )


LEGAL_TAGS_DESCRIPTION = (
    "The legal tags of the data this object makes (the terms under which it may be used). "
    "In a project's namespace, missing: the project's `defaults.legalTags`."
)
ACL_DESCRIPTION = (
    "Who owns and who may view the data this object makes. In a project's namespace, missing "
    "(each of `owners` and `viewers` on its own): the project's `defaults.acl`."
)
