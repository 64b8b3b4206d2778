"""Repository functions for the review workbench: claims with leases, verdicts, skips, undo,
double review and adjudication.

A pick is *open* while it needs a verdict: a first one (``reviewed_at`` is null) or a blind second
one (``qc_state == "waiting"``). Claiming an item holds it for ``lease`` (looking at it does not);
a claim is a conditional UPDATE, so two reviewers never hold the same item, and an expired lease
frees it again. The session comes first, keyword-only arguments after, and nothing commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core.budget import audit_turn, start_of_day
from core.reviews import QCState, ReviewKind
from service.domain import OutputStatus
from service.domain_workbench import VerdictIn
from service.errors import Conflict, NotFound
from service.storage import filters
from service.storage.filters import ItemFilter
from service.storage.history import add_review
from service.storage.repository import get_output
from service.storage.tables import Output, Pick, Review, Skip, User

Mode = Literal["review", "second_review", "reviewed", "not_queued", "unscored"]


@dataclass(frozen=True)
class Claim:
    """What opening an item gave this reviewer."""

    mode: Mode  # what the item needs from this reviewer
    pick: Pick | None
    held: bool  # this reviewer now holds the lease
    holder: str | None = None  # another reviewer's name when they hold it
    until: datetime | None = None


def qc_selected(output_id: str, share: float) -> bool:
    """Whether an item goes to a second reviewer: a stable draw from its id, so a retry agrees."""
    draw = int(hashlib.sha256(f"qc:{output_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return draw < share


def _free_for(user_id: str, now: datetime) -> ColumnElement[bool]:
    return or_(Pick.claimed_by.is_(None), Pick.claimed_until < now, Pick.claimed_by == user_id)


def _not_skipped_by(user_id: str) -> ColumnElement[bool]:
    return ~exists().where(Skip.output_id == Pick.output_id, Skip.user_id == user_id)


def _not_reviewed_by(user_id: str) -> ColumnElement[bool]:
    return ~exists().where(Review.output_id == Pick.output_id, Review.reviewer_id == user_id)


def _take(session: Session, *, pick_id: str, user_id: str, now: datetime, lease: timedelta) -> bool:
    result = session.execute(
        update(Pick)
        .where(Pick.id == pick_id, _free_for(user_id, now))
        .values(claimed_by=user_id, claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def primary_review(session: Session, *, output_id: str) -> Review | None:
    """The first reviewer's verdict on an output (the latest one, if it was reviewed again)."""
    return session.scalars(
        select(Review)
        .where(Review.output_id == output_id, Review.kind == ReviewKind.PRIMARY.value)
        .order_by(Review.created_at.desc())
        .limit(1)
    ).first()


def _mode(session: Session, output: Output, pick: Pick | None, user_id: str) -> Mode:
    if output.status == OutputStatus.received.value:
        return "unscored"
    if pick is None:
        return "not_queued"
    if pick.reviewed_at is None:
        return "review"
    if pick.qc_state == QCState.WAITING:
        first = primary_review(session, output_id=output.id)
        if first is None or first.reviewer_id != user_id:
            return "second_review"
    return "reviewed"


def owes_second_review(session: Session, *, output: Output, user_id: str) -> bool:
    """Whether this reviewer is one who may give the item its blind second verdict (and so must not
    see the first)."""
    pick = session.scalars(select(Pick).where(Pick.output_id == output.id)).one_or_none()
    return _mode(session, output, pick, user_id) == "second_review"


def open_item(
    session: Session,
    *,
    output_id: str,
    user_id: str | None,
    now: datetime,
    lease: timedelta,
    take: bool = True,
) -> Claim:
    """What an item needs from this reviewer and who holds it. With ``take`` a reviewer
    (``user_id``) claims an open item if it is free; without, opening it only looks."""
    output = get_output(session, output_id=output_id)
    pick = session.scalars(select(Pick).where(Pick.output_id == output_id)).one_or_none()
    if user_id is None:
        return Claim(mode=_mode(session, output, pick, ""), pick=pick, held=False)
    mode = _mode(session, output, pick, user_id)
    if pick is None or mode not in ("review", "second_review"):
        return Claim(mode=mode, pick=pick, held=False)
    if take:
        _take(session, pick_id=pick.id, user_id=user_id, now=now, lease=lease)
        session.refresh(pick)
    if pick.claimed_by is None or pick.claimed_until is None or pick.claimed_until <= now:
        return Claim(mode=mode, pick=pick, held=False)
    if pick.claimed_by == user_id:
        return Claim(mode=mode, pick=pick, held=True, until=pick.claimed_until)
    holder = session.get(User, pick.claimed_by)
    return Claim(
        mode=mode,
        pick=pick,
        held=False,
        holder=holder.username if holder else "someone",
        until=pick.claimed_until,
    )


def claim_next(
    session: Session,
    *,
    queue: str,
    user_id: str,
    now: datetime,
    lease: timedelta,
    after: str | None = None,
    audit_share: float = 0.0,
    item_filter: ItemFilter | None = None,
) -> Pick | None:
    """Claim the next item this reviewer should see: a lease they already hold, then items waiting
    for a blind second verdict (oldest first), then unreviewed items, most likely failures first,
    except that the audit's turns (``budget.audit_turn``) go to audit members in the audit's random
    order (``selection.review_ranks``), so the audit is reviewed at its share, as a random part. A
    member routing chose too is served in routing's order; a claim in routing's order passes the
    members routing chose above it (``_pass``). With ``after`` (the item the reviewer leaves without
    a verdict) its lease is released and the walk continues below it in queue order, wrapping round.
    With ``item_filter`` only the items it keeps are given, and never an audit member's turn.
    """
    base = [Pick.queue == queue, _not_skipped_by(user_id), *filters.conditions(session, item_filter)]
    current = None
    if after is not None:
        release(session, output_id=after, user_id=user_id)
        base.append(Pick.output_id != after)
        current = session.scalars(select(Pick).where(Pick.output_id == after)).one_or_none()
    held = session.scalars(
        select(Pick)
        .where(*base, Pick.claimed_by == user_id, Pick.claimed_until >= now)
        .where(or_(Pick.reviewed_at.is_(None), Pick.qc_state == QCState.WAITING.value))
        .order_by(Pick.claimed_until)
        .limit(1)
    ).first()
    if held is not None:
        return held
    second = (
        select(Pick.id)
        .where(
            *base, Pick.qc_state == QCState.WAITING.value, _free_for(user_id, now), _not_reviewed_by(user_id)
        )
        .order_by(Pick.reviewed_at)
    )
    unreviewed = select(Pick.id).where(*base, Pick.reviewed_at.is_(None), _free_for(user_id, now))
    routed = unreviewed.where(Pick.in_routing).order_by(_rank().desc(), Pick.picked_at, Pick.id)
    # Turns take members routing chose too: unpassed, they are in the unknown part (see core.estimate).
    audit = unreviewed.where(Pick.stratum == "audit").order_by(
        Pick.queue_rank.desc().nulls_last(), Pick.picked_at, Pick.id
    )
    if current is not None and current.reviewed_at is None:
        rounds = [second, routed.where(_below(current)), routed, audit]
    elif audit_share > 0 and audit_turn(_reviewed_in(session, queue, now), audit_share):
        rounds = [second, audit, routed]
    else:
        rounds = [second, routed, audit]
    if item_filter is not None and item_filter.active:
        # A filtered walk would choose which members it meets: the audit's are left to unfiltered claims.
        rounds = [r for r in rounds if r is not audit]
    for candidates in rounds:
        # A few candidates per round: a concurrent reviewer may take the first ones meanwhile.
        for _ in range(3):
            ids = list(session.scalars(candidates.limit(8)))
            if not ids:
                break
            for pick_id in ids:
                if _take(session, pick_id=pick_id, user_id=user_id, now=now, lease=lease):
                    pick = session.get(Pick, pick_id, populate_existing=True)
                    if pick is not None and candidates is not second and candidates is not audit:
                        _pass(session, pick=pick, now=now)
                    return pick
    return None


def _pass(session: Session, *, pick: Pick, now: datetime) -> None:
    """Routing's score order has reached ``pick``: it, if an audit member routing chose, and the
    reviewed audit members routing chose that rank at or above it are passed. Their verdicts are
    routing's now (``core.estimate``), as they would be without the audit."""
    session.execute(
        update(Pick)
        .where(
            Pick.queue == pick.queue,
            Pick.routed_at.is_not(None),
            Pick.passed_at.is_(None),
            or_(Pick.id == pick.id, and_(Pick.reviewed_at.is_not(None), _rank() >= _rank_of(pick))),
        )
        .values(passed_at=now)
        .execution_options(synchronize_session=False)
    )


def _rank_of(pick: Pick) -> float:
    return -1.0 if pick.score is None else pick.score


def _reviewed_in(session: Session, queue: str, now: datetime) -> int:
    """How many of the queue's picks got their first verdict today (UTC), for the audit's turns.
    Today's only: the whole history would be a scan of every pick the queue had, on each claim."""
    today = start_of_day(now)
    return (
        session.scalar(
            select(func.count()).select_from(Pick).where(Pick.queue == queue, Pick.reviewed_at >= today)
        )
        or 0
    )


def _rank() -> ColumnElement[float]:
    """A pick's place in queue order: its score, with unscored picks last."""
    return func.coalesce(Pick.score, -1.0)


def _below(pick: Pick) -> ColumnElement[bool]:
    """Picks after this one in queue order (score descending, then oldest pick, then id)."""
    current = _rank_of(pick)
    rank = _rank()
    return or_(
        rank < current,
        and_(rank == current, Pick.picked_at > pick.picked_at),
        and_(rank == current, Pick.picked_at == pick.picked_at, Pick.id > pick.id),
    )


def release(session: Session, *, output_id: str, user_id: str) -> None:
    """Give up this reviewer's lease on an item, if they hold it."""
    session.execute(
        update(Pick)
        .where(Pick.output_id == output_id, Pick.claimed_by == user_id)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def skip(session: Session, *, output_id: str, user_id: str, now: datetime) -> None:
    """This reviewer passes on an item: the lease is released and they are not shown it again."""
    get_output(session, output_id=output_id)
    release(session, output_id=output_id, user_id=user_id)
    if session.get(Skip, (output_id, user_id)) is None:
        session.add(Skip(output_id=output_id, user_id=user_id, created_at=now))
        session.flush()


def _check_lease(session: Session, pick: Pick, user_id: str, now: datetime) -> None:
    if pick.claimed_by not in (None, user_id) and pick.claimed_until is not None and pick.claimed_until > now:
        holder = session.get(User, pick.claimed_by)
        name = holder.username if holder else "someone"
        raise Conflict(
            f"{name} is reviewing this item (their claim runs until {pick.claimed_until:%H:%M:%S} UTC)",
            details={"holder": name, "claimed_until": pick.claimed_until.isoformat()},
        )


def record_verdict(
    session: Session,
    *,
    output_id: str,
    user_id: str | None,
    reviewer: str,
    verdict: VerdictIn,
    now: datetime,
    qc_share: float,
) -> Review:
    """Record a first or a blind second verdict; refuses an item another reviewer holds."""
    output = get_output(session, output_id=output_id)
    pick = session.scalars(select(Pick).where(Pick.output_id == output_id)).one_or_none()
    mode = _mode(session, output, pick, user_id or "")
    if mode == "unscored":
        raise Conflict(
            "this output is not scored yet; review it once it has been scored",
            details={"id": output.id, "status": output.status},
        )
    if mode == "reviewed":
        raise Conflict(
            "this item already has its verdict; undo it, or an admin can adjudicate",
            details={"id": output.id},
        )
    kind = ReviewKind.QC if mode == "second_review" else ReviewKind.PRIMARY
    if pick is not None:
        _check_lease(session, pick, user_id or "", now)
        pick.claimed_by, pick.claimed_until = None, None
        if kind == ReviewKind.PRIMARY:
            pick.reviewed_at = now
            pick.qc_state = QCState.WAITING.value if qc_selected(output.id, qc_share) else None
        else:
            first = primary_review(session, output_id=output.id)
            agree = first is not None and first.verdict == verdict.verdict
            pick.qc_state = (QCState.AGREED if agree else QCState.DISPUTED).value
    elif primary_review(session, output_id=output.id) is not None:
        # A curator may judge an output no queue picked (to collect it): the verdict has no queue,
        # so it reaches collections and exports but never a queue's estimate.
        raise Conflict("this output already has its verdict", details={"id": output.id})
    output.status = OutputStatus.reviewed.value
    review = add_review(
        session,
        output_id=output.id,
        queue=pick.queue if pick is not None else None,
        verdict=verdict,
        reviewer=reviewer,
        user_id=user_id,
        kind=kind,
        at=now,
    )
    return review


def undo_last(
    session: Session, *, user_id: str, now: datetime, window: timedelta, lease: timedelta
) -> Review:
    """Take back this reviewer's latest verdict within the window; the item is theirs again.

    Returns the removed review (detached). A verdict someone else has built on (a second review or
    an adjudication) cannot be undone.
    """
    review = session.scalars(
        select(Review)
        .where(
            Review.reviewer_id == user_id,
            Review.kind.in_((ReviewKind.PRIMARY.value, ReviewKind.QC.value)),
            Review.created_at >= now - window,
        )
        .order_by(Review.created_at.desc())
        .limit(1)
    ).first()
    if review is None:
        raise NotFound("you have no verdict from the last few minutes to undo")
    later = session.scalar(
        select(func.count())
        .select_from(Review)
        .where(Review.output_id == review.output_id, Review.created_at > review.created_at)
    )
    if later:
        raise Conflict("another reviewer has judged this item since; ask an admin to adjudicate")
    pick = session.scalars(select(Pick).where(Pick.output_id == review.output_id)).one_or_none()
    output = get_output(session, output_id=review.output_id)
    if pick is not None:
        if review.kind == ReviewKind.PRIMARY:
            pick.reviewed_at, pick.qc_state = None, None
            output.status = OutputStatus.queued.value
        else:
            pick.qc_state = QCState.WAITING.value
        pick.claimed_by, pick.claimed_until = user_id, now + lease
    elif review.kind == ReviewKind.PRIMARY:
        output.status = OutputStatus.scored.value
    session.delete(review)
    session.flush()
    session.expunge(review)
    return review


def reviewer_progress(session: Session, *, queue: str, since: datetime) -> list[tuple[str, int]]:
    """Verdicts per reviewer in a queue since a moment (today, for the queue list)."""
    rows = session.execute(
        select(Review.reviewer, func.count())
        .where(Review.queue == queue, Review.created_at >= since)
        .group_by(Review.reviewer)
        .order_by(func.count().desc())
    )
    return [(str(name), int(n)) for name, n in rows]


def forget_skips(session: Session, *, user_id: str) -> int:
    """Show a reviewer the items they skipped again."""
    result = session.execute(delete(Skip).where(Skip.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
