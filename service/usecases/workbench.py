"""The review workbench's use cases, shared by the REST API and the review pages.

Each takes the session, the settings and who is acting; none commits (the route owns the
transaction). Permission checks happen in the route dependencies before these are called.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from core import agreement
from service.auth import Principal
from service.domain_workbench import (
    CategoryAgreement,
    PairAgreement,
    QcReport,
    VerdictIn,
    verdict_from,
)
from service.settings import QueueConfig, Settings
from service.storage import promotion_rules, quality, reviewing
from service.storage import queues as queues_repo
from service.storage.filters import ItemFilter
from service.storage.tables import Pick, Review, utcnow
from service.views import agreement_view


def lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.claim_lease_seconds)


def claim_next(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    queue: QueueConfig,
    after: str | None = None,
    item_filter: ItemFilter | None = None,
) -> Pick | None:
    """Claim the next item of a queue for this reviewer: blind second reviews first, then the most
    likely failures, with the audit's turns (an audit pick, in the audit's random order) at
    the share the latest selection drew with (raised while the traffic drifts or the interval is
    wider than the queue's ``target_width``)."""
    share = queues_repo.current_audit_share(session, queue=queue.name)
    share = queue.audit_share if share is None else share
    return reviewing.claim_next(
        session,
        queue=queue.name,
        user_id=principal.id,
        now=utcnow(),
        lease=lease(settings),
        after=after,
        audit_share=share,
        item_filter=item_filter,
    )


def checked(submitted: VerdictIn, settings: Settings) -> VerdictIn:
    """A submitted verdict checked against the taxonomy (422 otherwise), blanks made None."""
    return verdict_from(
        verdict=submitted.verdict,
        categories=submitted.categories,
        correction=submitted.correction,
        note=submitted.note,
        taxonomy=settings.failure_categories,
    )


def record(
    session: Session, settings: Settings, principal: Principal, *, output_id: str, submitted: VerdictIn
) -> Review:
    """Record this reviewer's verdict (first or blind second) after checking it against the taxonomy,
    and promote it wherever a promotion rule says."""
    now = utcnow()
    review = reviewing.record_verdict(
        session,
        output_id=output_id,
        user_id=principal.user_id,
        reviewer=principal.name,
        verdict=checked(submitted, settings),
        now=now,
        qc_share=settings.qc_share,
    )
    promotion_rules.apply_rules(session, review_id=review.id, now=now)
    return review


def undo(session: Session, settings: Settings, principal: Principal) -> Review:
    """Take back this reviewer's latest verdict; the item is claimed for them again, and the
    collections it was promoted into get a new version without it."""
    now = utcnow()
    review = reviewing.undo_last(
        session,
        user_id=principal.user_id or "",
        now=now,
        window=timedelta(minutes=settings.undo_minutes),
        lease=lease(settings),
    )
    promotion_rules.withdraw_review(session, review_id=review.id, now=now)
    return review


def adjudicate(
    session: Session, settings: Settings, principal: Principal, *, output_id: str, submitted: VerdictIn
) -> Review:
    """An admin's ruling on a disputed double review; promoted like any verdict."""
    now = utcnow()
    review = quality.adjudicate(
        session,
        output_id=output_id,
        user_id=principal.user_id or "",
        reviewer=principal.name,
        verdict=checked(submitted, settings),
        now=now,
    )
    promotion_rules.apply_rules(session, review_id=review.id, now=now)
    return review


def qc_report(session: Session, settings: Settings, *, queue: str | None = None) -> QcReport:
    """Agreement of blind double reviews: overall, per reviewer pair and per failure category."""
    doubles = [
        agreement.DoubleReview(
            first=first.reviewer,
            second=second.reviewer,
            first_verdict=first.verdict,
            second_verdict=second.verdict,
            first_categories=frozenset(first.categories or []),
            second_categories=frozenset(second.categories or []),
        )
        for first, second in quality.double_reviews(session, queue=queue)
    ]
    return QcReport(
        qc_share=settings.qc_share,
        waiting=quality.count_qc_waiting(session, queue=queue),
        disputed=quality.count_disputed(session),
        overall=agreement_view(agreement.overall(doubles)),
        pairs=[
            PairAgreement(reviewers=pair, **agreement_view(a).model_dump())
            for pair, a in agreement.by_pair(doubles).items()
        ],
        categories=[
            CategoryAgreement(category=c, **agreement_view(a).model_dump())
            for c, a in agreement.by_category(doubles, settings.failure_categories).items()
        ],
    )
