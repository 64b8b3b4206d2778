"""Repository functions for promotion: by hand, in bulk from a filter, by rules as verdicts are
recorded or over the history, and withdrawal when a verdict is undone.

Each operation makes at most one new version per collection it changes (``collections.freeze``).
The session comes first, keyword-only arguments after, and nothing commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import promotion
from service.errors import Conflict, NotFound
from service.settings import Settings
from service.storage import collections as store
from service.storage import staging
from service.storage.repository import get_output, latest_verdicts, verdict_review
from service.storage.tables import (
    Collection,
    CollectionEntry,
    CollectionVersion,
    Output,
    PromotionRule,
    Review,
    new_id,
)

# --- promotion -----------------------------------------------------------------------------------


def promote(
    session: Session,
    *,
    name: str,
    output_ids: Sequence[str],
    by: str | None,
    now: datetime,
    settings: Settings,
    note: str | None = None,
) -> CollectionVersion | None:
    """Promote outputs (their verdicts) into a collection by hand; None when all were there already."""
    staging.cut_pending(session, now=now, settings=settings, by=by)
    collection = store.get_collection(session, name=name)
    entries = []
    for output_id in dict.fromkeys(output_ids):
        review = verdict_review(session, output_id=get_output(session, output_id=output_id).id)
        if review is None:
            raise Conflict(
                f"output {output_id!r} has no verdict yet; review it first", details={"id": output_id}
            )
        entries.append(
            store.entry_for(session, collection=collection, review=review, by=by, rule=None, now=now)
        )
    made = store.freeze(
        session,
        [store.Change(collection, add=entries)],
        policy=store.LeakagePolicy.from_settings(settings),
        by=by,
        note=note or f"promoted {len(entries)} by hand",
        now=now,
    )
    return made[0] if made else None


def remove(
    session: Session,
    *,
    name: str,
    output_ids: Sequence[str],
    by: str | None,
    now: datetime,
    settings: Settings,
) -> CollectionVersion | None:
    """A new version without these outputs' items; None when none was there."""
    staging.cut_pending(session, now=now, settings=settings, by=by)
    collection = store.get_collection(session, name=name)
    gone = set(
        session.scalars(
            select(CollectionEntry.id).where(
                CollectionEntry.collection_id == collection.id,
                CollectionEntry.output_id.in_(list(output_ids)),
            )
        )
    )
    made = store.freeze(
        session,
        [store.Change(collection, remove=gone)],
        policy=store.LeakagePolicy.from_settings(settings),
        by=by,
        note=f"removed {len(set(output_ids))} by hand",
        now=now,
    )
    return made[0] if made else None


def refresh(
    session: Session, *, name: str, by: str | None, now: datetime, settings: Settings
) -> CollectionVersion:
    """A new version with the same items, its leakage checked again against the other side today."""
    staging.cut_pending(session, now=now, settings=settings, by=by)
    collection = store.get_collection(session, name=name)
    made = store.freeze(
        session,
        [store.Change(collection, force=True)],
        policy=store.LeakagePolicy.from_settings(settings),
        by=by,
        note="leakage checked again",
        now=now,
    )
    return made[0]


def _rules(session: Session) -> list[tuple[promotion.Rule, Collection]]:
    rows = session.execute(
        select(PromotionRule, Collection)
        .join(Collection, Collection.id == PromotionRule.collection_id)
        .where(PromotionRule.active.is_(True))
    )
    return [
        (promotion.Rule(r.name, c.name, promotion.RuleCondition.model_validate(r.condition), r.active), c)
        for r, c in rows
    ]


def _facts(review: Review, output: Output) -> promotion.ReviewFacts:
    return promotion.ReviewFacts(
        kind=review.kind,
        verdict=review.verdict,
        categories=review.categories or [],
        correction=review.correction,
        queue=review.queue or output.queue,
        app=output.app,
        model=output.model,
    )


def _rule_changes(
    session: Session, reviews: Sequence[Review], *, rule_names: set[str] | None, now: datetime
) -> dict[str, store.Change]:
    rules = [(r, c) for r, c in _rules(session) if rule_names is None or r.name in rule_names]
    by_name = {r.name: c for r, c in rules}
    changes: dict[str, store.Change] = {}
    for review in reviews:
        if not review.counts_as_verdict:
            continue
        output = get_output(session, output_id=review.output_id)
        targets = {
            by_name[rule.name].id: (by_name[rule.name], rule.name)
            for rule in promotion.matching_rules([r for r, _ in rules], _facts(review, output))
        }
        for cid, (collection, rule_name) in sorted(targets.items()):
            entry = store.entry_for(
                session, collection=collection, review=review, by=None, rule=rule_name, now=now
            )
            changes.setdefault(cid, store.Change(collection)).add.append(entry)
        _follow_adjudication(session, review, changes, now=now)
    return changes


def _follow_adjudication(
    session: Session, review: Review, changes: dict[str, store.Change], *, now: datetime
) -> None:
    """A later verdict replaces an earlier one wherever that was promoted: the new content when the
    verdict stayed the same, removal when it flipped (the promoted case no longer holds)."""
    earlier = session.scalars(
        select(CollectionEntry).where(
            CollectionEntry.output_id == review.output_id, CollectionEntry.review_id != review.id
        )
    )
    for old in earlier:
        collection = session.get_one(Collection, old.collection_id)
        if old.id not in staging.current_entry_ids(session, collection):
            continue
        change = changes.setdefault(collection.id, store.Change(collection))
        if old.provenance.get("verdict") == review.verdict:
            if all(e.review_id != review.id for e in change.add):
                rule = old.provenance.get("rule")
                by = old.provenance.get("promoted_by")
                change.add.append(
                    store.entry_for(session, collection=collection, review=review, by=by, rule=rule, now=now)
                )
        else:
            change.remove.add(old.id)


def apply_rules(session: Session, *, review_id: str, now: datetime) -> list[str]:
    """Stage a just-recorded verdict's promotions wherever an active rule says (call it in the
    verdict's transaction; ``staging.cut_pending`` makes the versions). A blind second verdict
    promotes nothing. Returns the collections that gained staged changes."""
    review = session.get(Review, review_id)
    if review is None:
        raise NotFound(f"no review with id {review_id!r}", details={"id": review_id})
    changes = _rule_changes(session, [review], rule_names=None, now=now)
    return staging.stage(session, changes.values(), now=now)


def rerun_rules(
    session: Session, *, now: datetime, settings: Settings, by: str | None, rules: Sequence[str] | None = None
) -> list[CollectionVersion]:
    """Apply the active rules (or these ones) to every verdict on record: one new version per
    collection that gains items, none where nothing changes."""
    staging.cut_pending(session, now=now, settings=settings, by=by)
    reviews = [
        r
        for r in session.scalars(
            select(Review).where(Review.counts_as_verdict).order_by(Review.created_at, Review.id)
        )
        if (v := verdict_review(session, output_id=r.output_id)) is not None and v.id == r.id
    ]
    changes = _rule_changes(session, reviews, rule_names=set(rules) if rules is not None else None, now=now)
    return store.freeze(
        session,
        changes.values(),
        policy=store.LeakagePolicy.from_settings(settings),
        by=by,
        note=f"rules re-run over {len(reviews)} verdicts",
        now=now,
    )


def withdraw_review(session: Session, *, review_id: str, now: datetime) -> list[str]:
    """A review was undone: every collection that holds it (or has it staged) stages its removal,
    so the next version is without it (older versions keep it: they are immutable)."""
    entries = list(session.scalars(select(CollectionEntry).where(CollectionEntry.review_id == review_id)))
    changes = []
    for entry in entries:
        collection = session.get_one(Collection, entry.collection_id)
        if entry.id in staging.current_entry_ids(session, collection):
            changes.append(store.Change(collection, remove={entry.id}))
    return staging.stage(session, changes, now=now)


# --- bulk promotion ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictFilter:
    """Which verdicts a bulk promotion takes: every part that is set must hold."""

    queue: str | None = None
    verdict: str | None = None
    category: str | None = None
    app: str | None = None
    reviewed_from: datetime | None = None
    reviewed_to: datetime | None = None  # exclusive


def matching_verdicts(session: Session, *, where: VerdictFilter, limit: int) -> list[tuple[Review, Output]]:
    """Verdicts (latest first reviews or adjudications) that meet the filter, newest first."""
    latest = latest_verdicts()
    stmt = (
        select(Review, Output)
        .join(latest, (latest.c.output_id == Review.output_id) & (latest.c.at == Review.created_at))
        .join(Output, Output.id == Review.output_id)
        .where(Review.counts_as_verdict)
    )
    if where.queue is not None:
        stmt = stmt.where(Review.queue == where.queue)
    if where.verdict is not None:
        stmt = stmt.where(Review.verdict == where.verdict)
    if where.app is not None:
        stmt = stmt.where(Output.app == where.app)
    if where.reviewed_from is not None:
        stmt = stmt.where(Review.created_at >= where.reviewed_from)
    if where.reviewed_to is not None:
        stmt = stmt.where(Review.created_at < where.reviewed_to)
    rows = session.execute(stmt.order_by(Review.created_at.desc(), Review.id))
    # Categories live in a JSON list; filtering here keeps one query for both backends.
    found = [(r, o) for r, o in rows if where.category is None or where.category in (r.categories or [])]
    return found[:limit]


def promote_matching(
    session: Session,
    *,
    name: str,
    where: VerdictFilter,
    limit: int,
    by: str | None,
    now: datetime,
    settings: Settings,
) -> tuple[int, CollectionVersion | None]:
    """Promote every verdict the filter matches (at most ``limit``) in one new version."""
    found = matching_verdicts(session, where=where, limit=limit)
    version = promote(
        session,
        name=name,
        output_ids=[o.id for _, o in found],
        by=by,
        now=now,
        settings=settings,
        note=f"promoted {len(found)} in bulk",
    )
    return len(found), version


# --- rules ---------------------------------------------------------------------------------------


def create_rule(
    session: Session,
    *,
    name: str,
    collection: str,
    condition: promotion.RuleCondition,
    created_by: str | None,
    now: datetime,
) -> PromotionRule:
    """A new active rule; it applies to verdicts from now on (``rerun_rules`` applies it to history)."""
    target = store.get_collection(session, name=collection)
    row = PromotionRule(
        id=new_id(),
        name=name,
        collection_id=target.id,
        condition=condition.model_dump(mode="json", exclude_defaults=True),
        active=True,
        created_at=now,
        created_by=created_by,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(f"a rule named {name!r} exists already", details={"name": name}) from exc
    return row


def list_rules(session: Session) -> list[tuple[PromotionRule, Collection]]:
    rows = session.execute(
        select(PromotionRule, Collection)
        .join(Collection, Collection.id == PromotionRule.collection_id)
        .order_by(PromotionRule.name)
    )
    return [(r, c) for r, c in rows]


def get_rule(session: Session, *, name: str) -> PromotionRule:
    row = session.scalars(select(PromotionRule).where(PromotionRule.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"no promotion rule named {name!r}", details={"name": name})
    return row


def set_rule_active(session: Session, *, name: str, active: bool) -> PromotionRule:
    row = get_rule(session, name=name)
    row.active = active
    session.flush()
    return row


def delete_rule(session: Session, *, name: str) -> None:
    session.delete(get_rule(session, name=name))
    session.flush()
