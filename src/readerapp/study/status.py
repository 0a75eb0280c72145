"""The study's states as enums. Each value is the string already stored in databases, files and
the audit trail, so rows written before the enums existed read back unchanged (a ``StrEnum``
compares equal to its string)."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    """Where a case stands: being read, two signed reads agree or not, or adjudicated."""

    READING = "reading"
    CONCORDANT = "concordant"
    DISCORDANT = "discordant"
    ADJUDICATED = "adjudicated"


#: Cases an adjudicator may open: waiting for adjudication, or adjudicated.
ADJUDICATION_STATUSES = (CaseStatus.DISCORDANT, CaseStatus.ADJUDICATED)


class ReadStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


class ReadKind(StrEnum):
    """An independent reader's read, or an adjudicator's corrected final read."""

    READ = "read"
    ADJUDICATION = "adjudication"


class WorklistStatus(StrEnum):
    """A case on a reader's worklist, as that reader sees it."""

    NEW = "new"
    IN_PROGRESS = "in progress"
    SIGNED = "signed"


class AdjudicationState(StrEnum):
    """A case on the adjudicator's worklist."""

    PENDING = "pending"
    ADJUDICATED = "adjudicated"
