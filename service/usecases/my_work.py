"""A reviewer's own work: the verdicts they gave (filtered), their counts today and this week, what is
left of each queue's day, and revising a past verdict as a new one with its history kept.

Each takes the session, the settings and who is acting; none commits (the route owns the
transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from core.budget import start_of_day, start_of_week
from service.auth import Permission, Principal
from service.domain_workbench import BudgetLeft, MyReview, MyWork, VerdictIn
from service.errors import Forbidden
from service.settings import Settings
from service.storage import history, promotion_rules
from service.storage.tables import Review, utcnow
from service.usecases.queues import queue_view
from service.usecases.workbench import checked
from service.views import review_view

Period = Literal["today", "week", "all"]


def since(period: Period, now: datetime) -> datetime | None:
    if period == "today":
        return start_of_day(now)
    if period == "week":
        return start_of_week(now)
    return None


def my_work(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    verdict: str | None = None,
    queue: str | None = None,
    period: Period = "all",
    limit: int = 200,
) -> MyWork:
    """This person's reviews with the filters, their counts, and each queue's day."""
    user_id = principal.user_id
    if user_id is None:
        raise Forbidden("only a signed-in person has their own work; an API key has none")
    now = utcnow()
    rows = history.reviews_by(
        session, user_id=user_id, verdict=verdict, queue=queue, since=since(period, now), limit=limit
    )
    current = history.current_verdicts(session, output_ids=sorted({o.id for _, o in rows}))
    today = start_of_day(now)
    budgets = [
        BudgetLeft(
            queue=q.name,
            budget_per_day=q.budget_per_day,
            reviewed_today=q.reviewed_today,
            left_today=max(0, q.budget_per_day - q.reviewed_today),
            waiting=q.waiting,
        )
        for q in (queue_view(session, config) for config in settings.queues)
    ]
    return MyWork(
        reviewer=principal.name,
        today=history.count_by(session, user_id=user_id, since=today),
        this_week=history.count_by(session, user_id=user_id, since=start_of_week(now)),
        budgets=budgets,
        reviews=[
            MyReview(
                review=review_view(review),
                prompt=output.prompt,
                response=output.response,
                current=current.get(output.id) == review.id,
            )
            for review, output in rows
        ],
    )


def may_revise(session: Session, principal: Principal, *, output_id: str) -> bool:
    """Whether this person may revise the output's verdict (what ``revise`` enforces): it has one,
    and they gave one of its verdicts or they are an admin."""
    if not principal.can(Permission.review):
        return False
    authors = history.verdict_authors(session, output_id=output_id)
    return bool(authors) and (principal.can(Permission.adjudicate) or principal.user_id in authors)


def revise(
    session: Session, settings: Settings, principal: Principal, *, output_id: str, submitted: VerdictIn
) -> Review:
    """Revise an output's verdict (its reviewer, or an admin): a new verdict, the old one kept in the
    history; collections the old verdict was promoted into get a version without it, and the
    promotion rules apply to the new one."""
    now = utcnow()
    review, replaced = history.revise_verdict(
        session,
        output_id=output_id,
        user_id=principal.user_id,
        reviewer=principal.name,
        verdict=checked(submitted, settings),
        now=now,
        may_revise_any=principal.can(Permission.adjudicate),
    )
    promotion_rules.withdraw_review(session, review_id=replaced.id, now=now)
    promotion_rules.apply_rules(session, review_id=review.id, now=now)
    return review
