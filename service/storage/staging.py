"""Staged changes to collections: what rules promote and undos withdraw, waiting for the next version.

Recording a verdict must stay cheap however large the collections grow, so the verdict's
transaction only stages its promotions here. ``cut_pending`` turns every staged change into new
immutable versions (leakage checked, as for any version): when a latest version is asked for
(exports, the version and leakage pages, the CLI), before any change by hand, and from the periodic
sweep once the oldest staged change is ``RR_COLLECTION_CUT_SECONDS`` old. The session comes first,
keyword-only arguments after, and nothing commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.settings import Settings
from service.storage import collections as store
from service.storage.tables import Collection, CollectionEntry, CollectionPending, CollectionVersion


def stage(session: Session, changes: Iterable[store.Change], *, now: datetime) -> list[str]:
    """Stage these changes for their collections' next versions; returns the collections' names."""
    names = []
    for change in changes:
        rows = [
            CollectionPending(collection_id=change.collection.id, entry_id=e.id, action="add", created_at=now)
            for e in change.add
        ]
        rows += [
            CollectionPending(collection_id=change.collection.id, entry_id=i, action="remove", created_at=now)
            for i in sorted(change.remove)
        ]
        if rows:
            session.add_all(rows)
            names.append(change.collection.name)
    session.flush()
    return names


def _rows(session: Session, collection_ids: Sequence[str] | None) -> list[CollectionPending]:
    query = select(CollectionPending).order_by(CollectionPending.id)
    if collection_ids is not None:
        query = query.where(CollectionPending.collection_id.in_(collection_ids))
    return list(session.scalars(query))


def _changes(session: Session, rows: Sequence[CollectionPending]) -> list[store.Change]:
    """Staged rows folded into one change per collection, in the order they were staged."""
    adds: dict[str, dict[str, None]] = {}
    removes: dict[str, set[str]] = {}
    for row in rows:
        added, removed = adds.setdefault(row.collection_id, {}), removes.setdefault(row.collection_id, set())
        if row.action == "add":
            added[row.entry_id] = None
            removed.discard(row.entry_id)
        else:
            added.pop(row.entry_id, None)
            removed.add(row.entry_id)
    changes = []
    for collection_id in adds:
        collection = session.get_one(Collection, collection_id)
        # A later verdict on the same output (an adjudication) replaces an earlier staged one.
        latest: dict[str, CollectionEntry] = {}
        for entry_id in adds[collection_id]:
            entry = session.get_one(CollectionEntry, entry_id)
            latest.pop(entry.output_id, None)
            latest[entry.output_id] = entry
        entries = list(latest.values())
        changes.append(store.Change(collection, add=entries, remove=removes[collection_id]))
    return changes


def current_entry_ids(session: Session, collection: Collection) -> set[str]:
    """The entries the collection holds once its staged changes are cut: what undo and adjudication
    must follow."""
    held = {
        e.id for e in store.underlying(session, store.latest_version(session, collection_id=collection.id))
    }
    for change in _changes(session, _rows(session, [collection.id])):
        held = (held | {e.id for e in change.add}) - change.remove
    return held


def cut_pending(
    session: Session,
    *,
    now: datetime,
    settings: Settings,
    due_before: datetime | None = None,
    by: str | None = None,
) -> list[CollectionVersion]:
    """Make the next version of every collection with staged changes, all together (so a verdict
    staged for both sides at once is split by the leakage draw, not won by whichever is cut first).
    With ``due_before``, only if some staged change is older than that."""
    if due_before is not None:
        oldest = session.scalar(select(func.min(CollectionPending.created_at)))
        if oldest is None or oldest >= due_before:
            return []
    rows = _rows(session, None)
    if not rows:
        return []
    made = store.freeze(
        session,
        _changes(session, rows),
        policy=store.LeakagePolicy.from_settings(settings),
        by=by,
        note=f"{len(rows)} staged rule promotions and withdrawals",
        now=now,
    )
    session.execute(
        delete(CollectionPending)
        .where(CollectionPending.id.in_([r.id for r in rows]))
        .execution_options(synchronize_session=False)
    )
    return made


def count_pending(session: Session, *, collection_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CollectionPending)
            .where(CollectionPending.collection_id == collection_id)
        )
        or 0
    )
