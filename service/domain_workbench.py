"""Pydantic models of the review workbench: claims, undo, double-review agreement, adjudication.

No I/O here. ``verdict_from`` checks a verdict's categories against the configured taxonomy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.domain import MAX_TEXT_CHARS, ReviewView, Verdict
from service.domain_queues import QueueItem
from service.errors import ValidationFailed
from service.hygiene import CleanInput


@dataclass(frozen=True)
class VerdictIn:
    """A verdict as submitted (form or API); ``verdict_from`` checks it before it is recorded."""

    verdict: str
    categories: list[str]
    correction: str | None
    note: str | None


class ClaimView(BaseModel):
    """An item handed to a reviewer: theirs until ``claimed_until``; ``mode`` says which verdict."""

    item: QueueItem
    mode: Literal["review", "second_review"]
    claimed_until: datetime


class AdjudicationIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    categories: list[str] = Field(default_factory=list, max_length=20)
    correction: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    note: str | None = Field(default=None, max_length=10_000)


class AgreementView(BaseModel):
    items: int
    agreed: int
    percent: float | None = Field(description="Share of items on which both verdicts agree.")
    kappa: float | None = Field(description="Cohen's kappa; null when undefined (one label only).")


class PairAgreement(AgreementView):
    reviewers: tuple[str, str]


class CategoryAgreement(AgreementView):
    category: str


class QcReport(BaseModel):
    """How often blind second reviews agree with the first: overall, per pair, per category."""

    qc_share: float
    waiting: int = Field(description="Items waiting for their blind second verdict.")
    disputed: int = Field(description="Disagreements waiting for an admin in the adjudication queue.")
    overall: AgreementView
    pairs: list[PairAgreement]
    categories: list[CategoryAgreement]


def verdict_from(
    *,
    verdict: Verdict | str,
    categories: list[str],
    correction: str | None,
    note: str | None,
    taxonomy: list[str],
) -> VerdictIn:
    """A verdict ready to store; unknown categories, or categories on a pass, are refused (422)."""
    cleaned = sorted({c.strip().lower() for c in categories if c.strip()})
    unknown = [c for c in cleaned if c not in taxonomy]
    if unknown:
        raise ValidationFailed(
            f"unknown failure categories: {', '.join(unknown)}",
            details={"unknown": unknown, "allowed": taxonomy},
        )
    try:
        value = Verdict(verdict).value
    except ValueError as exc:
        raise ValidationFailed("a verdict is 'pass' or 'fail'", details={"verdict": str(verdict)}) from exc
    if value == Verdict.passed and cleaned:
        raise ValidationFailed(
            "failure categories belong to a failing verdict", details={"categories": cleaned}
        )
    return VerdictIn(
        verdict=value,
        categories=cleaned,
        correction=correction if correction is not None and correction.strip() else None,
        note=note.strip() if note is not None and note.strip() else None,
    )


class MyReview(BaseModel):
    """One of a reviewer's own reviews, with what it was about."""

    review: ReviewView
    prompt: str
    response: str
    current: bool = Field(description="Whether this review is the output's verdict now (not revised since).")


class BudgetLeft(BaseModel):
    """A queue's day: its daily budget, reviews given today by everyone, and what is left."""

    queue: str
    budget_per_day: int
    reviewed_today: int
    left_today: int
    waiting: int


class MyWork(BaseModel):
    """A reviewer's own reviews (newest first, filtered), their counts today and this week (UTC, the
    week from Monday), and what is left of each queue's day."""

    reviewer: str
    today: int
    this_week: int
    budgets: list[BudgetLeft]
    reviews: list[MyReview]
