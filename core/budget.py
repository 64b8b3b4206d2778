"""A queue's daily budget: when its day starts, how many picks it may take now, and whether that is
worth a selection run."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta


def start_of_day(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: a queue's daily budget counts picks from here."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def start_of_week(now: datetime) -> datetime:
    """Monday midnight UTC of ``now``'s week."""
    day = start_of_day(now)
    return day - timedelta(days=day.weekday())


def open_slots(*, budget_per_day: int, picked_today: int, backlog_limit: int, waiting: int) -> int:
    """How many items may be added now: what is left of today's budget, within the backlog limit."""
    return max(0, min(budget_per_day - picked_today, backlog_limit - waiting))


def worth_selecting(*, slots: int, waiting: int, budget_left: int, batch: int) -> bool:
    """Select when a batch of slots is open (or the queue ran dry, or the day's budget has fewer left):
    a batch is clustered and audited as a whole, where one slot at a time would get no audit pick."""
    if slots <= 0:
        return False
    return waiting == 0 or slots >= min(max(batch, 1), budget_left)


def audit_share_for(base: float, *, reviews: int, needed: int, cap: float) -> float:
    """The audit share when ``needed`` more audit reviews are wanted (for a narrow enough
    interval): as much of a day's ``reviews`` as they need, never below ``base`` nor above ``cap``."""
    if needed <= 0 or reviews <= 0:
        return base
    return max(base, min(cap, needed / reviews))


def routing_budget(budget_per_day: int, audit_share: float) -> int:
    """Picks routing may take in a day: the budget less the audit's share of it, reviewed at the
    audit's turns (``round(share x budget)``, at least one from a budget of two up)."""
    if budget_per_day <= 0 or audit_share <= 0:
        return max(budget_per_day, 0)
    a = round(audit_share * budget_per_day)
    return budget_per_day - min(budget_per_day, max(a, 1) if budget_per_day >= 2 else a)


def audit_turn(reviewed: int, share: float) -> bool:
    """Whether the review after ``reviewed`` others today is the audit's: turns come round so that
    ``share`` of the day's reviews are the audit's at every point (every tenth at 10%; at 37%, 37 of
    each hundred, evenly spread), never more than one review early or late."""
    if share <= 0:
        return False
    eps = 1e-9
    return math.floor((reviewed + 1) * share + eps) > math.floor(reviewed * share + eps)
