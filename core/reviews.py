"""The kinds of review and the states of a double review, and which review is the verdict.

A blind second verdict (``qc``) measures agreement between reviewers; it never replaces the
primary verdict. An adjudication is an admin's ruling on a disputed pair and does count. A revision is
a verdict changed later by its reviewer or an admin: it is the verdict from then on, and what it
replaced stays in the history."""

from __future__ import annotations

from enum import StrEnum


class ReviewKind(StrEnum):
    PRIMARY = "primary"
    QC = "qc"
    ADJUDICATION = "adjudication"
    REVISION = "revision"


class QCState(StrEnum):
    """Where a pick stands in double review (None on the pick means single review)."""

    WAITING = "waiting"
    AGREED = "agreed"
    DISPUTED = "disputed"
    RESOLVED = "resolved"


def counts_as_verdict(kind: str) -> bool:
    """Whether a review of this kind is (or may be) the output's verdict."""
    return kind != ReviewKind.QC
